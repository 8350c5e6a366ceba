-- The gateway's runtime role may only append to and read the audit trail: PostgreSQL, not
-- only the code, keeps the trail append-only. Run as the owner of the gateway's schema after
-- `samsyn` has migrated it, with psql variables:
--   psql -v schema=public -v gateway_role=samsyn_gateway -v purge_role=samsyn_audit_purge -f gateway-grants.sql
-- Purging old events (after the 18-month retention) is a separate role and command.
GRANT USAGE ON SCHEMA :"schema" TO :"gateway_role", :"purge_role";
REVOKE ALL ON ALL TABLES IN SCHEMA :"schema" FROM :"gateway_role", :"purge_role";

-- The chained events and their signed checkpoints: insert and read, never change.
GRANT SELECT, INSERT ON :"schema".audit_event, :"schema".audit_checkpoint TO :"gateway_role";
-- Follow-up beside the chain: reviews of emergency accesses, revoked sessions.
GRANT SELECT, INSERT ON :"schema".audit_review, :"schema".revoked_session TO :"gateway_role";
-- The index is derived from the chained bodies (rebuildable, not chained): an outcome
-- closes its write's intent by deleting the intent's index row.
GRANT SELECT, INSERT, DELETE ON :"schema".audit_index TO :"gateway_role";
-- Migrations are read at start to check the schema is the binary's.
GRANT SELECT ON :"schema".seaql_migrations, :"schema".outbox_migrations TO :"gateway_role";
-- The outbox to SIP tools is a work queue: its rows change as messages are delivered.
GRANT SELECT, INSERT, UPDATE, DELETE ON :"schema".outbox_messages, :"schema".outbox_sequence,
  :"schema".outbox_cursors TO :"gateway_role";

-- Purge: removes a prefix of events ending at a checkpoint, and their index rows.
GRANT SELECT, DELETE ON :"schema".audit_event, :"schema".audit_checkpoint,
  :"schema".audit_index TO :"purge_role";

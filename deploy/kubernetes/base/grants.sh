#!/bin/bash
# Run by the migrate Job after `samsyn migrate --all`, as each service's owner role: the
# service's runtime role may read and write its rows and nothing more, and the gateway's
# audit trail stays append-only (gateway-grants.sql, a copy of deploy/postgres/).
set -euo pipefail
ca=/etc/samsyn/postgres-ca/ca.crt
for part in participants consent plans board reports gateway; do
    password_var="OWNER_PASSWORD_${part^^}"
    export PGPASSWORD="${!password_var}"
    conn="host=samsyn-pg-rw port=5432 dbname=samsyn_${part} user=samsyn_${part}_owner sslmode=verify-full sslrootcert=${ca}"
    if [ "$part" = gateway ]; then
        psql "$conn" -q -v ON_ERROR_STOP=1 -v schema=public -v gateway_role=samsyn_gateway \
            -v purge_role=samsyn_audit_purge -f /etc/samsyn/grants/gateway-grants.sql
    else
        psql "$conn" -q -v ON_ERROR_STOP=1 -v role="samsyn_${part}" <<'SQL'
GRANT USAGE ON SCHEMA public TO :"role";
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM :"role";
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"role";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"role";
SQL
    fi
    echo "grants: samsyn_${part} done"
done

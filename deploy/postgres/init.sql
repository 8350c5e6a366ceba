-- One database per service: no service reads another's tables.
-- Run once as a superuser; each service migrates its own schema at start.
CREATE ROLE samsyn_participants LOGIN;
CREATE ROLE samsyn_consent LOGIN;
CREATE ROLE samsyn_plans LOGIN;
CREATE ROLE samsyn_board LOGIN;
CREATE ROLE samsyn_gateway LOGIN;
CREATE DATABASE samsyn_participants OWNER samsyn_participants;
CREATE DATABASE samsyn_consent OWNER samsyn_consent;
CREATE DATABASE samsyn_plans OWNER samsyn_plans;
CREATE DATABASE samsyn_board OWNER samsyn_board;
CREATE DATABASE samsyn_gateway OWNER samsyn_gateway;

-- Runs once, as the postgres superuser, when the postgres container starts on
-- an empty data volume (files in /docker-entrypoint-initdb.d are skipped on
-- every later start). To re-run it: docker compose down -v.
--
-- One role per application, each owning its own databases:
--   vigil    -> vigil                          (Vigil's query model; `vigil migrate` creates the tables)
--   temporal -> temporal, temporal_visibility  (temporal-schema creates the tables)
--
-- The passwords below are for the local stack only and must match
-- docker-compose.yml (DATABASE_URL of the vigil services, POSTGRES_PWD /
-- SQL_PASSWORD of the temporal services).

CREATE ROLE vigil WITH LOGIN PASSWORD 'vigil';
CREATE DATABASE vigil OWNER vigil;

CREATE ROLE temporal WITH LOGIN PASSWORD 'temporal';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;

-- Temporal's Postgres visibility schema creates btree_gin when it is missing.
-- It is a trusted extension, so the database owner could create it too, but
-- creating it here as superuser keeps the schema job independent of that.
\connect temporal_visibility
CREATE EXTENSION IF NOT EXISTS btree_gin;

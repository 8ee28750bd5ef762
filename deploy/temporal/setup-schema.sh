#!/bin/sh
# Creates or upgrades Temporal's Postgres schemas (default store and
# visibility). Runs as the one-shot temporal-schema service in the
# temporalio/admin-tools image (busybox sh, nc, temporal-sql-tool and the SQL
# schemas under /etc/temporal/schema). Idempotent: `setup-schema -v 0.0` only
# creates the version tables when they are missing, and `update-schema` applies
# only the versions a database does not have yet.
#
# The databases themselves are created by deploy/postgres/init.sql.
#
# temporal-sql-tool reads its connection from SQL_HOST, SQL_PORT, SQL_USER and
# SQL_PASSWORD (set in docker-compose.yml); the password never appears on a
# command line.
set -eu

: "${SQL_HOST:?SQL_HOST is required}"
: "${SQL_PORT:=5432}"
: "${SQL_USER:?SQL_USER is required}"
: "${SQL_PASSWORD:?SQL_PASSWORD is required}"
: "${TEMPORAL_DB:=temporal}"
: "${TEMPORAL_VISIBILITY_DB:=temporal_visibility}"
: "${SCHEMA_DIR:=/etc/temporal/schema/postgresql/v12}"
: "${MAX_ATTEMPTS:=30}"
: "${SLEEP_SECONDS:=2}"
export SQL_HOST SQL_PORT SQL_USER SQL_PASSWORD

# retry CMD [ARG...] (mounted beside this script).
. "$(dirname "$0")/retry.sh"

sql_tool() {
	temporal-sql-tool --plugin postgres12 --endpoint "$SQL_HOST" --port "$SQL_PORT" --user "$SQL_USER" "$@"
}

echo "waiting for postgres at $SQL_HOST:$SQL_PORT"
retry nc -z -w 5 "$SQL_HOST" "$SQL_PORT"

echo "temporal schema: database $TEMPORAL_DB"
retry sql_tool --db "$TEMPORAL_DB" setup-schema -v 0.0
sql_tool --db "$TEMPORAL_DB" update-schema -d "$SCHEMA_DIR/temporal/versioned"

echo "temporal visibility schema: database $TEMPORAL_VISIBILITY_DB"
retry sql_tool --db "$TEMPORAL_VISIBILITY_DB" setup-schema -v 0.0
sql_tool --db "$TEMPORAL_VISIBILITY_DB" update-schema -d "$SCHEMA_DIR/visibility/versioned"

echo "temporal schemas are up to date"

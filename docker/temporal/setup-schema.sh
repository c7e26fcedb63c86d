#!/bin/sh
# One-off job (temporalio/admin-tools): Temporal's two PostgreSQL databases and their schemas, brought to
# the version this server image needs. Safe to run again: existing databases are kept and only the
# missing schema versions are applied, so it also upgrades the schema when the server's tag changes.
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
port="${DB_PORT:-5432}"
tool() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$port" -u "$POSTGRES_USER" "$@"; }
schema=/etc/temporal/schema/postgresql/v12

for db in temporal temporal_visibility; do
  tool --db "$db" create || echo "database $db exists"
done
tool --db temporal setup-schema -v 0.0 || echo "schema of temporal exists"
tool --db temporal update-schema -d "$schema/temporal/versioned"
tool --db temporal_visibility setup-schema -v 0.0 || echo "schema of temporal_visibility exists"
tool --db temporal_visibility update-schema -d "$schema/visibility/versioned"
echo "Temporal schema up to date"

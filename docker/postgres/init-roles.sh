#!/bin/sh
# Runs once, when the PostgreSQL volume is initialised (docker-entrypoint-initdb.d): the application's
# role and database, and Temporal's role, which creates its own two databases (temporal-schema job).
# Neither role is a superuser; the passwords come from the environment, never from the repository.
set -eu
: "${HCP_DB_PASSWORD:?HCP_DB_PASSWORD is required}"
: "${TEMPORAL_DB_PASSWORD:?TEMPORAL_DB_PASSWORD is required}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v hcp_password="$HCP_DB_PASSWORD" -v temporal_password="$TEMPORAL_DB_PASSWORD" <<'SQL'
CREATE ROLE hcp LOGIN PASSWORD :'hcp_password';
CREATE DATABASE hcp OWNER hcp;
CREATE ROLE temporal LOGIN CREATEDB PASSWORD :'temporal_password';
SQL

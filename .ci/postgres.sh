#!/usr/bin/env bash
# Start the machine's PostgreSQL cluster (if it is not running) and make a role + database for the
# test suite. Prints the NIMBUS_TEST_POSTGRES_URL to export; the tests create (and drop) one fresh
# database per session, which is why the role has CREATEDB.
#
#   eval "$(.ci/postgres.sh)"      # in CI: exports NIMBUS_TEST_POSTGRES_URL
#
# Idempotent: a second run finds the cluster up and the role/database present. Needs root (Debian's
# pg_ctlcluster + su postgres). Override with PG_VERSION, PG_CLUSTER, PG_PORT, NIMBUS_PG_USER,
# NIMBUS_PG_PASSWORD, NIMBUS_PG_DB.
set -euo pipefail

PG_VERSION="${PG_VERSION:-15}"
PG_CLUSTER="${PG_CLUSTER:-main}"
PG_PORT="${PG_PORT:-5432}"
USER_NAME="${NIMBUS_PG_USER:-nimbus}"
USER_PASSWORD="${NIMBUS_PG_PASSWORD:-nimbus}"
DB_NAME="${NIMBUS_PG_DB:-nimbus_test}"

log() { echo "postgres.sh: $*" >&2; }

as_postgres() {
    # `su` keeps root's cwd, which postgres may not be able to read; run from / to avoid the warning.
    (cd / && su postgres -c "$1")
}

psql_admin() {
    as_postgres "psql -p ${PG_PORT} -v ON_ERROR_STOP=1 -qtAc \"$1\""
}

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    log "pg_ctlcluster not found: install postgresql (Debian) first"
    exit 1
fi

status=0
pg_ctlcluster "${PG_VERSION}" "${PG_CLUSTER}" status >/dev/null 2>&1 || status=$?
if [ "${status}" -ne 0 ]; then
    log "starting cluster ${PG_VERSION}/${PG_CLUSTER}"
    pg_ctlcluster "${PG_VERSION}" "${PG_CLUSTER}" start
fi

# The cluster may take a moment to accept connections after start.
for _ in $(seq 1 50); do
    if as_postgres "pg_isready -q -p ${PG_PORT}"; then
        break
    fi
    sleep 0.2
done
as_postgres "pg_isready -q -p ${PG_PORT}" || { log "server did not become ready"; exit 1; }

if [ "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname = '${USER_NAME}'")" != "1" ]; then
    log "creating role ${USER_NAME}"
    psql_admin "CREATE ROLE ${USER_NAME} LOGIN CREATEDB PASSWORD '${USER_PASSWORD}'"
else
    psql_admin "ALTER ROLE ${USER_NAME} LOGIN CREATEDB PASSWORD '${USER_PASSWORD}'"
fi

if [ "$(psql_admin "SELECT 1 FROM pg_database WHERE datname = '${DB_NAME}'")" != "1" ]; then
    log "creating database ${DB_NAME}"
    psql_admin "CREATE DATABASE ${DB_NAME} OWNER ${USER_NAME}"
fi

echo "export NIMBUS_TEST_POSTGRES_URL=postgresql+asyncpg://${USER_NAME}:${USER_PASSWORD}@127.0.0.1:${PG_PORT}/${DB_NAME}"

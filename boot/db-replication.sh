#!/bin/sh
# The compose profile "scale": let the standby (db-replica) stream from this server. Runs once, when the
# image initialises an empty data directory (docker-entrypoint-initdb.d).
set -eu
echo "host replication $POSTGRES_USER all scram-sha-256" >> "$PGDATA/pg_hba.conf"

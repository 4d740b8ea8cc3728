#!/bin/sh
# The compose profile "scale": a hot standby of the `db` service. The first start clones the primary with
# pg_basebackup (standby.signal and primary_conninfo from -R); every start then streams its WAL. Runs as postgres.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    until pg_isready -q -h "$POSTGRES_HOST" -p "$POSTGRES_PORT" -U "$POSTGRES_USER"; do sleep 1; done
    PGPASSWORD="$POSTGRES_PASSWORD" pg_basebackup -h "$POSTGRES_HOST" -p "$POSTGRES_PORT" -U "$POSTGRES_USER" \
        -D "$PGDATA" -R -X stream -c fast
    # -R writes the connection without the password (it came from PGPASSWORD): the standby needs it to stream.
    printf "primary_conninfo = 'host=%s port=%s user=%s password=%s application_name=db-replica'\n" \
        "$POSTGRES_HOST" "$POSTGRES_PORT" "$POSTGRES_USER" "$POSTGRES_PASSWORD" >> "$PGDATA/postgresql.auto.conf"
    chmod 700 "$PGDATA"
fi
exec postgres -D "$PGDATA"

"""TimescaleDB mode: each compressed chunk indexed by its batches' first and last times, kept so by a job.

A chart whose range does not begin on a quarter hour reads the raw rows of its first minutes, and a year back
they lie in a compressed chunk: one batch per person (segmented by `user_id`), which TimescaleDB indexes by
person only, so it read every batch to find those minutes (10,000 people: 18 MB, 5-10 ms of every such chart
at 10M events). Indexed by time, ~1 ms (bench/README.md, "Compressed chunks indexed by time"). TimescaleDB makes
a new table for each chunk it compresses, so `studytrack_index_columnstore`, run here and as a job every 15
minutes, indexes those still without the index. It reads TimescaleDB's catalog: should a later version lay
compressed chunks out otherwise, it indexes nothing and the answers stay the same.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PROCEDURE = "studytrack_index_columnstore"
SCHEDULE = "15 minutes"
INDEX_SUFFIX = "_time_range"

# The compressed chunks of `events` (`compress_relid` in TimescaleDB's catalog, as 2.29 has it), each with its
# time's min and max columns (`_ts_meta_min_<n>`, `_max_<n>`, n the place of `time` in the order by: the only
# timestamptz ones).
_COMPRESSED_CHUNKS = r"""
    SELECT s.compress_relid AS chunk, c.relname AS table_name, c.relnamespace::regnamespace::text AS schema_name,
           min(a.attname) FILTER (WHERE a.attname LIKE '\_ts\_meta\_min\_%') AS first_time,
           min(a.attname) FILTER (WHERE a.attname LIKE '\_ts\_meta\_max\_%') AS last_time
    FROM show_chunks('events') AS raw
    JOIN _timescaledb_catalog.compression_settings AS s ON s.relid = raw AND s.compress_relid IS NOT NULL
    JOIN pg_class AS c ON c.oid = s.compress_relid
    JOIN pg_attribute AS a ON a.attrelid = s.compress_relid AND a.atttypid = 'timestamptz'::regtype
                          AND a.attnum > 0 AND NOT a.attisdropped
    GROUP BY 1, 2, 3
"""
_HAS_CATALOG = """
    SELECT 1 FROM pg_attribute
    WHERE attrelid = to_regclass('_timescaledb_catalog.compression_settings') AND attname = 'compress_relid'
"""

CREATE_PROCEDURE = f"""
CREATE PROCEDURE {PROCEDURE}(job_id integer DEFAULT NULL, config jsonb DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    compressed record;
BEGIN
    IF NOT EXISTS ({_HAS_CATALOG}) THEN
        RETURN;  -- another catalog: nothing is indexed, and the answers are the same
    END IF;
    -- One run at a time (the job, a migration, a person): IF NOT EXISTS does not stop two building one index.
    PERFORM pg_advisory_xact_lock(hashtext('{PROCEDURE}'));
    FOR compressed IN {_COMPRESSED_CHUNKS} LOOP
        IF compressed.first_time IS NOT NULL AND compressed.last_time IS NOT NULL THEN
            BEGIN
                EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s (%I, %I)',
                               compressed.table_name || '{INDEX_SUFFIX}', compressed.chunk,
                               compressed.first_time, compressed.last_time);
            EXCEPTION WHEN undefined_table THEN
                NULL;  -- decompressed or dropped since the loop read the catalog
            END;
        END IF;
    END LOOP;
END
$$
"""


def _timescaledb() -> bool:
    config = op.get_context().config
    return config is not None and bool(config.attributes.get("timescaledb"))


def upgrade() -> None:
    if not _timescaledb():
        return
    op.execute(CREATE_PROCEDURE)
    op.execute(f"CALL {PROCEDURE}()")  # the chunks compressed before this migration
    op.execute(f"SELECT add_job('{PROCEDURE}', INTERVAL '{SCHEDULE}')")


def downgrade() -> None:
    if not _timescaledb():
        return
    # A run under way finishes first: indexes it builds after the drops below would outlive the procedure.
    op.execute(f"SELECT pg_advisory_xact_lock(hashtext('{PROCEDURE}'))")
    op.execute(f"SELECT delete_job(job_id) FROM timescaledb_information.jobs WHERE proc_name = '{PROCEDURE}'")
    op.execute(
        f"""
        DO $$
        DECLARE compressed record;
        BEGIN
            IF EXISTS ({_HAS_CATALOG}) THEN
                FOR compressed IN {_COMPRESSED_CHUNKS} LOOP
                    EXECUTE format('DROP INDEX IF EXISTS %I.%I', compressed.schema_name,
                                   compressed.table_name || '{INDEX_SUFFIX}');
                END LOOP;
            END IF;
        END
        $$
        """
    )
    op.execute(f"DROP PROCEDURE {PROCEDURE}")

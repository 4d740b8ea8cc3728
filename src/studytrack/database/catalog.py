"""The catalog and status SQL in one place: what the server runs, what TimescaleDB holds, what `events` holds.

Read by `mode.py` and `status.py` (async psycopg, for the service) and by `timescale.py` (the migrations'
SQLAlchemy connection, whose parameters are `:name`). No statement takes request input.
"""

EXTENSION_AVAILABLE = "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
PRELOADED_LIBRARIES = "SELECT current_setting('shared_preload_libraries')"
EXTENSION_VERSION = "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
# Whether the extension's catalog can be read at all: created, and its views present.
HAS_TIMESCALEDB_CATALOG = (
    "SELECT to_regclass('timescaledb_information.hypertables') IS NOT NULL"
    " AND EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
)
EVENTS_IS_HYPERTABLE = """
    SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables
                   WHERE hypertable_schema = current_schema() AND hypertable_name = 'events') AS hypertable
"""
SERVER_MODE = f"""
    SELECT current_setting('server_version') AS server_version,
           to_regclass('events_15m') IS NOT NULL AND to_regclass('events_1h') IS NOT NULL
               AND to_regclass('events_6h') IS NOT NULL AND to_regclass('events_1d') IS NOT NULL AS rollup,
           ({EXTENSION_VERSION}) AS timescaledb,
           ({HAS_TIMESCALEDB_CATALOG}) AS has_catalog
"""
CHUNK_TIME_INTERVAL = """
    SELECT time_interval FROM timescaledb_information.dimensions
    WHERE hypertable_name = 'events' AND column_name = 'time'
"""
POLICY_JOB = """
    SELECT job_id, config FROM timescaledb_information.jobs
    WHERE proc_name = :proc AND hypertable_name = :table
"""
CHUNKS = """
    SELECT count(*) AS chunks, count(*) FILTER (WHERE is_compressed) AS compressed_chunks
    FROM timescaledb_information.chunks WHERE hypertable_name = 'events'
"""
COMPRESSION_RATIO = """
    SELECT sum(before_compression_total_bytes)::float8
           / nullif(sum(after_compression_total_bytes), 0) AS ratio
    FROM hypertable_compression_stats('events')
"""
EVENT_TOTALS = "SELECT count(*) AS events, min(time) AS first_event, max(time) AS last_event FROM events"
# Read replicas (`replicas.py`): WAL positions as byte offsets, comparable across servers of one cluster.
PRIMARY_WAL_POSITION = "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::numeric AS lsn"
REPLICA_WAL_POSITION = (
    "SELECT pg_is_in_recovery() AS standby, (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::numeric AS lsn"
)

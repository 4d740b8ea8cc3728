"""The SQL that matters, in one place. Every value is a bound parameter; only the fixed fragments
below are ever joined into statement text, chosen by the database mode and the bucket unit.

Bucket semantics (both modes, identical answers): a session counts in the bucket of its start
`time`, bucketed in local time of `tz`. Fixed widths align to 2000-01-03 (a Monday, so weeks start
on Monday), month and year widths to 2000-01-01 (months start on the 1st). Both modes spell it with
`date_bin` and month arithmetic on local time: TimescaleDB 2.29's `time_bucket(width, time, tz)` keeps the
two passes of a repeated autumn hour apart, where local-time bucketing (and TimescaleDB up to 2.23) joins them.
"""

from __future__ import annotations

from functools import lru_cache

from psycopg import sql

from studytrack.events.durations import BUCKET_ORIGIN

_ORIGIN = f"{BUCKET_ORIGIN:%Y-%m-%d}"  # a fixed literal, never request text

# -- bucket expressions ---------------------------------------------------------------------------
# Plain PostgreSQL: bucket a *local* timestamp, then read the local bucket start back in `tz`.
_LOCAL_FIXED = f"date_bin(%(width)s::interval, {{local}}, TIMESTAMP '{_ORIGIN}')"
_LOCAL_MONTHS = (
    "(TIMESTAMP '2000-01-01' + make_interval(months => (floor("
    "((extract(year FROM {local})::int - 2000) * 12 + extract(month FROM {local})::int - 1)"
    "::numeric / %(months)s) * %(months)s)::int))"
)
_LOCAL_TIME = "(time AT TIME ZONE %(tz)s)"
_LOCAL_START = "(%(start)s::timestamptz AT TIME ZONE %(tz)s)"
_TIMESCALE_SERIES = """
    SELECT time_bucket_gapfill(%(width)s::interval, t, %(tz)s, %(start)s, %(end)s) AS bucket
    FROM (VALUES (%(start)s::timestamptz)) AS probe (t)
    GROUP BY 1
"""
# Local bucket starts from the one holding `start` to the last one before `end`. DISTINCT because a
# local start that falls in a DST gap maps onto the same instant as the next one.
_PLAIN_SERIES = """
    SELECT DISTINCT local_bucket AT TIME ZONE %(tz)s AS bucket
    FROM generate_series({first}, (%(end)s::timestamptz AT TIME ZONE %(tz)s) - interval '1 microsecond',
                         %(width)s::interval) AS local_bucket
"""

# -- filters ----------------------------------------------------------------------------------------
_TAGS = "AND tag = ANY(%(tags)s)"
_USER = "AND user_id = %(user_id)s"
_START = "AND time >= %(start)s"
_END = "AND time < %(end)s"

_AGGREGATE = """
    SELECT {bucket} AS bucket, tag, sum(minutes)::bigint AS minutes, count(*) AS count
    FROM events
    WHERE time >= %(start)s AND time < %(end)s {filters}
    GROUP BY 1, 2
"""
_FILLED = """
    WITH agg AS ({aggregate}),
         buckets AS ({series}),
         shown_tags AS ({tags})
    SELECT buckets.bucket, shown_tags.tag,
           coalesce(agg.minutes, 0) AS minutes, coalesce(agg.count, 0) AS count
    FROM buckets CROSS JOIN shown_tags
    LEFT JOIN agg ON agg.bucket = buckets.bucket AND agg.tag = shown_tags.tag
    ORDER BY 1, 2
"""
# With the 15-minute rollup `events_15m` (a table the insert statement keeps exact, in both modes):
# whole 15-minute buckets inside the range come from the rollup, the
# ragged edges of the range from raw rows; both are then bucketed the same way. Per tag only: a
# per-user query reads the raw table through its user index.
_AGGREGATE_FROM_ROLLUP = """
    SELECT {bucket} AS bucket, tag, sum(minutes)::bigint AS minutes, sum(count)::bigint AS count
    FROM (
        SELECT bucket AS time, tag, minutes, count FROM events_15m
        WHERE bucket >= %(inner_start)s AND bucket < %(inner_end)s {filters}
        UNION ALL
        SELECT time, tag, minutes, 1 FROM events
        WHERE ((time >= %(start)s AND time < %(inner_start)s) OR (time >= %(inner_end)s AND time < %(end)s))
              {filters}
    ) AS parts
    GROUP BY 1, 2
    HAVING sum(count) > 0
"""
_REQUESTED_TAGS = "SELECT DISTINCT unnest(%(tags)s::text[]) AS tag"
_TAGS_WITH_DATA = "SELECT DISTINCT tag FROM agg"


def _filters(*, tags: bool, user: bool, start: bool = False, end: bool = False) -> sql.Composable:
    parts = [(_TAGS, tags), (_USER, user), (_START, start), (_END, end)]
    return sql.SQL(" ").join(sql.SQL(text) for text, wanted in parts if wanted)


def _bucket(*, months: bool) -> str:
    local = _LOCAL_MONTHS if months else _LOCAL_FIXED
    return local.format(local=_LOCAL_TIME) + " AT TIME ZONE %(tz)s"


def _series(*, gapfill: bool, months: bool) -> str:
    if gapfill:
        return _TIMESCALE_SERIES
    local = _LOCAL_MONTHS if months else _LOCAL_FIXED
    return _PLAIN_SERIES.format(first=local.format(local=_LOCAL_START))


# The fast path: bucket starts computed once per request (see bounds.py), each row mapped to its bucket
# by a binary search over them. the slot n (column `bucket`) is the bucket opened by the n-th start; empty buckets are
# added by the caller.
# One row more than a chart may carry: the caller refuses the request when it comes back (bounded answer).
_ORDERED_AND_CAPPED = " ORDER BY 1, 2 LIMIT %(row_limit)s"
_SLOT = "width_bucket(time, %(starts)b::timestamptz[])"  # binary: cheaper to send than 366 ISO strings


@lru_cache  # a handful of shapes: composed once each
def slot_query(*, rollup: bool, tags: bool, user: bool) -> sql.Composed:
    """Minutes and counts per (slot, tag), ordered, counts never zero. Parameters: starts (timestamptz[]),
    start, end, tags, user_id, row_limit, and with `rollup` inner_start/inner_end (the range shrunk to whole
    15-minute buckets)."""
    if rollup and user:
        raise ValueError("the rollup has no user_id: per-user queries read the raw table")
    aggregate = sql.SQL(_AGGREGATE_FROM_ROLLUP if rollup else _AGGREGATE).format(
        bucket=sql.SQL(_SLOT), filters=_filters(tags=tags, user=user)
    )
    return sql.Composed([aggregate, sql.SQL(_ORDERED_AND_CAPPED)])


@lru_cache  # a handful of shapes: composed once each
def bucket_query(
    *, rollup: bool, months: bool, tags: bool, user: bool, fill: bool, gapfill: bool = False
) -> sql.Composed:
    """Minutes and counts per (bucket, tag), ordered by bucket then tag.

    Parameters: width (interval text), months (int), tz, start, end, tags (text[]), user_id, and with
    `rollup` inner_start/inner_end (the range shrunk to whole 15-minute buckets). `gapfill` lists the
    empty buckets with TimescaleDB's time_bucket_gapfill: only for fixed-offset zones, because across a DST
    change it steps in fixed UTC increments and yields buckets that time_bucket never does.
    """
    if rollup and user:
        raise ValueError("the rollup has no user_id: per-user queries read the raw table")
    aggregate = sql.SQL(_AGGREGATE_FROM_ROLLUP if rollup else _AGGREGATE).format(
        bucket=sql.SQL(_bucket(months=months)),
        filters=_filters(tags=tags, user=user),
    )
    if not fill:
        return sql.Composed([aggregate, sql.SQL(_ORDERED_AND_CAPPED)])
    filled = sql.SQL(_FILLED).format(
        aggregate=aggregate,
        series=sql.SQL(_series(gapfill=gapfill, months=months)),
        tags=sql.SQL(_REQUESTED_TAGS if tags else _TAGS_WITH_DATA),
    )
    return sql.Composed([filled, sql.SQL(" LIMIT %(row_limit)s")])


# -- single events, sessions, stats -----------------------------------------------------------------
# Many events in one statement: one array per column, unnested into rows, each id at most once and in id
# order (the caller's job: concurrent writers then take their row locks in one order and cannot deadlock).
# An id names one event forever: each row first claims its id in `event_ids` (its primary key); only the
# claimed rows reach `events`. A row whose id is already claimed is skipped, not an error; the caller reads
# the claimed event back to tell a retry (duplicate) from another event reusing the id (conflict). An event
# sent with an id but no time ("now", `floating`) takes its id's stored time, so its retry lands on the same
# key; two first arrivals on two connections serialize on the primary key. The first spelling of each tag key
# is kept in `tag_spellings` (later ones never replace it). Only the key and received_at come back: the caller
# has the rest.
_NEW_ROWS = """
    new_rows AS MATERIALIZED (
        SELECT r.id,
               CASE WHEN r.floating
                    THEN coalesce((SELECT i.time FROM event_ids AS i WHERE i.id = r.id), r.time)
                    ELSE r.time END AS time,
               r.tag, r.minutes, r.user_id, r.note, r.source, r.spelling
        FROM unnest(%(ids)b::uuid[], %(times)b::timestamptz[], %(tags)b::text[], %(minutes)b::int[],
                    %(user_ids)b::text[], %(notes)b::text[], %(sources)b::text[], %(floating)b::bool[],
                    %(spellings)b::text[])
             AS r (id, time, tag, minutes, user_id, note, source, floating, spelling)
    ),
    claimed AS (
        INSERT INTO event_ids (id, time)
        SELECT id, time FROM new_rows ORDER BY id
        ON CONFLICT (id) DO NOTHING
        RETURNING id
    ),
    spelled AS (
        INSERT INTO tag_spellings (tag, spelling)
        SELECT DISTINCT ON (tag) tag, spelling FROM new_rows ORDER BY tag, spelling
        ON CONFLICT (tag) DO NOTHING
    )"""
# ON CONFLICT: a row stored without its id claim (written by another tool, not through this statement).
_INSERT_NEW_ROWS = """
    INSERT INTO events (id, time, tag, minutes, user_id, note, source)
    SELECT n.id, n.time, n.tag, n.minutes, n.user_id, n.note, n.source
    FROM new_rows AS n JOIN claimed USING (id) ORDER BY n.id
    ON CONFLICT (id, time) DO NOTHING
    RETURNING id, time, tag, minutes, received_at"""
# Both statements answer (id, time, received_at) for each inserted row.
INSERT_EVENTS = f"WITH {_NEW_ROWS}, inserted AS ({_INSERT_NEW_ROWS}) SELECT id, time, received_at FROM inserted"
# The same insert, and the 15-minute rollup gains exactly the rows that were inserted, in
# the same statement (so the same transaction). Ordered upserts keep concurrent writers from deadlocking.
INSERT_EVENTS_AND_ROLLUP = f"""
    WITH {_NEW_ROWS},
    inserted AS ({_INSERT_NEW_ROWS}),
    rolled AS (
        INSERT INTO events_15m AS r (bucket, tag, minutes, count)
        SELECT date_bin(INTERVAL '15 minutes', time, TIMESTAMPTZ '{_ORIGIN} 00:00:00+00'), tag,
               sum(minutes), count(*)
        FROM inserted GROUP BY 1, 2 ORDER BY 2, 1
        ON CONFLICT (tag, bucket) DO UPDATE SET minutes = r.minutes + excluded.minutes, count = r.count + excluded.count
    )
    SELECT id, time, received_at FROM inserted
"""
# An event's columns as the API shows them: its tag in the spelling people see.
_EVENT_COLUMNS = """e.id, e.time, coalesce(s.spelling, e.tag) AS tag, e.minutes, e.user_id, e.note, e.source,
    e.received_at"""
_SPELLING = "LEFT JOIN tag_spellings AS s ON s.tag = e.tag"
# The event each id names (its columns are NULL when the id's event is gone, e.g. dropped by retention).
SELECT_CLAIMED_EVENTS = f"""
    SELECT i.id AS claimed_id, i.time AS claimed_time, {_EVENT_COLUMNS}
    FROM event_ids AS i LEFT JOIN events AS e ON e.id = i.id AND e.time = i.time {_SPELLING}
    WHERE i.id = ANY(%(ids)s)
"""
# Spellings of tag keys; a key without one is shown as it is.
SELECT_TAG_SPELLINGS = "SELECT tag, spelling FROM tag_spellings WHERE tag = ANY(%(tags)s)"
# Deleting an event frees its id (in the same statement): a retry after a mistaken delete stores it again.
_FREE_ID = "freed AS (DELETE FROM event_ids WHERE id = %(id)s AND EXISTS (SELECT 1 FROM deleted))"
DELETE_EVENT = f"""
    WITH deleted AS (
        DELETE FROM events
        WHERE id = %(id)s AND (%(user_id)s::text IS NULL OR user_id = %(user_id)s)
        RETURNING time
    ),
    {_FREE_ID}
    SELECT time FROM deleted
"""
DELETE_EVENT_AND_ROLLUP = f"""
    WITH deleted AS (
        DELETE FROM events
        WHERE id = %(id)s AND (%(user_id)s::text IS NULL OR user_id = %(user_id)s)
        RETURNING time, tag, minutes
    ),
    {_FREE_ID},
    rolled AS (
        UPDATE events_15m AS r SET minutes = r.minutes - d.minutes, count = r.count - d.count
        FROM (SELECT date_bin(INTERVAL '15 minutes', time, TIMESTAMPTZ '{_ORIGIN} 00:00:00+00') AS bucket, tag,
                     sum(minutes) AS minutes, count(*) AS count
              FROM deleted GROUP BY 1, 2) AS d
        WHERE r.tag = d.tag AND r.bucket = d.bucket
    )
    SELECT time FROM deleted
"""
SELECT_EVENT = f"""
    SELECT {_EVENT_COLUMNS}
    FROM event_ids AS i JOIN events AS e ON e.id = i.id AND e.time = i.time {_SPELLING}
    WHERE i.id = %(id)s
"""


def sessions_query(*, tags: bool, user: bool, start: bool, end: bool, after: bool) -> sql.Composed:
    """Raw events newest first; keyset pagination on (time, id) with parameters cursor_time, cursor_id."""
    keyset = "AND (time, id) < (%(cursor_time)s, %(cursor_id)s)" if after else ""
    return sql.SQL(
        "SELECT {columns} FROM ("
        " SELECT * FROM events WHERE true {filters} {keyset} ORDER BY time DESC, id DESC LIMIT %(limit)s"
        ") AS e {spelling} ORDER BY e.time DESC, e.id DESC"
    ).format(
        columns=sql.SQL(_EVENT_COLUMNS),
        filters=_filters(tags=tags, user=user, start=start, end=end),
        keyset=sql.SQL(keyset),
        spelling=sql.SQL(_SPELLING),
    )


def stats_query(*, tags: bool, user: bool, start: bool, end: bool) -> sql.Composed:
    return sql.SQL(
        "SELECT tag, sum(minutes)::bigint AS minutes, count(*) AS count"
        " FROM events WHERE true {filters} GROUP BY tag ORDER BY tag LIMIT %(tag_limit)s"
    ).format(filters=_filters(tags=tags, user=user, start=start, end=end))

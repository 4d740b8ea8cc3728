"""The SQL that matters, in one place. Every value is a bound parameter; only the fixed fragments
below are ever joined into statement text.

Charts: the caller computes where its local buckets begin, as instants (`bounds.py`); the statement maps each
row to its slot with `width_bucket`, a binary search over them, in both database modes. The
cheapest that fits runs:

- `CHART_FROM_DAYS`, `CHART_FROM_SIX_HOURS`: charts over all users of days or longer whose edges fall on the
  quarter hour: whole UTC days from `events_1d` (zones within a few hours of UTC) or whole six-hour rows from
  `events_6h` (zones farther away), the hours between each local midnight and the coarse row's edge moved with
  rows of `events_1h` and `events_15m`; whichever reads fewer rows (`rollup.coarse_plan`), when that beats
  the hourly or 15-minute rollup.
- `CHART_FROM_HOURS`: charts over all users (the dashboard's default) whose bucket edges fall on whole UTC
  hours (every zone with a whole-hour offset, widths of an hour or more): whole hours of the range from the
  rollup `events_1h`, its ragged edges from raw rows.
- `CHART_FROM_QUARTER_HOURS`: the same on the 15-minute grid (`events_15m`): zones such as Asia/Kolkata
  (+05:30) or Asia/Kathmandu (+05:45), and widths such as 15 or 45 minutes.
- `CHART_FOR_USER` (`CHART_FOR_USER_TAGS` with tags): a chart for one user (the rollups have no user_id),
  prepared (see there).
- `CHART_FROM_EVENTS`: everything else over all users: a range without a whole 15-minute bucket, or bucket
  edges off the 15-minute grid (widths like 20 minutes, historic offsets).

Filters a request leaves out are switched off by their parameter (an empty `tags`, a NULL `user_id`), here and
in the sessions and stats statements. Such statements are planned with the actual values, never prepared, so a
switched-off filter costs nothing (measured in bench/README.md, "Chart statements"); a person's charts and
totals are the exception, with their user filter written in.
"""

from __future__ import annotations

from studytrack.events.durations import BUCKET_ORIGIN

_ORIGIN = f"{BUCKET_ORIGIN:%Y-%m-%d}"  # a fixed literal, never request text

_SLOT = "width_bucket(time, %(starts)b::timestamptz[])"  # binary: cheaper to send than 366 ISO strings
# Filters a request leaves out: no tags, or a NULL.
_ANY_TAGS = "(cardinality(%(tags)s::text[]) = 0 OR tag = ANY(%(tags)s))"
_ANY_USER = "(%(user_id)s::text IS NULL OR user_id = %(user_id)s)"
_FROM_START = "(%(start)s::timestamptz IS NULL OR time >= %(start)s)"
_BEFORE_END = "(%(end)s::timestamptz IS NULL OR time < %(end)s)"
# The parts of a range a rollup does not cover whole: the raw rows of its ragged ends (outside the whole rollup
# buckets inner_start..inner_end) and the whole rollup buckets outside the coarse rows (`start`..`end`, named).
_RAGGED_EDGES = "((time >= %(start)s AND time < %(inner_start)s) OR (time >= %(inner_end)s AND time < %(end)s))"
_OUTSIDE = "((bucket >= %(inner_start)s AND bucket < %({start})s) OR (bucket >= %({end})s AND bucket < %(inner_end)s))"
# One row more than a chart may carry: the caller refuses the request when it comes back (bounded answer).
_ORDERED_AND_CAPPED = "ORDER BY 1, 2 LIMIT %(row_limit)s"

# Parameters of all three: starts (timestamptz[]: slot n opens at the n-th), start, end, tags (text[], empty for
# all), row_limit; the rollups' inner_start/inner_end (the range shrunk to whole rollup buckets); the raw
# one's user_id (NULL for everyone). Rows: (slot, tag, minutes, count), ordered, counts never zero.
CHART_FROM_EVENTS = f"""
    SELECT {_SLOT} AS slot, tag, sum(minutes)::bigint AS minutes, count(*) AS count
    FROM events
    WHERE time >= %(start)s AND time < %(end)s AND {_ANY_TAGS} AND {_ANY_USER}
    GROUP BY 1, 2
    {_ORDERED_AND_CAPPED}
"""
# A person's chart (the rollups have no user_id): each filter written in, none switched off by a parameter, so
# one prepared statement serves every person and range. Its generic plan reads the person's index in each chunk
# without planning the range's chunks again on every request (the planning was most of a year's chart in
# TimescaleDB mode: bench/README.md, "Prepared per-person charts"). The same parameters as CHART_FROM_EVENTS.
_FOR_USER = f"""
    SELECT {_SLOT} AS slot, tag, sum(minutes)::bigint AS minutes, count(*) AS count
    FROM events
    WHERE time >= %(start)s AND time < %(end)s AND user_id = %(user_id)s::text{{tags}}
    GROUP BY 1, 2
    {_ORDERED_AND_CAPPED}
"""
CHART_FOR_USER = _FOR_USER.format(tags="")
CHART_FOR_USER_TAGS = _FOR_USER.format(tags=" AND tag = ANY(%(tags)s::text[])")
# With a rollup (a table the insert statement keeps exact, in both modes): whole rollup buckets inside the
# range come from it, the ragged edges of the range from raw rows.
_SLOTS_FROM_ROLLUP = f"""
    SELECT {_SLOT} AS slot, tag, sum(minutes)::bigint AS minutes, sum(count)::bigint AS count
    FROM (
        SELECT bucket AS time, tag, minutes, count FROM {{table}}
        WHERE bucket >= %(inner_start)s AND bucket < %(inner_end)s AND {_ANY_TAGS}
        UNION ALL
        SELECT time, tag, minutes, 1 FROM events
        WHERE {_RAGGED_EDGES} AND {_ANY_TAGS}
    ) AS parts
    GROUP BY 1, 2
    HAVING sum(count) > 0
    {_ORDERED_AND_CAPPED}
"""
CHART_FROM_HOURS = _SLOTS_FROM_ROLLUP.format(table="events_1h")
CHART_FROM_QUARTER_HOURS = _SLOTS_FROM_ROLLUP.format(table="events_15m")

# Charts of days or longer over all users from a coarse rollup (`events_1d`, `events_6h`): its whole rows, each to
# the slot it falls in by `coarse_starts` (slot n's start moved to the nearest multiple of the grain: a UTC
# midnight, a six-hour mark). The hours and quarter hours between a slot's start and its moved start
# (`moved_hours`, `moved_quarters`: listed by the caller, disjoint) are then in the wrong slot: each is added to
# its own slot and taken from the other. The range's whole quarter hours outside the coarse rows come from
# `events_15m`, its ragged edges from raw rows. Extra parameters: coarse_starts, coarse_start/coarse_end (the
# whole coarse rows), moved_hours, moved_quarters (timestamptz[]); inner_start/inner_end on the quarter hour.
_MOVED = f"""
        SELECT width_bucket(bucket, %(starts)b::timestamptz[]), tag, minutes, count FROM {{table}}
        WHERE bucket = ANY(%({{moved}})b::timestamptz[]) AND {_ANY_TAGS}
        UNION ALL
        SELECT width_bucket(bucket, %(coarse_starts)b::timestamptz[]), tag, -minutes, -count FROM {{table}}
        WHERE bucket = ANY(%({{moved}})b::timestamptz[]) AND {_ANY_TAGS}"""
_SLOTS_FROM_COARSE = f"""
    SELECT slot, tag, sum(minutes)::bigint AS minutes, sum(count)::bigint AS count
    FROM (
        SELECT width_bucket(bucket, %(coarse_starts)b::timestamptz[]) AS slot, tag, minutes, count FROM {{table}}
        WHERE bucket >= %(coarse_start)s AND bucket < %(coarse_end)s AND {_ANY_TAGS}
        UNION ALL{_MOVED.format(table="events_1h", moved="moved_hours")}
        UNION ALL{_MOVED.format(table="events_15m", moved="moved_quarters")}
        UNION ALL
        SELECT width_bucket(bucket, %(starts)b::timestamptz[]), tag, minutes, count FROM events_15m
        WHERE {_OUTSIDE.format(start="coarse_start", end="coarse_end")} AND {_ANY_TAGS}
        UNION ALL
        SELECT {_SLOT}, tag, minutes, 1 FROM events
        WHERE {_RAGGED_EDGES} AND {_ANY_TAGS}
    ) AS parts
    GROUP BY 1, 2
    HAVING sum(count) > 0
    {_ORDERED_AND_CAPPED}
"""
CHART_FROM_DAYS = _SLOTS_FROM_COARSE.format(table="events_1d")
CHART_FROM_SIX_HOURS = _SLOTS_FROM_COARSE.format(table="events_6h")

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
# The same insert, and the rollups gain exactly the rows that were inserted, in the same statement (so the
# same transaction). Upserts in key order (`order`: the table's key columns), one table after the other, keep
# concurrent writers from deadlocking and insert along the index.
_ROLL_UP = """
    {name} AS (
        INSERT INTO {table} AS r (bucket, tag, minutes, count)
        SELECT date_bin(INTERVAL '{grain}', time, TIMESTAMPTZ '{origin} 00:00:00+00'), tag, sum(minutes), count(*)
        FROM inserted GROUP BY 1, 2 ORDER BY {order}
        ON CONFLICT (bucket, tag) DO UPDATE SET minutes = r.minutes + excluded.minutes, count = r.count + excluded.count
    )"""
INSERT_EVENTS_AND_ROLLUP = f"""
    WITH {_NEW_ROWS},
    inserted AS ({_INSERT_NEW_ROWS}),
    {_ROLL_UP.format(name="quarter_hours", table="events_15m", grain="15 minutes", origin=_ORIGIN, order="1, 2")},
    {_ROLL_UP.format(name="hours", table="events_1h", grain="1 hour", origin=_ORIGIN, order="1, 2")},
    {_ROLL_UP.format(name="six_hours", table="events_6h", grain="6 hours", origin=_ORIGIN, order="2, 1")},
    {_ROLL_UP.format(name="days", table="events_1d", grain="1 day", origin=_ORIGIN, order="2, 1")}
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
_ROLL_BACK = """
    {name} AS (
        UPDATE {table} AS r SET minutes = r.minutes - d.minutes, count = r.count - d.count
        FROM (SELECT date_bin(INTERVAL '{grain}', time, TIMESTAMPTZ '{origin} 00:00:00+00') AS bucket, tag,
                     sum(minutes) AS minutes, count(*) AS count
              FROM deleted GROUP BY 1, 2) AS d
        WHERE r.tag = d.tag AND r.bucket = d.bucket
    )"""
DELETE_EVENT_AND_ROLLUP = f"""
    WITH deleted AS (
        DELETE FROM events
        WHERE id = %(id)s AND (%(user_id)s::text IS NULL OR user_id = %(user_id)s)
        RETURNING time, tag, minutes
    ),
    {_FREE_ID},
    {_ROLL_BACK.format(name="quarter_hours", table="events_15m", grain="15 minutes", origin=_ORIGIN)},
    {_ROLL_BACK.format(name="hours", table="events_1h", grain="1 hour", origin=_ORIGIN)},
    {_ROLL_BACK.format(name="six_hours", table="events_6h", grain="6 hours", origin=_ORIGIN)},
    {_ROLL_BACK.format(name="days", table="events_1d", grain="1 day", origin=_ORIGIN)}
    SELECT time FROM deleted
"""
SELECT_EVENT = f"""
    SELECT {_EVENT_COLUMNS}
    FROM event_ids AS i JOIN events AS e ON e.id = i.id AND e.time = i.time {_SPELLING}
    WHERE i.id = %(id)s
"""


# Raw events newest first; keyset pagination on (time, id): cursor_time and cursor_id are NULL on the first page.
SESSIONS = f"""
    SELECT {_EVENT_COLUMNS} FROM (
        SELECT * FROM events
        WHERE {_ANY_TAGS} AND {_ANY_USER} AND {_FROM_START} AND {_BEFORE_END}
          AND (%(cursor_time)s::timestamptz IS NULL OR (time, id) < (%(cursor_time)s, %(cursor_id)s::uuid))
        ORDER BY time DESC, id DESC LIMIT %(limit)s
    ) AS e {_SPELLING}
    ORDER BY e.time DESC, e.id DESC
"""
STATS = f"""
    SELECT tag, sum(minutes)::bigint AS minutes, count(*) AS count
    FROM events
    WHERE {_ANY_TAGS} AND {_ANY_USER} AND {_FROM_START} AND {_BEFORE_END}
    GROUP BY tag ORDER BY tag LIMIT %(tag_limit)s
"""
# A person's totals, prepared as a person's charts are (`CHART_FOR_USER`): the user filter written in, an open
# end an infinite bound, so one generic plan serves every person and range.
STATS_FOR_USER = f"""
    SELECT tag, sum(minutes)::bigint AS minutes, count(*) AS count
    FROM events
    WHERE user_id = %(user_id)s::text AND {_ANY_TAGS}
      AND time >= coalesce(%(start)s::timestamptz, '-infinity') AND time < coalesce(%(end)s::timestamptz, 'infinity')
    GROUP BY tag ORDER BY tag LIMIT %(tag_limit)s
"""
# Totals over all users from the rollups, as the charts have them: whole days from `events_1d`, the whole hours
# outside them from `events_1h`, the ragged edges of a bounded range from raw rows. An open end (NULL start or
# end, and their inner bounds) reads the daily rollup to it.
STATS_FROM_DAYS = f"""
    SELECT tag, sum(minutes)::bigint AS minutes, sum(count)::bigint AS count
    FROM (
        SELECT tag, minutes, count FROM events_1d
        WHERE (%(day_start)s::timestamptz IS NULL OR bucket >= %(day_start)s)
          AND (%(day_end)s::timestamptz IS NULL OR bucket < %(day_end)s) AND {_ANY_TAGS}
        UNION ALL
        SELECT tag, minutes, count FROM events_1h
        WHERE {_OUTSIDE.format(start="day_start", end="day_end")} AND {_ANY_TAGS}
        UNION ALL
        SELECT tag, minutes, 1 FROM events
        WHERE {_RAGGED_EDGES} AND {_ANY_TAGS}
    ) AS parts
    GROUP BY tag HAVING sum(count) > 0 ORDER BY tag LIMIT %(tag_limit)s
"""

"""Read replicas in `/metrics` (the same registry as `metrics.py`, so they appear there with the rest).

* `studytrack_db_reads_total{target}`: reads by where they went, `primary` or a replica's name (`replica-1`).
* `studytrack_db_primary_up`, `studytrack_db_replica_up{replica}`: 1 while reachable (the primary) or serving
  reads (a replica), as the replica monitor last found them; only when DATABASE_REPLICA_URL is set.
* `studytrack_db_replica_lag_seconds{replica}`: its lag behind the primary, NaN while not measurable.

Several workers (PROMETHEUS_MULTIPROC_DIR): each monitors on its own; `up` is the lowest and lag the highest
of the live workers, so any worker's bad news shows.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from studytrack.database.replicas import ReplicaSet, ReplicaState
from studytrack.web import metrics  # noqa: F401  (first: it makes PROMETHEUS_MULTIPROC_DIR, where these open files)

READS = Counter("studytrack_db_reads", "Database reads by where they went: primary, or a replica's name.", ["target"])
PRIMARY_UP = Gauge(
    "studytrack_db_primary_up", "1 while the replica monitor reaches the primary.", multiprocess_mode="livemin"
)
REPLICA_UP = Gauge(
    "studytrack_db_replica_up", "1 while the replica serves reads.", ["replica"], multiprocess_mode="livemin"
)
REPLICA_LAG = Gauge(
    "studytrack_db_replica_lag_seconds",
    "How far the replica is behind the primary (an upper bound, exact to a second); NaN while not measurable.",
    ["replica"],
    multiprocess_mode="livemax",
)


def count_read(target: str) -> None:
    READS.labels(target).inc()


def observe_replicas(replicas: ReplicaSet) -> None:
    """Called by the replica monitor after each check."""
    PRIMARY_UP.set(int(replicas.primary_reachable))
    for replica in replicas.replicas:
        REPLICA_UP.labels(replica.name).set(int(replicas.state(replica) is ReplicaState.OK))
        REPLICA_LAG.labels(replica.name).set(float("nan") if replica.lag_seconds is None else replica.lag_seconds)

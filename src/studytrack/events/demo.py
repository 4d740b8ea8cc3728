"""Realistic study sessions for `studytrack demo`, the same for the same seed.

Someone preparing DevOps certifications: a few sessions on most weekdays (before work, at lunch, in the
evening), fewer at weekends, mostly 25- and 50-minute pomodoros with some long sessions, and a focus exam that
changes every three weeks. Each day is drawn from its own generator seeded by (seed, date), so a day's sessions
do not depend on how many days are asked for: a later run with the same seed repeats the days they share, and
their content-derived ids make those a no-op.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

from studytrack.events.models import EventCreate

TAGS = ("CKA", "CKAD", "Terraform", "AWS SAA", "GitHub Actions", "Docker", "Linux", "Prometheus")
DEMO_SOURCE = "studytrack-demo"
LENGTHS = (25, 50, 15, 30, 45, 90, 120, 180)
LENGTH_WEIGHTS = (40, 25, 6, 8, 6, 8, 5, 2)
FOCUS_DAYS = 21
_EPOCH = date(2000, 1, 3)
# (earliest start, latest start) in minutes after midnight UTC
_WEEKDAY_SLOTS = ((6 * 60 + 30, 8 * 60), (12 * 60, 13 * 60), (18 * 60, 21 * 60 + 30))
_WEEKEND_SLOTS = ((9 * 60, 12 * 60), (14 * 60, 18 * 60))


def _focus(seed: int, day: date) -> str:
    block = (day - _EPOCH).days // FOCUS_DAYS
    return random.Random(f"{seed}/focus/{block}").choice(TAGS)  # noqa: S311 (demo data, not secrets)


def _day(seed: int, day: date, user_id: str | None) -> list[EventCreate]:
    rng = random.Random(f"{seed}/{day.isoformat()}")  # noqa: S311 (demo data, not secrets)
    weekend = day.weekday() >= 5
    if rng.random() < (0.35 if weekend else 0.08):
        return []  # a day off
    count = rng.choice((1, 1, 2) if weekend else (1, 2, 2, 3, 3, 4, 4))
    slots = _WEEKEND_SLOTS if weekend else _WEEKDAY_SLOTS
    focus = _focus(seed, day)
    starts = sorted(rng.randint(*rng.choice(slots)) for _ in range(count))
    sessions: list[EventCreate] = []
    free_from = 0  # sessions never overlap: the next one starts after a short break
    for start in starts:
        minutes = rng.choices(LENGTHS, LENGTH_WEIGHTS)[0]
        start = max(start, free_from)
        if start + minutes > 24 * 60:
            break
        tag = focus if rng.random() < 0.5 else rng.choice(TAGS)
        moment = datetime.combine(day, time(start // 60, start % 60), tzinfo=UTC)
        sessions.append(EventCreate(tag=tag, minutes=minutes, time=moment, user_id=user_id, source=DEMO_SOURCE))
        free_from = start + minutes + rng.choice((5, 5, 10, 15))
    return sessions


def demo_sessions(*, days: int, seed: int, until: date, user_id: str | None = None) -> list[EventCreate]:
    """The sessions of the `days` whole days before `until`, oldest first (none in the future)."""
    sessions: list[EventCreate] = []
    for back in range(days, 0, -1):
        sessions += _day(seed, until - timedelta(days=back), user_id)
    return sessions

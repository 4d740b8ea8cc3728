"""What each gunicorn worker does to its own process before serving (`post_worker_init`)."""

from __future__ import annotations

import json
import subprocess
import sys

WORKER_START = """
import gc, json
from studytrack.web import gunicorn_conf
before = gc.get_threshold()
gunicorn_conf.post_worker_init(None)
print(json.dumps({"before": before, "after": gc.get_threshold(), "frozen": gc.get_freeze_count()}))
"""


def test_a_worker_freezes_what_it_loaded_and_collects_young_objects_after_ten_thousand() -> None:
    # A process of its own: importing the settings module configures logging.
    out = subprocess.run([sys.executable, "-c", WORKER_START], capture_output=True, text=True, check=True).stdout
    worker = json.loads(out.splitlines()[-1])
    assert worker["frozen"] > 10_000  # the modules, the app's schemas: out of every collection's way
    assert worker["after"] == [10_000, *worker["before"][1:]]

"""The test suite: specifications of behaviour, on real databases and real servers."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

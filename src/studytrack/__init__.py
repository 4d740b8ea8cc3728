"""studytrack: study sessions as time-series events, served as chart-ready buckets."""

__version__ = "0.1.0"

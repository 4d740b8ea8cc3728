"""The HTTP side: app factory, error shape, health, dependencies, gunicorn config."""

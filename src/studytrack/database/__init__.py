"""Connections, schema migrations, the embedded server and TimescaleDB detection."""

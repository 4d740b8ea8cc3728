"""API tokens: scopes `ingest`, `read`, `admin`; optionally bound to one user_id."""

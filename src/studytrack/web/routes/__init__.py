"""The API's routers, one module per group of paths; `web/app.py` includes them."""

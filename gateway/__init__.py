"""The edge: Kong's declarative config (`kong.yml`) and the local dev gateway that serves the same routes.

Nothing is imported here: `python -m gateway.devgateway` must patch the standard library with gevent before
urllib3 is imported.
"""

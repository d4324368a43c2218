"""Gunicorn settings shared by every WSGI function: the container command and `make run` both use this file.

Usage: gunicorn --config python:shared.gunicorn_conf functions.<name>.main:app
"""
import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8080')}"
# gevent: many concurrent SSE streams per worker; psycopg 3 cooperates once gevent has patched sockets.
worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "1000"))
# Long generations: a request may legitimately stream for many minutes; Knative enforces the real limit.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "0"))
# Knative sends SIGTERM then waits terminationGracePeriodSeconds: drain in-flight requests first.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# Idle keep-alive connections hold a graceful shutdown open; keep them short (queue-proxy reconnects cheaply).
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Read-only root filesystem in the image: no control socket, heartbeat files in /dev/shm.
control_socket_disable = True
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()


def post_fork(server, worker):
    """gevent's patch_all() announces itself to plugins through entry points, reading every installed package's
    metadata (~0.5 s of cold start); no plugin of ours listens, so announce without the lookup."""
    import gevent.events

    gevent.events.notify_and_call_entry_points = gevent.events.notify

"""A bare Python hop: the smallest Flask app that forwards a chat completion to the upstream, served exactly like
a function (same gunicorn config: gevent, one worker) and with the function's own outbound client (a pooled
urllib3 PoolManager). No auth, no database, no middleware: the floor that the llm function's overhead is read
against (anchors §2.4 measured such a hop at ~1.1 ms p50).

    BENCH_UPSTREAM=http://127.0.0.1:P/v1 python -m gunicorn --config python:shared.gunicorn_conf bench.hop:app
"""
from __future__ import annotations

import os

import urllib3
from flask import Flask, Response, request

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:9999/v1").rstrip("/")
_pool = urllib3.PoolManager(num_pools=4, maxsize=32, block=False, retries=False)

app = Flask("hop")


@app.post("/v1/chat/completions")
def chat_completions():
    body = request.get_data()
    stream = b'"stream": true' in body or b'"stream":true' in body
    upstream = _pool.request("POST", UPSTREAM + "/chat/completions", body=body,
                             headers={"Content-Type": "application/json"}, preload_content=not stream,
                             timeout=urllib3.Timeout(connect=5, read=60))
    if not stream:
        return Response(upstream.data, status=upstream.status, mimetype="application/json")

    def relay():
        try:
            yield from upstream.read_chunked(decode_content=False) if upstream.chunked else upstream.stream(65536)
        finally:
            upstream.release_conn()

    return Response(relay(), status=upstream.status, mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

"""Cold start of the llm function, and what its import costs.

Cold start: spawn the exact image command (`python -m shared.serve llm`, which runs `gunicorn --config
python:shared.gunicorn_conf functions.llm.main:app` in the same process) and time, from just before the spawn, (a) the port accepting connections (gunicorn's
master binds before its worker imports the app) and (b) the first authenticated `GET /v1/models` answered 200
(the request waits in the listen backlog until the worker serves it, so this is not limited by polling). Also the
next request on the same connection (the first warm one) is timed. Then the process is stopped and the next run
starts from nothing; the OS file cache is warm after the first run, which is also the case for a container
started on a node that has the image.

Import: `python -X importtime -c "import functions.llm.main"` (module import runs create_app too) summarised by
top-level package, plus wall-clock medians of the steps a worker goes through before it can serve.
"""
from __future__ import annotations

import http.client
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import stack


def _first_authenticated_200(port: int, token: str, process: subprocess.Popen, started: float,
                             timeout: float = 60.0) -> dict:
    deadline = started + timeout
    listening = None
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise stack.SetupError(f"the function exited with code {process.returncode} during cold start")
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        except OSError:
            time.sleep(0.002)
            continue
        if listening is None:
            listening = time.perf_counter()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.sock = sock
        headers = {"Authorization": f"Bearer {token}"}
        try:
            conn.request("GET", "/v1/models", headers=headers)
            response = conn.getresponse()
            response.read()
        except OSError:
            conn.close()
            time.sleep(0.002)
            continue
        if response.status != 200:
            conn.close()
            time.sleep(0.002)
            continue
        ready = time.perf_counter()
        second_started = time.perf_counter()
        conn.request("GET", "/v1/models", headers=headers)
        second = conn.getresponse()
        second.read()
        second_ms = (time.perf_counter() - second_started) * 1000
        conn.close()
        return {"listening_s": round(listening - started, 4), "first_200_s": round(ready - started, 4),
                "second_request_ms": round(second_ms, 3)}
    raise stack.SetupError("no authenticated 200 from the cold function within the timeout")


def cold_starts(base_env: dict[str, str], token: str, runs: int, log_dir: Path) -> dict:
    samples = []
    for index in range(runs):
        port = stack.free_port()
        env = stack.function_env(base_env, port)
        log = open(log_dir / "coldstart.log", "ab")
        started = time.perf_counter()
        process = subprocess.Popen(stack.FUNCTION_ARGV, env=env, cwd=stack.ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        log.close()
        try:
            samples.append(_first_authenticated_200(port, token, process, started))
        finally:
            stack.stop_process(process)
    first = [s["first_200_s"] for s in samples]
    return {
        "runs": samples,
        "median_first_200_s": round(statistics.median(first), 4),
        "min_first_200_s": round(min(first), 4),
        "max_first_200_s": round(max(first), 4),
        "median_listening_s": round(statistics.median(s["listening_s"] for s in samples), 4),
        "median_second_request_ms": round(statistics.median(s["second_request_ms"] for s in samples), 3),
    }


# Import cost --------------------------------------------------------------------------------------------------

_STEPS = r"""
import json, sys, time
t0 = time.perf_counter()
import gevent.monkey; gevent.monkey.patch_all()
t1 = time.perf_counter()
import gunicorn.app.wsgiapp, gunicorn.workers.ggevent
t2 = time.perf_counter()
import functions.llm.app
t3 = time.perf_counter()
app = functions.llm.app.create_app()
t4 = time.perf_counter()
client = app.test_client()
t5 = time.perf_counter()
print(json.dumps({"gevent_patch_ms": (t1 - t0) * 1e3, "gunicorn_import_ms": (t2 - t1) * 1e3,
                  "llm_import_ms": (t3 - t2) * 1e3, "create_app_ms": (t4 - t3) * 1e3}))
"""


def _python(code: str, env: dict[str, str], *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *flags, "-c", code], env=env, cwd=stack.ROOT, capture_output=True,
                          text=True, timeout=120)


def import_costs(env: dict[str, str], runs: int = 5) -> dict:
    import json

    interpreter = []
    for _ in range(runs):
        began = time.perf_counter()
        _python("pass", env)
        interpreter.append((time.perf_counter() - began) * 1000)
    whole = []
    for _ in range(runs):
        out = _python("import time; t = time.perf_counter(); import functions.llm.main; "
                      "print((time.perf_counter() - t) * 1000)", env)
        if out.returncode != 0:
            raise stack.SetupError(f"import functions.llm.main failed: {out.stderr[-800:]}")
        whole.append(float(out.stdout.strip().splitlines()[-1]))
    steps = []
    for _ in range(runs):
        out = _python(_STEPS, env)
        if out.returncode != 0:
            raise stack.SetupError(f"import steps failed: {out.stderr[-800:]}")
        steps.append(json.loads(out.stdout.strip().splitlines()[-1]))
    step_medians = {key: round(statistics.median(s[key] for s in steps), 1) for key in steps[0]}

    traced = _python("import functions.llm.main", env, "-X", "importtime")
    modules = _parse_importtime(traced.stderr)
    return {
        "interpreter_startup_ms": round(statistics.median(interpreter), 1),
        "import_functions_llm_main_ms": round(statistics.median(whole), 1),
        "steps_ms": step_medians,
        "importtime": modules,
    }


def _parse_importtime(text: str) -> dict:
    """Summarise `-X importtime`: self time per top-level package (sums to the total), and the cumulative time
    of each top-level package where it was first imported (includes what it pulled in on first import)."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        try:
            self_us, cumulative_us, name = line.split(":", 1)[1].split("|", 2)
            rows.append((name.strip(), int(self_us), int(cumulative_us)))
        except ValueError:
            continue
    by_package: dict[str, int] = {}
    for name, self_us, _ in rows:
        root = name.split(".")[0]
        by_package[root] = by_package.get(root, 0) + self_us
    first_import = {name: cumulative for name, _, cumulative in rows if "." not in name}
    total_us = sum(self_us for _, self_us, _ in rows)
    return {
        "total_ms": round(total_us / 1000, 1),
        "modules_imported": len(rows),
        "self_ms_by_top_level_package": {name: round(us / 1000, 1) for name, us in
                                         sorted(by_package.items(), key=lambda item: -item[1])[:15]},
        "package_first_import_cumulative_ms": {name: round(us / 1000, 1) for name, us in
                                               sorted(first_import.items(), key=lambda item: -item[1])[:15]},
    }

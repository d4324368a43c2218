"""Benchmark of the mcp function: cold start and `tools/list` latency (`python -m bench.mcp`).

Cold start: spawn the image's command (`python -m uvicorn functions.mcp.main:app`) and time, from just before the
spawn, the first authenticated `tools/list` answered 200 (bare JSON-RPC, as Jan's callers send it). Then the
process is stopped and the next run starts from nothing (OS file cache warm, as on a node that has the image).
Import: wall-clock of `import functions.mcp.main` in fresh interpreters, and `-X importtime` totals of its
biggest dependencies. Latency: `tools/list` at concurrency 1 on one keep-alive connection (p50, p99).

Needs PostgreSQL (DATABASE_URL, or the embedded one) and starts the llm function once to mint a token.
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import stack

MCP_ARGV = [sys.executable, "-m", "uvicorn", "functions.mcp.main:app", "--host", "127.0.0.1", "--no-access-log"]
LIST = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()


def _request(conn: http.client.HTTPConnection, token: str) -> int:
    conn.request("POST", "/v1/mcp", body=LIST, headers={"Authorization": f"Bearer {token}",
                                                         "Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    return response.status


def cold_start(env: dict, token: str, log_path: Path, timeout: float = 60.0) -> float:
    port = stack.free_port()
    started = time.perf_counter()
    with open(log_path, "ab") as log:
        process = subprocess.Popen([*MCP_ARGV, "--port", str(port)], env=env, cwd=stack.ROOT, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        while time.perf_counter() - started < timeout:
            if process.poll() is not None:
                raise stack.SetupError(f"the mcp function exited with {process.returncode} (log {log_path})")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
                conn.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
                if _request(conn, token) == 200:
                    return time.perf_counter() - started
            except OSError:
                time.sleep(0.005)
        raise stack.SetupError("no authenticated 200 from the cold mcp function")
    finally:
        stack.stop_process(process)


def latency(base_url_port: int, token: str, requests: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", base_url_port, timeout=30)
    for _ in range(20):  # warm-up: connection, token cache, tool configuration cache
        _request(conn, token)
    samples = []
    for _ in range(requests):
        begin = time.perf_counter()
        assert _request(conn, token) == 200
        samples.append((time.perf_counter() - begin) * 1000)
    samples.sort()
    return {"requests": requests, "p50_ms": round(statistics.median(samples), 3),
            "p99_ms": round(samples[int(len(samples) * 0.99) - 1], 3)}


def import_wall(env: dict, runs: int) -> dict:
    code = "import time; t = time.perf_counter(); import functions.mcp.main; print(time.perf_counter() - t)"
    walls = [float(subprocess.run([sys.executable, "-c", code], env=env, cwd=stack.ROOT, capture_output=True,
                                  text=True, check=True).stdout) for _ in range(runs)]
    return {"median_import_s": round(statistics.median(walls), 4), "min_import_s": round(min(walls), 4)}


def import_breakdown(env: dict) -> dict:
    stderr = subprocess.run([sys.executable, "-X", "importtime", "-c", "import functions.mcp.main"], env=env,
                            cwd=stack.ROOT, capture_output=True, text=True, check=True).stderr
    biggest: dict[str, int] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _self, cumulative, name = line.split(":", 1)[1].split("|")
        package = name.strip().split(".")[0]
        biggest[package] = max(biggest.get(package, 0), int(cumulative))
    top = sorted(biggest.items(), key=lambda item: -item[1])[:10]
    return {package: round(us / 1000, 1) for package, us in top}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mcp", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-mcp-"))
    with contextlib.ExitStack() as resources:
        database = stack.start_database(resources, database="jan_bench_mcp")
        env = stack.base_env(database.url)
        stack.migrate(env, log_dir)
        llm = stack.start_function(resources, env, log_dir, name="llm")
        token = stack.credentials(llm).bearer
        mcp_env = {**env, "LOG_LEVEL": "WARNING", "SEARCH_API_KEY": ""}
        colds = [cold_start(mcp_env, token, log_dir / "mcp-cold.log") for _ in range(args.cold_runs)]
        port = stack.free_port()
        process = stack.spawn([*MCP_ARGV, "--port", str(port)], mcp_env, log_dir / "mcp.log")
        resources.callback(stack.stop_process, process)
        stack.wait_http(f"http://127.0.0.1:{port}/healthz", 60, process)
        results = {
            "cold_start_first_200_s": {"median": round(statistics.median(colds), 4), "min": round(min(colds), 4),
                                       "max": round(max(colds), 4), "runs": len(colds)},
            "import": import_wall(mcp_env, runs=5),
            "import_biggest_ms": import_breakdown(mcp_env),
            "tools_list_c1": latency(port, token, args.requests),
            "loadavg": Path("/proc/loadavg").read_text().split()[:3],
        }
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

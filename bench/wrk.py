"""Driving wrk (C, keep-alive, µs latency histogram) for the concurrent runs; a Lua script adds the body and
headers, collects one response header and prints the exact percentiles as JSON."""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

_SCRIPT = """
wrk.method = "POST"
wrk.body = [==[{body}]==]
{headers}
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) values = {{}}; count = 0; statuses = {{}} end
{response}
function done(summary, latency, requests)
  local collected = {{}}
  local non200 = 0
  for _, t in ipairs(threads) do
    local tv = t:get("values")
    if type(tv) == "table" then for _, v in ipairs(tv) do table.insert(collected, v) end end
  end
  local parts = {{}}
  for _, v in ipairs(collected) do table.insert(parts, string.format("%.3f", v)) end
  local e = summary.errors
  io.write("\\nBENCH_JSON " .. string.format(
    '{{"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p95_us": %d, "p99_us": %d, ' ..
    '"mean_us": %.1f, "max_us": %d, "min_us": %d, "errors_connect": %d, "errors_read": %d, "errors_write": %d, ' ..
    '"errors_status": %d, "errors_timeout": %d, "header_values": [%s]}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.mean, latency.max, latency.min, e.connect, e.read, e.write, e.status,
    e.timeout, table.concat(parts, ",")))
end
"""

_RESPONSE_WITH_HEADER = """
function response(status, headers, body)
  local v = headers["{header}"]
  if v then count = count + 1; values[count] = tonumber(v) end
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def run(url: str, body: bytes, headers: dict, *, connections: int, seconds: float, threads: int = 2,
        header: str | None = None) -> dict:
    header_lines = "\n".join(f'wrk.headers["{name}"] = [==[{value}]==]' for name, value in headers.items())
    script = _SCRIPT.format(body=body.decode(), headers=header_lines,
                            response=_RESPONSE_WITH_HEADER.format(header=header) if header else "")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.lua"
        path.write_text(script)
        completed = subprocess.run(
            ["wrk", "-t", str(min(threads, connections)), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
             "--timeout", "10s", "-s", str(path), url],
            capture_output=True, text=True, timeout=seconds + 60)
    for line in completed.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            raw = json.loads(line[len("BENCH_JSON "):])
            break
    else:
        raise RuntimeError(f"wrk printed no result (exit {completed.returncode}): {completed.stderr[-500:]}")
    errors = sum(raw[key] for key in raw if key.startswith("errors_"))
    duration = raw["duration_us"] / 1e6
    return {
        "client": "wrk",
        "connections": connections,
        "requests": raw["requests"],
        "seconds": round(duration, 3),
        "throughput_rps": round(raw["requests"] / duration, 1) if duration else 0.0,
        "errors": errors,
        "latency_ms": {key: round(raw[f"{key}_us"] / 1000, 3) for key in ("p50", "p90", "p95", "p99", "max", "min")}
        | {"mean": round(raw["mean_us"] / 1000, 3), "n": raw["requests"]},
        "header_values": raw["header_values"],
    }

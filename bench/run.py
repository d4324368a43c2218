"""One command for the whole benchmark: `python -m bench` (or `python bench/run.py`, or `make bench`).

Sets everything up itself (database, migrations, keys, the upstream double, the provider registration, the llm
function under its exact image command, a bare-hop reference), measures side by side in one run, stops
everything (also on failure), writes bench/results/<timestamp>.json and prints a Markdown summary.

    1. non-stream chat, c=1 and c=16: direct to the upstream double, through a bare Python hop, and through the
       llm function (guest bearer token, and API key): latency percentiles, latency added by the function,
       throughput, and the function's own X-Overhead-Duration-Ms header.
    2. stream: time to the first SSE `data:` line, direct / bare hop / function.
    3. cold start: fresh gunicorn process -> first authenticated 200 on GET /v1/models (median of --cold-runs),
       and the import cost of functions.llm.main.

Fixed request counts and durations, loopback only; about two minutes with the defaults.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import client, coldstart, cpu, stack, stats, wrk  # noqa: E402

RESULTS_DIR = stack.ROOT / "bench" / "results"
OVERHEAD_HEADER = "X-Overhead-Duration-Ms"
PROMPT = "Benchmark: please answer with a short friendly greeting."

# Aims of issue 2 on a 2-core machine.
AIM_ADDED_P50_C1_MS = 2.0
AIM_FIRST_CHUNK_ADDED_P50_MS = 2.5
AIM_COLD_START_S = 0.8


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# Environment --------------------------------------------------------------------------------------------------


def ensure_wrk(allow_install: bool) -> bool:
    """wrk is the c=16 client. Install it from Debian if missing (root + apt-get only); else fall back."""
    if wrk.available():
        return True
    if not allow_install or shutil.which("apt-get") is None or os.geteuid() != 0:
        log("wrk not found: the c=16 runs use the Python client (its own CPU use inflates latencies)")
        return False
    log("wrk not found: apt-get install -y wrk")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "timeout": 300}
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        if subprocess.run(["apt-get", "install", "-y", "wrk"], env=env, **quiet).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, **quiet)
            subprocess.run(["apt-get", "install", "-y", "wrk"], env=env, **quiet)
    except (OSError, subprocess.TimeoutExpired):
        pass
    if not wrk.available():
        log("installing wrk failed: the c=16 runs use the Python client")
    return wrk.available()


def _read(path: str) -> str | None:
    with contextlib.suppress(OSError):
        return Path(path).read_text().strip()
    return None


def machine() -> dict:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory_gib = round(int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024, 1)
    versions = {}
    for name in ("flask", "gunicorn", "gevent", "sqlalchemy", "psycopg", "urllib3", "pyjwt", "werkzeug"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[name] = version(name)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=stack.ROOT, capture_output=True,
                            text=True).stdout.strip() or os.environ.get("BENCH_GIT_COMMIT", "unknown")
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "shared", "functions", "migrations"],
                           cwd=stack.ROOT, capture_output=True, text=True).stdout.splitlines()
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": memory_gib, "kernel": platform.release(),
        "os": platform.platform(), "python": platform.python_version(), "packages": versions,
        "git_commit": commit, "uncommitted_files_under_test": len(dirty), "wrk": shutil.which("wrk"),
        "load_average_at_start": list(os.getloadavg()), "niceness": os.getpriority(os.PRIO_PROCESS, 0),
        "autogroup": _read("/proc/self/autogroup"),
    }


# Measurements -------------------------------------------------------------------------------------------------


def chat_body(model: str, stream: bool = False) -> bytes:
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 32, "temperature": 0}
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()


def arms(upstream: stack.Upstream, hop: stack.Function, function: stack.Function, creds: stack.Credentials,
         stream: bool) -> dict[str, client.Target]:
    json_headers = {"Content-Type": "application/json"}
    direct_body = chat_body(stack.UPSTREAM_MODEL, stream)
    function_body = chat_body(stack.MODEL_ID, stream)
    targets = {
        "direct": client.Target("127.0.0.1", upstream.port, "/v1/chat/completions", direct_body, json_headers),
        "hop": client.Target("127.0.0.1", hop.port, "/v1/chat/completions", direct_body, json_headers),
        "llm_jwt": client.Target("127.0.0.1", function.port, "/v1/chat/completions", function_body,
                                 {**json_headers, "Authorization": f"Bearer {creds.bearer}"}),
    }
    if not stream:
        targets["llm_apikey"] = client.Target("127.0.0.1", function.port, "/v1/chat/completions", function_body,
                                              {**json_headers, "Authorization": f"Bearer {creds.api_key}"})
    return targets


def check_arms(targets: dict[str, client.Target], stream: bool) -> None:
    """One request per arm before measuring: 200, the echo, and the overhead header where expected."""
    for name, target in targets.items():
        result = client.run(target, concurrency=1, requests=1, stream=stream, header=OVERHEAD_HEADER,
                            warmup_per_connection=0)
        if result.errors or result.completed != 1:
            raise stack.SetupError(f"{name}: the check request failed ({result.statuses})")
        if name.startswith("llm") and not stream and not result.header_values:
            raise stack.SetupError(f"{name}: no {OVERHEAD_HEADER} header on a non-stream reply")


def _order(names: list[str], round_index: int) -> list[str]:
    shift = round_index % len(names)
    return names[shift:] + names[:shift]


def measure_c1(targets: dict[str, client.Target], requests: int, rounds: int, warmup: int, stream: bool,
               meter: cpu.CpuMeter, max_seconds: float) -> dict:
    """Closed loop at c=1 with the Python client, interleaved: `rounds` rounds, each arm once per round (rotating
    order), so drift (CPU frequency, cache, background work) hits every arm alike."""
    names = list(targets)
    for name in names:
        client.run(targets[name], concurrency=1, requests=warmup, stream=stream, max_seconds=max_seconds / rounds)
    merged = {name: client.LoadResult(concurrency=1) for name in names}
    spent = {name: {} for name in names}
    per_round = max(1, requests // rounds)
    for round_index in range(rounds):
        for name in _order(names, round_index):
            before = meter.snapshot()
            merged[name].merge(client.run(targets[name], concurrency=1, requests=per_round, stream=stream,
                                          header=OVERHEAD_HEADER, max_seconds=max_seconds / rounds))
            _accumulate(spent[name], cpu.CpuMeter.delta(before, meter.snapshot()))
    out = {}
    for name, result in merged.items():
        entry = {
            "client": "python (http.client, keep-alive)",
            "connections": 1,
            "requests": result.completed,
            "errors": result.errors,
            "throughput_rps": round(result.throughput, 1),
            "latency_ms": stats.summary(result.latencies_ms),
        }
        if stream:
            entry["first_chunk_ms"] = stats.summary(result.first_chunk_ms)
        if result.header_values:
            entry["overhead_header_ms"] = stats.summary(result.header_values)
        entry["cpu"] = cpu.per_request(spent[name], result.completed, result.wall_seconds)
        out[name] = entry
    return out


def _accumulate(total: dict, delta: dict) -> None:
    for key, value in delta.items():
        total[key] = total.get(key, 0.0) + value


def measure_concurrent(targets: dict[str, client.Target], connections: int, seconds: float, rounds: int,
                       use_wrk: bool, python_requests: int, meter: cpu.CpuMeter) -> dict:
    names = list(targets)
    spent = {name: {} for name in names}
    if use_wrk:
        for name in names:  # warm-up, discarded
            target = targets[name]
            wrk.run(f"http://{target.host}:{target.port}{target.path}", target.body, target.headers,
                    connections=connections, seconds=1)
        runs: dict[str, list[dict]] = {name: [] for name in names}
        for round_index in range(rounds):
            for name in _order(names, round_index):
                target = targets[name]
                before = meter.snapshot()
                runs[name].append(wrk.run(f"http://{target.host}:{target.port}{target.path}", target.body,
                                          target.headers, connections=connections, seconds=seconds,
                                          header=OVERHEAD_HEADER if name.startswith("llm") else None))
                _accumulate(spent[name], cpu.CpuMeter.delta(before, meter.snapshot()))
        out = {}
        for name, results in runs.items():
            # Percentiles of a merged distribution need the samples; wrk gives percentiles per run, so report the
            # median run's percentiles (per key) and the summed throughput.
            requests = sum(r["requests"] for r in results)
            seconds_total = sum(r["seconds"] for r in results)
            latency = {key: round(sorted(r["latency_ms"][key] for r in results)[len(results) // 2], 3)
                       for key in results[0]["latency_ms"] if key != "n"}
            entry = {"client": "wrk", "connections": connections, "requests": requests,
                     "errors": sum(r["errors"] for r in results),
                     "throughput_rps": round(requests / seconds_total, 1) if seconds_total else 0.0,
                     "latency_ms": latency, "runs": [{k: v for k, v in r.items() if k != "header_values"}
                                                     for r in results]}
            header_values = [v for r in results for v in r["header_values"]]
            if header_values:
                entry["overhead_header_ms"] = stats.summary(header_values)
            entry["cpu"] = cpu.per_request(spent[name], requests, seconds_total)
            out[name] = entry
        return out
    for name in names:
        client.run(targets[name], concurrency=connections, requests=connections * 20, max_seconds=1.0)
    merged = {name: client.LoadResult(concurrency=connections) for name in names}
    for round_index in range(rounds):
        for name in _order(names, round_index):
            before = meter.snapshot()
            merged[name].merge(client.run(targets[name], concurrency=connections,
                                          requests=max(connections, python_requests // rounds),
                                          header=OVERHEAD_HEADER, max_seconds=seconds))
            _accumulate(spent[name], cpu.CpuMeter.delta(before, meter.snapshot()))
    out = {}
    for name, result in merged.items():
        entry = {"client": "python (http.client, keep-alive, threads)", "connections": connections,
                 "requests": result.completed, "errors": result.errors,
                 "throughput_rps": round(result.throughput, 1), "latency_ms": stats.summary(result.latencies_ms)}
        if result.header_values:
            entry["overhead_header_ms"] = stats.summary(result.header_values)
        entry["cpu"] = cpu.per_request(spent[name], result.completed, result.wall_seconds)
        out[name] = entry
    return out


def add_differences(block: dict, key: str = "latency_ms") -> None:
    """Added latency of each hop over direct, and of the function over the bare hop."""
    direct = block["direct"][key]
    for name, entry in block.items():
        if name == "direct":
            continue
        entry[f"added_vs_direct_{key}"] = stats.added(entry[key], direct)
        if name.startswith("llm") and "hop" in block:
            entry[f"added_vs_hop_{key}"] = stats.added(entry[key], block["hop"][key])


# Orchestration ------------------------------------------------------------------------------------------------


def start_hop(stack_: contextlib.ExitStack, env: dict[str, str], upstream: stack.Upstream,
              log_dir: Path) -> stack.Function:
    port = stack.free_port()
    argv = [sys.executable, "-m", "gunicorn", "--config", "python:shared.gunicorn_conf", "bench.hop:app"]
    process = stack.spawn(argv, {**stack.function_env(env, port), "BENCH_UPSTREAM": upstream.base_url},
                          log_dir / "hop.log")
    stack_.callback(stack.stop_process, process)
    stack.wait_http(f"http://127.0.0.1:{port}/v1/chat/completions", 30, process, expect=405)
    return stack.Function(process, port)


@contextlib.contextmanager
def priority(nice: int | None):
    """Niceness for the bench and its children. Linux groups the processes of each session (autogroup) and
    shares the CPU between groups first, so plain nice only matters inside our own group: the autogroup's nice
    is set too (and restored afterwards, since it applies to the whole session)."""
    if nice is None:
        yield
        return
    autogroup = Path("/proc/self/autogroup")
    previous = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        previous = int(autogroup.read_text().split("nice")[1])
        autogroup.write_text(str(nice))
    os.setpriority(os.PRIO_PROCESS, 0, nice)  # inherited by every child: postgres, the double, the function, wrk
    try:
        yield
    finally:
        if previous is not None:
            with contextlib.suppress(OSError):
                autogroup.write_text(str(previous))


def run(args: argparse.Namespace) -> dict:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    log_dir = stack.DATA_DIR / "bench-logs" / stamp
    log_dir.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    use_wrk = ensure_wrk(not args.no_install)
    results: dict = {"timestamp": stamp, "machine": machine(), "settings": vars(args).copy(), "aims": {
        "added_p50_c1_ms": AIM_ADDED_P50_C1_MS, "first_chunk_added_p50_ms": AIM_FIRST_CHUNK_ADDED_P50_MS,
        "cold_start_s": AIM_COLD_START_S}, "logs": str(log_dir)}

    with contextlib.ExitStack() as resources:
        log("database")
        database = stack.start_database(resources)
        results["database"] = database.source
        env = stack.base_env(database.url)
        log("migrations")
        stack.migrate(env, log_dir)

        log("upstream double (TCP_NODELAY wrapper) and the unmodified double")
        upstream = stack.start_upstream(resources, env, log_dir, "bench.upstream")
        raw_upstream = stack.start_upstream(resources, env, log_dir, "tests.doubles.openai_upstream")
        stack.register_provider(upstream, env, log_dir)

        log("llm function (exact image command) and the bare hop")
        function = stack.start_function(resources, env, log_dir)
        hop = start_hop(resources, env, upstream, log_dir)
        creds = stack.credentials(function)
        meter = cpu.CpuMeter()
        meter.add("upstream", upstream.process.pid)
        meter.add("hop", hop.process.pid)
        meter.add("function", function.process.pid)
        if database.data_dir is not None:
            meter.add("postgres", cpu.postmaster_pid(database.data_dir))
        usage_before = stack.count_rows(database.url, "usage_records")

        # The unmodified double, to document its Nagle stall (see bench/upstream.py).
        raw = client.Target("127.0.0.1", raw_upstream.port, "/v1/chat/completions",
                            chat_body(stack.UPSTREAM_MODEL), {"Content-Type": "application/json"})
        raw_result = client.run(raw, concurrency=1, requests=args.raw_requests)
        raw_stream = client.run(client.Target(raw.host, raw.port, raw.path, chat_body(stack.UPSTREAM_MODEL, True),
                                              raw.headers), concurrency=1, requests=args.raw_requests, stream=True)
        results["unmodified_double_c1"] = {"latency_ms": stats.summary(raw_result.latencies_ms),
                                           "first_chunk_ms": stats.summary(raw_stream.first_chunk_ms)}
        stack.stop_process(raw_upstream.process)

        nonstream = arms(upstream, hop, function, creds, stream=False)
        streaming = arms(upstream, hop, function, creds, stream=True)
        check_arms(nonstream, stream=False)
        check_arms(streaming, stream=True)

        quiet = cpu.QuietWaiter(args.quiet_wait)
        results["quiet_wait"] = {"nonstream_c1": quiet.wait(log)}
        log(f"non-stream c=1: {args.c1_requests} requests per arm in {args.rounds} interleaved rounds")
        c1 = measure_c1(nonstream, args.c1_requests, args.rounds, args.warmup, stream=False, meter=meter,
                        max_seconds=args.c1_seconds)
        add_differences(c1)
        results["nonstream_c1"] = c1

        results["quiet_wait"][f"nonstream_c{args.concurrency}"] = quiet.wait(log)
        log(f"non-stream c={args.concurrency}: {'wrk' if use_wrk else 'python client'}, "
            f"{args.rounds} rounds x {args.c16_seconds} s per arm")
        c16 = measure_concurrent(nonstream, args.concurrency, args.c16_seconds, args.rounds, use_wrk,
                                 args.c16_python_requests, meter)
        add_differences(c16)
        results[f"nonstream_c{args.concurrency}"] = c16

        results["quiet_wait"]["stream_c1"] = quiet.wait(log)
        log(f"stream first chunk c=1: {args.stream_requests} streams per arm")
        st = measure_c1(streaming, args.stream_requests, args.rounds, args.warmup // 2, stream=True, meter=meter,
                        max_seconds=args.stream_seconds)
        add_differences(st, "first_chunk_ms")
        add_differences(st, "latency_ms")
        results["stream_c1"] = st

        time.sleep(0.5)  # the last usage rows are written after their responses
        usage_after = stack.count_rows(database.url, "usage_records")
        function_chat = (sum(c1[n]["requests"] for n in c1 if n.startswith("llm"))
                         + sum(c16[n]["requests"] for n in c16 if n.startswith("llm"))
                         + st["llm_jwt"]["requests"])
        results["usage_records"] = {"rows_written_during_run": usage_after - usage_before,
                                    "measured_function_chat_requests": function_chat,
                                    "note": "rows also include warm-up and check requests"}

        # Quiet machine for the cold start: the warm function and the hop are not needed any more.
        stack.stop_process(hop.process)
        stack.stop_process(function.process)
        results["quiet_wait"]["cold_start"] = quiet.wait(log)
        log(f"cold start: {args.cold_runs} fresh processes")
        results["cold_start"] = coldstart.cold_starts(env, creds.bearer, args.cold_runs, log_dir)
        log("import costs")
        results["import"] = coldstart.import_costs(stack.function_env(env, 0), runs=args.import_runs)

    results["elapsed_seconds"] = round(time.monotonic() - began, 1)
    results["machine"]["load_average_at_end"] = list(os.getloadavg())
    results["verdict"] = verdict(results, args.concurrency)
    return results


def verdict(results: dict, concurrency: int) -> dict:
    c1 = results["nonstream_c1"]
    st = results["stream_c1"]
    out = {}
    for name in ("llm_jwt", "llm_apikey"):
        added = c1[name]["added_vs_direct_latency_ms"]["p50"]
        out[f"added_p50_c1_{name}_ms"] = {"value": added, "aim": AIM_ADDED_P50_C1_MS,
                                           "met": added <= AIM_ADDED_P50_C1_MS}
    first = st["llm_jwt"]["added_vs_direct_first_chunk_ms"]["p50"]
    out["first_chunk_added_p50_ms"] = {"value": first, "aim": AIM_FIRST_CHUNK_ADDED_P50_MS,
                                       "met": first <= AIM_FIRST_CHUNK_ADDED_P50_MS}
    cold = results["cold_start"]["median_first_200_s"]
    out["cold_start_median_s"] = {"value": cold, "aim": AIM_COLD_START_S, "met": cold <= AIM_COLD_START_S}
    return out


# Report -------------------------------------------------------------------------------------------------------


def markdown(results: dict) -> str:
    conc = results["settings"]["concurrency"]
    m = results["machine"]
    busy = [entry.get("cpu", {}).get("other_processes_busy_percent") for block in
            (results["nonstream_c1"], results[f"nonstream_c{conc}"], results["stream_c1"]) for entry in block.values()]
    busy = [b for b in busy if b is not None]
    lines = [f"Run {results['timestamp']} (commit {m['git_commit']}, {m['uncommitted_files_under_test']} uncommitted "
             f"files under test) on {m['cpu']} ({m['cores']} cores, {m['memory_gib']} GiB), Python {m['python']}, "
             f"{results['database']}; {results['elapsed_seconds']} s. Niceness {m['niceness']}"
             f" ({m.get('autogroup')}); load average at start {m['load_average_at_start'][0]:.1f}.", ""]
    if busy and max(busy) > 25:
        lines += [f"**Shared machine: other processes kept {min(busy):.0f}–{max(busy):.0f} % of all cores busy "
                  f"during the measurements; latencies include their scheduling delays.**", ""]

    def row(label, entry, key="latency_ms", added_key=None):
        lat = entry[key]
        added = entry.get(added_key or f"added_vs_direct_{key}", {})
        hop = entry.get(f"added_vs_hop_{key}", {})
        fmt = lambda d, k: f"{d[k]:.2f}" if k in d else "–"  # noqa: E731
        trio = lambda d: f"{fmt(d, 'p50')} / {fmt(d, 'p95')} / {fmt(d, 'p99')}"  # noqa: E731
        overhead = entry.get("overhead_header_ms")
        overhead_cell = f"{fmt(overhead, 'p50')} / {fmt(overhead, 'p95')}" if overhead else "–"
        return (f"| {label} | {trio(lat)} | {trio(added)} | {trio(hop)} | {entry['throughput_rps']:.0f} | "
                f"{overhead_cell} |")

    header = ("| arm | latency p50 / p95 / p99 ms | added vs direct p50 / p95 / p99 ms | added vs bare hop "
              "p50 / p95 / p99 ms | req/s | X-Overhead-Duration-Ms p50 / p95 |\n|---|---|---|---|---|---|")
    labels = {"direct": "direct to upstream double", "hop": "bare Python hop", "llm_jwt": "llm function, guest JWT",
              "llm_apikey": "llm function, API key"}
    for title, block in ((f"Non-stream chat, c=1 ({results['nonstream_c1']['direct']['client']})",
                          results["nonstream_c1"]),
                         (f"Non-stream chat, c={conc} ({results[f'nonstream_c{conc}']['direct']['client']})",
                          results[f"nonstream_c{conc}"])):
        lines += [f"**{title}**", "", header]
        lines += [row(labels[name], entry) for name, entry in block.items()]
        lines.append("")
    lines += ["**CPU per request (ms) and the rest of the machine**", "",
              "| run | arm | function | postgres | upstream double | bare hop | client | other processes busy |",
              "|---|---|---|---|---|---|---|---|"]
    for run_name in ("nonstream_c1", f"nonstream_c{conc}", "stream_c1"):
        for name, entry in results[run_name].items():
            c = entry.get("cpu", {})
            val = lambda k: f"{c[k]:.3f}" if c.get(k) is not None else "–"  # noqa: E731
            lines.append(f"| {run_name} | {labels[name]} | {val('function_cpu_ms_per_request')} | "
                         f"{val('postgres_cpu_ms_per_request')} | {val('upstream_cpu_ms_per_request')} | "
                         f"{val('hop_cpu_ms_per_request')} | {val('client_cpu_ms_per_request')} | "
                         f"{c.get('other_processes_busy_percent', '–')} % |")
    lines.append("")
    st = results["stream_c1"]
    lines += ["**Stream, c=1: time to first `data:` line**", "",
              "| arm | first chunk p50 / p95 / p99 ms | added vs direct p50 / p95 / p99 ms | added vs bare hop "
              "p50 / p95 / p99 ms | streams/s | – |\n|---|---|---|---|---|---|"]
    lines += [row(labels[name], entry, key="first_chunk_ms") for name, entry in st.items()]
    cold = results["cold_start"]
    imp = results["import"]
    lines += ["", "**Cold start** (fresh gunicorn process → first authenticated 200 on GET /v1/models)", "",
              f"median {cold['median_first_200_s']:.3f} s (min {cold['min_first_200_s']:.3f}, max "
              f"{cold['max_first_200_s']:.3f}, {len(cold['runs'])} runs); port listening after "
              f"{cold['median_listening_s']:.3f} s; next request {cold['median_second_request_ms']:.1f} ms.", "",
              f"Import: interpreter {imp['interpreter_startup_ms']} ms; `import functions.llm.main` "
              f"{imp['import_functions_llm_main_ms']} ms; steps {imp['steps_ms']}.", "",
              "Self time by package (importtime): " + ", ".join(
                  f"{k} {v}" for k, v in list(imp["importtime"]["self_ms_by_top_level_package"].items())[:10]), "",
              "**Aims**", ""]
    for name, item in results["verdict"].items():
        lines.append(f"- {name}: {item['value']} (aim ≤ {item['aim']}) — {'met' if item['met'] else 'MISSED'}")
    raw = results["unmodified_double_c1"]
    lines += ["", f"Unmodified upstream double (no TCP_NODELAY), c=1: p50 {raw['latency_ms']['p50']} ms, "
              f"first chunk p50 {raw['first_chunk_ms']['p50']} ms.",
              f"Usage records: {results['usage_records']['rows_written_during_run']} rows for "
              f"{results['usage_records']['measured_function_chat_requests']} measured function requests."]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--c1-requests", type=int, default=3000, help="measured non-stream requests per arm at c=1")
    parser.add_argument("--c1-seconds", type=float, default=15.0,
                        help="time cap per arm for the c=1 requests (a busy machine ends a run early)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--c16-seconds", type=float, default=4.0, help="wrk seconds per arm and round")
    parser.add_argument("--c16-python-requests", type=int, default=3000,
                        help="requests per arm when the Python client replaces wrk")
    parser.add_argument("--stream-requests", type=int, default=1500, help="measured streams per arm")
    parser.add_argument("--stream-seconds", type=float, default=10.0, help="time cap per arm for the streams")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per measurement")
    parser.add_argument("--warmup", type=int, default=300, help="discarded requests per arm before measuring")
    parser.add_argument("--raw-requests", type=int, default=40, help="requests to the unmodified double")
    parser.add_argument("--cold-runs", type=int, default=7)
    parser.add_argument("--import-runs", type=int, default=3)
    parser.add_argument("--quiet-wait", type=float, default=30.0,
                        help="total seconds the run may wait for other work on the machine to stop (0: never)")
    parser.add_argument("--nice", type=int, default=None,
                        help="run the bench and everything it starts at this niceness (negative needs root): on a "
                             "machine shared with other work, e.g. -10 keeps other jobs from adding their scheduling "
                             "delays to the sub-millisecond hops; recorded in the results")
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (small counts; numbers are rough)")
    parser.add_argument("--no-install", action="store_true", help="never apt-get install wrk")
    parser.add_argument("--output", type=Path, default=None, help="result file (default bench/results/<ts>.json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.c1_requests, args.c16_seconds, args.c16_python_requests = 300, 1.0, 300
        args.stream_requests, args.warmup, args.raw_requests, args.cold_runs, args.import_runs = 150, 50, 10, 2, 1
        args.quiet_wait = 0.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with priority(args.nice):
        results = run(args)
    output = args.output or RESULTS_DIR / f"{results['timestamp']}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    results["settings"]["output"] = str(output)
    output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    summary = markdown(results)
    output.with_suffix(".md").write_text(summary + "\n")
    print(summary)
    log(f"results: {output} (and {output.with_suffix('.md').name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

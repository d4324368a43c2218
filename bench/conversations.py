"""The conversation store at scale (issue 3): `python -m bench.conversations`.

Seeds by set-based SQL (INSERT … SELECT … FROM generate_series) into the real tables: one big user with
10 000 conversations × 50 items and 1 000 other users × 100 conversations × 10 items (1.5 M items, the big
user's conversations interleaved with the others' in id order), then VACUUM ANALYZE. The seeded database
(`jan_bench_conversations` on the embedded server, or DATABASE_URL) is kept: a re-run finds the data and skips
seeding (`--reseed` forces it).

Then mints an access token for the big user (an auth_sessions row + TokenIssuer), starts the llm function under
its image command, and measures over HTTP (c=1, keep-alive) the latency of:
    GET /v1/conversations?limit=20                   first page
    GET /v1/conversations?limit=20&after=<id>        deep pages (cursors 2 000 … 9 000 conversations down)
    GET /v1/conversations/{id}/items?limit=20        items pages of 50-item conversations
    GET /v1/projects                                 the big user's 20 projects
and runs EXPLAIN (ANALYZE, BUFFERS) for the SQL the two list requests really send (captured in-process from
SQLAlchemy's cursor events). Writes bench/results/conversations-<timestamp>.json and prints a summary.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import re
import socket
import sys
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import stack, stats  # noqa: E402

DATABASE = "jan_bench_conversations"
RESULTS_DIR = stack.ROOT / "bench" / "results"
BIG_USER = "bench-big-user"
BIG_CONVERSATIONS, BIG_ITEMS = 10_000, 50
OTHER_USERS, OTHER_CONVERSATIONS, OTHER_ITEMS = 1_000, 100, 10
BIG_PROJECTS = 20
EXPECTED_ITEMS = BIG_CONVERSATIONS * BIG_ITEMS + OTHER_USERS * OTHER_CONVERSATIONS * OTHER_ITEMS
AIM_P50_MS = 10.0


def log(message: str) -> None:
    print(f"[bench.conversations {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# Database and seed ---------------------------------------------------------------------------------------------


def seeded(conn) -> bool:
    row = conn.execute("SELECT id FROM users WHERE public_id = %s", (BIG_USER,)).fetchone()
    if row is None:
        return False
    big = conn.execute("SELECT count(*) FROM conversations WHERE user_id = %s AND deleted_at IS NULL",
                       (row[0],)).fetchone()[0]
    items = conn.execute("SELECT reltuples FROM pg_class WHERE relname = 'conversation_items'").fetchone()[0]
    return big == BIG_CONVERSATIONS and items >= EXPECTED_ITEMS * 0.95


# Each step is one set-based statement. Ids are `conv_`/`msg_` + 16 hex digits of a unique number (hex is within
# Jan's [0-9a-z]); the big user's conversations are every 11th row, so they interleave with the others' by id.
SEED_STEPS = [
    ("wipe earlier seed", """
        DELETE FROM users WHERE public_id = %(big)s OR public_id LIKE 'bench-user-%%'"""),
    ("users", """
        INSERT INTO users (public_id, issuer, subject, username, email, name, role)
        SELECT %(big)s, %(issuer)s, %(big)s || '-subject', 'bench-big', 'bench-big@example.test', 'Bench Big', 'user'
        UNION ALL
        SELECT 'bench-user-' || g, %(issuer)s, 'bench-user-' || g || '-subject', 'bench' || g,
               'bench-user-' || g || '@example.test', 'Bench ' || g, 'user'
        FROM generate_series(1, %(other_users)s) g"""),
    ("projects", """
        INSERT INTO projects (public_id, user_id, name, instruction)
        SELECT 'proj_' || lpad(to_hex(g), 16, '0'), u.id, 'Project ' || g, 'Be brief.'
        FROM users u, generate_series(1, %(big_projects)s) g WHERE u.public_id = %(big)s"""),
    ("conversations", """
        WITH others AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM users
                        WHERE public_id LIKE 'bench-user-%%'),
             big AS (SELECT id FROM users WHERE public_id = %(big)s),
             series AS (SELECT k, k %% 11 = 0 AS is_big, (k - k / 11 - 1) %% %(other_users)s AS other_n
                        FROM generate_series(1, %(total)s) k)
        INSERT INTO conversations (public_id, user_id, title, metadata, created_at, updated_at)
        SELECT 'conv_' || lpad(to_hex(1000000000 + s.k), 16, '0'),
               CASE WHEN s.is_big THEN (SELECT id FROM big) ELSE o.id END,
               'Conversation ' || s.k, '{"source": "bench"}'::jsonb,
               now() - make_interval(secs => %(total)s - s.k), now() - make_interval(secs => %(total)s - s.k)
        FROM series s LEFT JOIN others o ON NOT s.is_big AND o.n = s.other_n
        ORDER BY s.k"""),
    ("conversation_items", """
        INSERT INTO conversation_items (public_id, conversation_id, branch, sequence_number, type, role, content,
                                        status, created_at)
        SELECT 'msg_' || lpad(to_hex(c.id * 64 + s), 16, '0'), c.id, 'MAIN', s, 'message',
               CASE WHEN s %% 2 = 1 THEN 'user' ELSE 'assistant' END,
               jsonb_build_array(jsonb_build_object(
                   'type', CASE WHEN s %% 2 = 1 THEN 'input_text' ELSE 'output_text' END,
                   'text', 'Message ' || s || ' of conversation ' || c.id
                           || ': some ordinary chat text of about one short paragraph, for a realistic row size.')),
               'completed', c.created_at + make_interval(secs => s)
        FROM conversations c
        JOIN users u ON u.id = c.user_id AND (u.public_id = %(big)s OR u.public_id LIKE 'bench-user-%%')
        CROSS JOIN LATERAL generate_series(1, CASE WHEN u.public_id = %(big)s THEN %(big_items)s
                                                   ELSE %(other_items)s END) s
        ORDER BY c.id, s"""),
]


def seed(libpq_url: str, issuer: str) -> dict:
    import psycopg

    params = {"big": BIG_USER, "issuer": issuer, "other_users": OTHER_USERS, "big_projects": BIG_PROJECTS,
              "total": BIG_CONVERSATIONS + OTHER_USERS * OTHER_CONVERSATIONS, "big_items": BIG_ITEMS,
              "other_items": OTHER_ITEMS}
    timings = {}
    began = time.monotonic()
    with psycopg.connect(libpq_url) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute("SET work_mem = '64MB'")
        for name, statement in SEED_STEPS:
            started = time.monotonic()
            rows = conn.execute(statement, params).rowcount
            timings[name] = {"seconds": round(time.monotonic() - started, 2), "rows": rows}
            log(f"seed {name}: {rows} rows in {timings[name]['seconds']} s")
        conn.commit()
    with psycopg.connect(libpq_url, autocommit=True) as conn:
        started = time.monotonic()
        conn.execute("VACUUM ANALYZE")
        timings["vacuum analyze"] = {"seconds": round(time.monotonic() - started, 2)}
        log(f"VACUUM ANALYZE in {timings['vacuum analyze']['seconds']} s")
    timings["total_seconds"] = round(time.monotonic() - began, 2)
    return timings


def token_for_big_user(libpq_url: str) -> str:
    import psycopg

    from functions.llm.auth.issuer import TokenIssuer
    from functions.llm.settings import load_settings

    issuer = TokenIssuer(load_settings())
    session_id = str(uuid.uuid4())
    with psycopg.connect(libpq_url) as conn:
        subject, username, email = conn.execute(
            "SELECT subject, username, email FROM users WHERE public_id = %s", (BIG_USER,)).fetchone()
        conn.execute("INSERT INTO auth_sessions (id, user_id, expires_at) "
                     "SELECT %s, id, now() + interval '1 day' FROM users WHERE public_id = %s",
                     (session_id, BIG_USER))
    return issuer.access_token(subject=subject, session_id=session_id, username=username, email=email, role="user")


def probes(libpq_url: str) -> dict:
    """Cursors for deep pages and conversations for items pages, all the big user's."""
    import psycopg

    with psycopg.connect(libpq_url) as conn:
        big = conn.execute("SELECT id FROM users WHERE public_id = %s", (BIG_USER,)).fetchone()[0]
        ids = [row[0] for row in conn.execute(
            "SELECT public_id FROM conversations WHERE user_id = %s AND deleted_at IS NULL ORDER BY id DESC",
            (big,))]
    return {"deep_cursors": [ids[offset] for offset in range(2000, 9001, 500)],
            "item_conversations": ids[::200][:50]}


# HTTP measurement ----------------------------------------------------------------------------------------------


def measure(port: int, paths: list[str], headers: dict, requests: int, warmup: int = 20) -> dict:
    """c=1 over one keep-alive connection, cycling through `paths`; every answer must be 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    latencies, errors, size = [], 0, 0
    for index in range(warmup + requests):
        path = paths[index % len(paths)]
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            errors += 1
            if errors == 1:
                log(f"GET {path} answered {response.status}: {body[:200]!r}")
            continue
        if index >= warmup:
            latencies.append(elapsed)
            size = len(body)
    conn.close()
    return {**stats.summary(latencies), "errors": errors, "paths": len(paths), "response_bytes": size}


# EXPLAIN of the SQL the app runs ------------------------------------------------------------------------------


def explain(token: str, probe: dict, libpq_url: str) -> dict:
    """Run the two list requests in-process (Flask test client), capture every statement SQLAlchemy sends, and
    EXPLAIN (ANALYZE, BUFFERS) each with its parameters."""
    import psycopg
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from functions.llm.app import create_app

    captured: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        captured.append((statement, parameters))

    event.listen(Engine, "before_cursor_execute", capture)
    try:
        app = create_app()
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        requests = {
            "conversations_first_page": "/v1/conversations?limit=20",
            "conversations_deep_page": f"/v1/conversations?limit=20&after={probe['deep_cursors'][-1]}",
            "items_page": f"/v1/conversations/{probe['item_conversations'][0]}/items?limit=20",
        }
        per_request = {}
        for name, path in requests.items():
            captured.clear()
            status = client.get(path, headers=headers).status_code
            per_request[name] = {"path": path, "status": status,
                                 "statements": [(s, p) for s, p in captured if s.lstrip().upper().startswith("SELECT")]}
    finally:
        event.remove(Engine, "before_cursor_execute", capture)
    out = {}
    with psycopg.connect(libpq_url) as conn:
        small_user = conn.execute("SELECT id FROM users WHERE public_id = 'bench-user-500'").fetchone()[0]
        first = per_request["conversations_first_page"]
        per_request["conversations_first_page_small_user"] = {
            "path": first["path"] + " (a user with 100 conversations; same SQL, other user_id)",
            "status": None,
            "statements": [(s, {**p, "user_id_1": small_user} if isinstance(p, dict) and "user_id_1" in p else p)
                           for s, p in first["statements"][1:]]}
        for name, request in per_request.items():
            plans = []
            for statement, parameters in request["statements"]:
                rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).fetchall()
                plan = "\n".join(row[0] for row in rows)
                timings = []
                for _ in range(50):  # the statement's own time over the socket, without EXPLAIN's instrumentation
                    started = time.perf_counter()
                    conn.execute(statement, parameters).fetchall()
                    timings.append((time.perf_counter() - started) * 1000)
                plans.append({"sql": " ".join(statement.split()), "parameters": _jsonable(parameters),
                              "plan": plan, "indexes": sorted(set(re.findall(r"(?:Index|Index Only) Scan(?: Backward)? using (\w+)", plan))),
                              "seq_scans": sorted(set(re.findall(r"Seq Scan on (\w+)", plan))),
                              "execution_ms": _execution_ms(plan),
                              "timed_ms": stats.summary(timings)})
            out[name] = {"path": request["path"], "status": request["status"], "queries": len(plans),
                         "plans": plans}
    return out


def _execution_ms(plan: str) -> float | None:
    match = re.search(r"Execution Time: ([\d.]+) ms", plan)
    return float(match.group(1)) if match else None


def _jsonable(parameters):
    if isinstance(parameters, dict):
        return {key: str(value) if not isinstance(value, (int, float, str, type(None))) else value
                for key, value in parameters.items()}
    return str(parameters)


# Main ---------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=400, help="timed requests per endpoint (c=1)")
    parser.add_argument("--reseed", action="store_true", help="seed again even if the data is there")
    parser.add_argument("--no-explain", action="store_true")
    args = parser.parse_args(argv)

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    log_dir = RESULTS_DIR / f"conversations-{stamp}-logs"
    result: dict = {"started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "load_average_at_start": list(os.getloadavg()), "cores": os.cpu_count()}
    with contextlib.ExitStack() as exit_stack:
        database = stack.kept_database(exit_stack, DATABASE)
        env = stack.base_env(database.url)
        os.environ.update(env)  # the in-process token issuer and EXPLAIN capture read the same settings
        stack.migrate(env, log_dir)
        libpq = stack._libpq(database.url)
        import psycopg

        from functions.llm.settings import load_settings

        with psycopg.connect(libpq) as conn:
            already = seeded(conn)
        if already and not args.reseed:
            log("seeded data found: skipping the seed")
            result["seed"] = {"skipped": True}
        else:
            log("seeding (1.5 M items)…")
            result["seed"] = seed(libpq, load_settings().token_issuer)
        with psycopg.connect(libpq) as conn:
            result["rows"] = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                              for table in ("users", "conversations", "conversation_items", "projects")}
            result["sizes"] = {name: size for name, size in conn.execute(
                "SELECT relname, pg_size_pretty(pg_total_relation_size(oid)) FROM pg_class "
                "WHERE relname IN ('conversations', 'conversation_items')")}
        token = token_for_big_user(libpq)
        probe = probes(libpq)
        function = stack.start_function(exit_stack, env, log_dir, name="function-conversations")
        headers = {"Authorization": f"Bearer {token}"}
        endpoints = {
            "baseline_users_me": ["/v1/users/me"],  # the floor: auth + one small read, no list
            "conversations_first_page": ["/v1/conversations?limit=20"],
            "conversations_deep_page": [f"/v1/conversations?limit=20&after={c}" for c in probe["deep_cursors"]],
            "items_page": [f"/v1/conversations/{c}/items?limit=20" for c in probe["item_conversations"]],
            "projects": ["/v1/projects"],
        }
        result["latency_ms"] = {}
        for name, paths in endpoints.items():
            result["latency_ms"][name] = measure(function.port, paths, headers, args.requests)
            result["latency_ms"][name]["load_average_after"] = list(os.getloadavg())
            log(f"{name}: {result['latency_ms'][name]}")
        result["load_average_after_http"] = list(os.getloadavg())
        if not args.no_explain:
            result["explain"] = explain(token, probe, libpq)
    result["load_average_at_end"] = list(os.getloadavg())
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"conversations-{stamp}.json"
    path.write_text(json.dumps(result, indent=2))
    print(summary(result, path))
    return 0


def summary(result: dict, path: Path) -> str:
    lines = [f"## Conversation store at scale ({result['started_at']}, {result['cores']} cores, "
             f"load {'/'.join(f'{x:.2f}' for x in result['load_average_at_start'])} at start, "
             f"{'/'.join(f'{x:.2f}' for x in result['load_average_at_end'])} at end)", "",
             f"rows: {result['rows']}; sizes: {result['sizes']}; seed: {result['seed']}", "",
             "| GET (c=1, keep-alive) | n | p50 ms | p95 ms | p99 ms | aim p50 | load 1 min |",
             "|---|---|---|---|---|---|---|"]
    for name, values in result["latency_ms"].items():
        aim = f"< {AIM_P50_MS:g} ms " + ("met" if values.get("p50", 1e9) < AIM_P50_MS else "MISSED")
        load = values.get("load_average_after", [0])[0]
        lines.append(f"| {name} | {values.get('n')} | {values.get('p50')} | {values.get('p95')} | "
                     f"{values.get('p99')} | {aim if 'conversations' in name or 'items' in name else '-'} | {load:.2f} |")
    for name, request in result.get("explain", {}).items():
        lines.append("")
        lines.append(f"EXPLAIN {name} ({request['queries']} SELECTs, status {request['status']}):")
        for plan in request["plans"]:
            lines.append(f"  - EXPLAIN {plan['execution_ms']} ms, run p50 {plan['timed_ms']['p50']} ms, indexes {plan['indexes']}, seq scans {plan['seq_scans']}: "
                         f"{plan['sql'][:160]}")
    lines.append("")
    lines.append(f"full results: {path.relative_to(stack.ROOT)}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

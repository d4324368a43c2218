"""The embedding service and file search at scale (issue 12): `python -m bench.embeddings`.

1. Embedding throughput per core: the model in-process on one onnxruntime thread (chunk-sized texts in batches
   of 32, and query-sized texts one by one), then the service over HTTP (gunicorn, as in its image) with 1 and 8
   concurrent clients sending one query each, where micro-batching merges the concurrent requests.
2. file_search_query latency (embedding the query over HTTP + the pgvector search) with 100 000 chunks:
   1 000 users' bulk chunks and one big user's 20 000, seeded by set-based SQL with random unit vectors (index
   dropped, rows inserted, HNSW built once), plus real documents embedded by the service for the probes. The seed
   lives in `jan_bench_file_search` on the embedded server (or DATABASE_URL) and is reused by later runs
   (`--reseed` forces it). Measured: a small user (exact scan), the big user (HNSW + iterative scan), and the
   small user forced through HNSW, whose iterative scan must dig through other users' rows; each end to end and
   with the query's embedding remembered (the database's share alone).

Writes bench/results/embeddings-<timestamp>.json and prints a summary.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import json
import os
import sys
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import stack, stats  # noqa: E402

DATABASE = "jan_bench_file_search"
RESULTS_DIR = stack.ROOT / "bench" / "results"
DIMENSION = 384
BULK_USERS, BULK_CHUNKS_PER_USER = 1_000, 80
BIG_USER_BULK_CHUNKS = 20_000
BULK_CHUNKS = BULK_USERS * BULK_CHUNKS_PER_USER + BIG_USER_BULK_CHUNKS  # 100 000
SMALL_USER, BIG_USER = "bench-fs-small", "bench-fs-big"
TOPICS = ["router", "expenses", "parking", "holidays", "security badge", "printer", "payroll", "onboarding",
          "laptop", "travel", "meeting rooms", "coffee machine", "fire drill", "mail room", "gym", "bicycles",
          "visitors", "recycling", "heating", "lost and found"]
QUERIES = [f"what are the rules for {topic}?" for topic in TOPICS]
CHUNK_TEXT = ("This paragraph of the staff handbook explains the procedure in detail: who to contact, which form "
              "to fill in, how long it takes, what to do when something goes wrong, and where to find the "
              "documents that describe the exceptions that apply to contractors and visitors. ") * 2


def log(message: str) -> None:
    print(f"[bench.embeddings {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# Embedding throughput ---------------------------------------------------------------------------------------------


def model_throughput(seconds: float) -> dict:
    from functions.embeddings.service import EmbeddingService
    from functions.embeddings.settings import load_settings

    service = EmbeddingService(load_settings(embedding_threads=1, embedding_batch_wait_ms=0))
    result = {}
    for name, texts, batch in (("chunks_800_chars_batch_32", [CHUNK_TEXT] * 32, 32),
                               ("queries_single", [QUERIES[0]], 1)):
        tokens = service.embed(texts, normalize=True, truncate=True, param="x", too_long_status=413).token_count
        done, started = 0, time.perf_counter()
        cpu_started = time.process_time()
        while time.perf_counter() - started < seconds:
            service.embed(texts, normalize=True, truncate=True, param="x", too_long_status=413)
            done += batch
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        result[name] = {"texts": done, "tokens_per_text": tokens // batch, "wall_seconds": round(wall, 2),
                        "cpu_seconds": round(cpu, 2), "texts_per_second": round(done / wall, 1),
                        "texts_per_cpu_second": round(done / cpu, 1)}
        log(f"model {name}: {result[name]}")
    return result


def http_throughput(base_url: str, token: str, seconds: float) -> dict:
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    result = {}
    for concurrency in (1, 8):
        latencies: list[float] = []

        def client(worker: int) -> None:
            with httpx.Client(base_url=base_url, headers=headers, timeout=30) as http:
                deadline = time.perf_counter() + seconds
                index = worker
                while time.perf_counter() < deadline:
                    began = time.perf_counter()
                    response = http.post("/embed", json={"inputs": QUERIES[index % len(QUERIES)],
                                                         "truncate": True})
                    response.raise_for_status()
                    latencies.append((time.perf_counter() - began) * 1000)
                    index += concurrency

        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(client, range(concurrency)))
        wall = time.perf_counter() - started
        result[f"c{concurrency}"] = {"requests_per_second": round(len(latencies) / wall, 1),
                                     "latency_ms": stats.summary(latencies)}
        log(f"http c={concurrency}: {result[f'c{concurrency}']}")
    return result


# Database and seed ------------------------------------------------------------------------------------------------


def seeded(conn) -> bool:
    bulk = conn.execute("SELECT coalesce(sum(chunk_count), 0) FROM file_search_documents WHERE document_id = 'bulk'"
                        ).fetchone()[0]
    real = conn.execute("SELECT count(*) FROM file_search_documents d JOIN users u ON u.id = d.user_id "
                        "WHERE u.public_id IN (%s, %s) AND d.document_id <> 'bulk'", (SMALL_USER, BIG_USER)
                        ).fetchone()[0]
    index = conn.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_file_search_chunks_embedding'"
                         ).fetchone()[0]
    return bulk == BULK_CHUNKS and real == 2 * len(TOPICS) and index == 1


SEED_STEPS = [
    ("clear", "TRUNCATE file_search_documents, file_search_chunks"),
    ("users", """
        INSERT INTO users (public_id, issuer, subject, role)
        SELECT 'bench-fs-' || g, 'bench', 'bench-fs-' || g, 'user' FROM generate_series(1, %(bulk_users)s) g
        UNION ALL SELECT %(small)s, 'bench', %(small)s, 'user'
        UNION ALL SELECT %(big)s, 'bench', %(big)s, 'user'
        ON CONFLICT (public_id) DO NOTHING"""),
    ("documents", """
        INSERT INTO file_search_documents (user_id, document_id, text_bytes, chunk_count, token_count)
        SELECT id, 'bulk', 0, CASE WHEN public_id = %(big)s THEN %(big_chunks)s ELSE %(per_user)s END, 0
        FROM users WHERE public_id LIKE 'bench-fs-%%' AND public_id <> %(small)s"""),
    # Inserting into an HNSW index row by row is slow: drop it, insert, build it once.
    ("drop index", "DROP INDEX IF EXISTS ix_file_search_chunks_embedding"),
    ("chunks", """
        INSERT INTO file_search_chunks (document_pk, user_id, chunk_index, text, embedding)
        SELECT d.id, d.user_id, s, 'bulk chunk',
               l2_normalize((SELECT array_agg(random() - 0.5) FROM generate_series(1, %(dimension)s)
                             WHERE s > 0)::vector)
        FROM file_search_documents d CROSS JOIN LATERAL generate_series(1, d.chunk_count) s
        WHERE d.document_id = 'bulk'"""),
    ("build hnsw", "CREATE INDEX ix_file_search_chunks_embedding ON file_search_chunks "
                   "USING hnsw (embedding vector_cosine_ops)"),
]


def seed(libpq_url: str) -> dict:
    import psycopg

    params = {"bulk_users": BULK_USERS, "small": SMALL_USER, "big": BIG_USER, "big_chunks": BIG_USER_BULK_CHUNKS,
              "per_user": BULK_CHUNKS_PER_USER, "dimension": DIMENSION}
    timings = {}
    began = time.monotonic()
    with psycopg.connect(libpq_url) as conn:
        conn.execute("SET statement_timeout = 0")
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '512MB'")
        for name, statement in SEED_STEPS:
            started = time.monotonic()
            rows = conn.execute(statement, params).rowcount
            timings[name] = {"seconds": round(time.monotonic() - started, 2), "rows": rows}
            log(f"seed {name}: {rows} rows in {timings[name]['seconds']} s")
        conn.commit()
    with psycopg.connect(libpq_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE file_search_chunks")
        conn.execute("VACUUM ANALYZE file_search_documents")
    timings["total_seconds"] = round(time.monotonic() - began, 2)
    return timings


def user_id(libpq_url: str, public_id: str) -> int:
    import psycopg

    with psycopg.connect(libpq_url) as conn:
        return conn.execute("SELECT id FROM users WHERE public_id = %s", (public_id,)).fetchone()[0]


def token_for(libpq_url: str, public_id: str) -> str:
    import psycopg

    from functions.llm.auth.issuer import TokenIssuer
    from functions.llm.settings import load_settings

    session_id = str(uuid.uuid4())
    with psycopg.connect(libpq_url) as conn:
        subject = conn.execute("SELECT subject FROM users WHERE public_id = %s", (public_id,)).fetchone()[0]
        conn.execute("INSERT INTO auth_sessions (id, user_id, expires_at) "
                     "SELECT %s, id, now() + interval '1 day' FROM users WHERE public_id = %s",
                     (session_id, public_id))
    return TokenIssuer(load_settings()).access_token(subject=subject, session_id=session_id, username=None,
                                                     email=None, role="user")


def index_real_documents(search, user: int, authorization: str) -> None:
    for topic in TOPICS:
        text = (f"{topic.capitalize()}. The rules for {topic} are simple: ask the office manager first, write the "
                f"request down, and keep a copy. Questions about {topic} go to the help desk. ") * 3
        search.index_document(user, f"handbook-{topic}", text, {"topic": topic}, authorization=authorization)


# Queries ----------------------------------------------------------------------------------------------------------


def measure_queries(search, user: int, authorization: str, requests: int, top_k: int = 5) -> dict:
    latencies, counts = [], []
    for index in range(requests + 10):
        began = time.perf_counter()
        found = search.query(user, QUERIES[index % len(QUERIES)], top_k, authorization=authorization)
        if index >= 10:  # warm-up
            latencies.append((time.perf_counter() - began) * 1000)
            counts.append(found["count"])
    return {"latency_ms": stats.summary(latencies), "results_min": min(counts), "results_max": max(counts)}


def measure_embed_only(embedder, authorization: str, requests: int) -> dict:
    latencies = []
    for index in range(requests):
        began = time.perf_counter()
        embedder.embed([QUERIES[index % len(QUERIES)]], authorization=authorization)
        latencies.append((time.perf_counter() - began) * 1000)
    return stats.summary(latencies)


def recall(approximate, exact, user: int, authorization: str, top_k: int = 5) -> float:
    """Mean share of the exact top_k that the index search also returned, over every probe query."""
    shares = []
    for query in QUERIES:
        def keys(engine):
            return {(r["document_id"], r["chunk_index"])
                    for r in engine.query(user, query, top_k, authorization=authorization)["results"]}
        shares.append(len(keys(approximate) & keys(exact)) / top_k)
    return round(sum(shares) / len(shares), 3)


class RememberingEmbedder:
    """The real client, each distinct text embedded once: isolates the database's share of a query."""

    def __init__(self, embedder):
        self._embedder = embedder
        self._known: dict[str, list[float]] = {}

    def embed(self, texts: list[str], *, authorization: str | None = None) -> list[list[float]]:
        missing = [text for text in texts if text not in self._known]
        if missing:
            self._known.update(zip(missing, self._embedder.embed(missing, authorization=authorization)))
        return [self._known[text] for text in texts]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each throughput measurement")
    parser.add_argument("--requests", type=int, default=200, help="timed queries per scenario")
    parser.add_argument("--reseed", action="store_true", help="seed again even if the data is there")
    args = parser.parse_args(argv)

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    log_dir = RESULTS_DIR / f"embeddings-{stamp}-logs"
    result: dict = {"started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "load_average_at_start": list(os.getloadavg()), "cores": os.cpu_count()}
    result["model"] = model_throughput(args.seconds)
    with contextlib.ExitStack() as exit_stack:
        database = stack.kept_database(exit_stack, DATABASE)
        env = stack.base_env(database.url)
        os.environ.update(env)
        # Every head: migration 0005_file_search is on its own branch until the history is re-chained.
        stack.run_step("migrations", [sys.executable, "-m", "alembic", "-c", "migrations/alembic.ini", "upgrade",
                                      "heads"], env, log_dir / "setup.log")
        libpq = stack._libpq(database.url)
        import psycopg

        with psycopg.connect(libpq) as conn:
            already = seeded(conn)
        port = stack.free_port()
        service = stack.spawn([sys.executable, "-m", "gunicorn", "--config", "python:shared.gunicorn_conf",
                               "functions.embeddings.main:app"],
                              stack.function_env(env, port), log_dir / "embeddings.log")
        exit_stack.callback(stack.stop_process, service)
        base_url = f"http://127.0.0.1:{port}"
        stack.wait_http(f"{base_url}/health", 60, service)

        from shared.db import Database
        from shared.file_search import EmbeddingClient, FileSearch, FileSearchSettings
        from shared.settings import PlatformSettings

        if already and not args.reseed:
            log("seeded data found: skipping the seed")
            result["seed"] = {"skipped": True}
        else:
            log(f"seeding {BULK_CHUNKS} chunks…")
            result["seed"] = seed(libpq)
        small, big = user_id(libpq, SMALL_USER), user_id(libpq, BIG_USER)
        tokens = {small: token_for(libpq, SMALL_USER), big: token_for(libpq, BIG_USER)}
        result["http"] = http_throughput(base_url, tokens[small], args.seconds)

        db = Database.from_settings(PlatformSettings(database_url=database.url))
        exit_stack.callback(db.engine.dispose)
        embedder = EmbeddingClient(base_url, dimension=DIMENSION)
        settings = FileSearchSettings(embedding_service_url=base_url)
        search = FileSearch(db, embedder, settings)  # indexes the probes' real documents
        if not result["seed"].get("skipped"):
            started = time.monotonic()
            for user in (small, big):
                index_real_documents(search, user, f"Bearer {tokens[user]}")
            result["seed"]["real_documents_seconds"] = round(time.monotonic() - started, 2)
            with psycopg.connect(libpq, autocommit=True) as conn:
                conn.execute("ANALYZE file_search_chunks")
        with psycopg.connect(libpq) as conn:
            result["rows"] = {"chunks": conn.execute("SELECT count(*) FROM file_search_chunks").fetchone()[0],
                              "small_user_chunks": conn.execute(
                                  "SELECT count(*) FROM file_search_chunks WHERE user_id = %s", (small,)).fetchone()[0],
                              "big_user_chunks": conn.execute(
                                  "SELECT count(*) FROM file_search_chunks WHERE user_id = %s", (big,)).fetchone()[0]}
            result["sizes"] = dict(conn.execute(
                "SELECT relname, pg_size_pretty(pg_total_relation_size(oid)) FROM pg_class "
                "WHERE relname IN ('file_search_chunks', 'ix_file_search_chunks_embedding')").fetchall())
        log(f"rows: {result['rows']}")

        forced_settings = dataclasses.replace(settings, file_search_exact_scan_max_chunks=0)
        remembering = RememberingEmbedder(embedder)
        result["embed_query_only_ms"] = measure_embed_only(embedder, f"Bearer {tokens[small]}", args.requests)
        for part, client in (("file_search_query", embedder), ("file_search_query_database_only", remembering)):
            result[part] = {}
            for name, scope_settings, user in (("small_user_exact_scan", settings, small),
                                               ("big_user_hnsw_iterative", settings, big),
                                               ("small_user_forced_hnsw_iterative", forced_settings, small)):
                engine = FileSearch(db, client, scope_settings)
                result[part][name] = measure_queries(engine, user, f"Bearer {tokens[user]}", args.requests)
                log(f"{part} {name}: {result[part][name]}")
        # The index's accuracy and cost at a few hnsw.ef_search values (the default is FileSearchSettings').
        exact = FileSearch(db, remembering, dataclasses.replace(settings, file_search_exact_scan_max_chunks=10**9))
        result["big_user_hnsw_by_ef_search"] = {}
        for ef_search in (40, 100, 200):
            engine = FileSearch(db, remembering, dataclasses.replace(settings, file_search_hnsw_ef_search=ef_search))
            row = {"recall_at_5_vs_exact": recall(engine, exact, big, f"Bearer {tokens[big]}"),
                   **measure_queries(engine, big, f"Bearer {tokens[big]}", args.requests)}
            result["big_user_hnsw_by_ef_search"][ef_search] = row
            log(f"big user, ef_search {ef_search}: {row}")
    result["load_average_at_end"] = list(os.getloadavg())
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"embeddings-{stamp}.json"
    path.write_text(json.dumps(result, indent=2))
    print(summary(result, path))
    return 0


def summary(result: dict, path: Path) -> str:
    lines = [f"results: {path}", f"load average: {result['load_average_at_start']} -> {result['load_average_at_end']}"]
    for name, row in result["model"].items():
        lines.append(f"model {name}: {row['texts_per_cpu_second']} texts per CPU second "
                     f"({row['tokens_per_text']} tokens each)")
    for name, row in result["http"].items():
        lines.append(f"/embed {name}: {row['requests_per_second']} req/s, p50 {row['latency_ms']['p50']} ms, "
                     f"p99 {row['latency_ms']['p99']} ms")
    lines.append(f"rows: {result['rows']}")
    lines.append(f"embedding one query over HTTP: p50 {result['embed_query_only_ms']['p50']} ms")
    for part in ("file_search_query", "file_search_query_database_only"):
        for name, row in result[part].items():
            lines.append(f"{part} {name}: p50 {row['latency_ms']['p50']} ms, p99 {row['latency_ms']['p99']} ms,"
                         f" results {row['results_min']}..{row['results_max']}")
    for ef_search, row in result["big_user_hnsw_by_ef_search"].items():
        lines.append(f"big user, database only, ef_search {ef_search}: recall@5 {row['recall_at_5_vs_exact']}, "
                     f"p50 {row['latency_ms']['p50']} ms, p99 {row['latency_ms']['p99']} ms")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

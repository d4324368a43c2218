"""Per-user file search with the real model and real pgvector: retrieval, isolation between users, top_k for a
user with few rows among many users' rows (HNSW with iterative scans), limits, deletion and purge, and the
embedding service being down."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from shared.file_search import EmbeddingClient, EmbeddingServiceError, InvalidInput, LimitExceeded
from shared.file_search.service import HNSW_QUERY_ALL
from shared.schema import file_search_chunks, file_search_documents
from tests.conftest import free_port

HANDBOOK = "\n\n".join([
    "Office hours. The office opens at eight in the morning and closes at six in the evening on weekdays. "
    "On public holidays the building stays closed and the alarm is armed all day.",
    "Router reset. If the Wi-Fi stops working, hold the small reset button on the back of the router for ten "
    "seconds, wait for the lights to blink green, then log in with the password printed on the sticker.",
    "Expense reports. Submit receipts within thirty days through the finance portal; meals over fifty euros "
    "need the names of everyone who attended and a short note on the business purpose.",
    "Parking. Visitors park on level minus two and must register their licence plate at the front desk; "
    "staff permits are renewed every January.",
])
DECOYS = {
    "recipes": "To bake sourdough bread, feed the starter the night before, mix flour, water and salt, fold the "
               "dough every half hour, and bake it in a covered pot at two hundred and fifty degrees.",
    "astronomy": "Jupiter is the largest planet in the solar system; its Great Red Spot is a storm larger than "
                 "the Earth that has raged for centuries.",
    "football": "The match ended two to one after a late penalty; the home team now leads the league by three "
                "points with four games left.",
}


def chunk_rows(db, user_id: int) -> int:
    with db.read() as conn:
        return conn.execute(select(func.count()).select_from(file_search_chunks)
                            .where(file_search_chunks.c.user_id == user_id)).scalar_one()


def index_handbook(search, person, **kwargs):
    for document_id, body in DECOYS.items():
        search.index_document(person.user_id, document_id, body, {"kind": "decoy"}, authorization=person.authorization)
    return search.index_document(person.user_id, "handbook", HANDBOOK, {"title": "Staff handbook"},
                                 tags=["hr", "office"], authorization=person.authorization, **kwargs)


def test_a_query_finds_the_right_chunk_among_decoys(make_search, new_person, search_db):
    search = make_search(file_search_chunk_chars=300, file_search_chunk_overlap_chars=60)
    person = new_person()
    indexed = index_handbook(search, person)
    assert indexed["document_id"] == "handbook" and indexed["status"] == "indexed"
    assert indexed["chunk_count"] >= 4 and indexed["token_count"] == len(HANDBOOK.replace("-", " ").split())
    assert indexed["indexed_at"].endswith("Z")
    assert chunk_rows(search_db, person.user_id) == indexed["chunk_count"] + len(DECOYS)

    found = search.query(person.user_id, "my wifi is broken, how do I restart the router?", 3,
                         authorization=person.authorization)
    assert found["query"] == "my wifi is broken, how do I restart the router?"
    assert found["top_k"] == 3 and found["count"] == 3 == len(found["results"])
    best = found["results"][0]
    assert best["document_id"] == "handbook" and "reset button" in best["text"]
    assert best["metadata"] == {"title": "Staff handbook"} and best["tags"] == ["hr", "office"]
    assert best["text_preview"] == best["text"][:240] + ("…" if len(best["text"]) > 240 else "")
    scores = [result["score"] for result in found["results"]]
    assert scores == sorted(scores, reverse=True) and 0.4 < scores[0] <= 1 and scores[0] - scores[1] > 0.1

    bread = search.query(person.user_id, "how long should sourdough dough rise", authorization=person.authorization)
    assert bread["top_k"] == 5 and bread["results"][0]["document_id"] == "recipes"
    assert bread["results"][0]["metadata"] == {"kind": "decoy"}


def test_document_ids_restrict_the_search(search, new_person):
    person = new_person()
    index_handbook(search, person)
    found = search.query(person.user_id, "sourdough bread", 5, ["astronomy", "football", "unknown"],
                         authorization=person.authorization)
    assert {result["document_id"] for result in found["results"]} == {"astronomy", "football"}
    assert search.query(person.user_id, "sourdough", 5, [], authorization=person.authorization)["results"][0][
        "document_id"] == "recipes"  # an empty list is no filter, as in Jan


def test_another_user_never_sees_a_document(search, new_person, search_db):
    owner, stranger = new_person(), new_person()
    index_handbook(search, owner)
    for document_ids in (None, ["handbook"], ["handbook", "recipes"]):
        found = search.query(stranger.user_id, "router reset button", 5, document_ids,
                             authorization=stranger.authorization)
        assert found == {"query": "router reset button", "top_k": 5, "count": 0, "results": []}
    # The same document id in two accounts is two documents.
    search.index_document(stranger.user_id, "handbook", "The stranger's own handbook is about gardening tools.",
                          authorization=stranger.authorization)
    mine = search.query(stranger.user_id, "router reset button", 5, authorization=stranger.authorization)
    assert [result["text"] for result in mine["results"]] == ["The stranger's own handbook is about gardening tools."]
    assert search.delete_document(stranger.user_id, "recipes") is False
    assert search.query(owner.user_id, "sourdough", 1, authorization=owner.authorization)["count"] == 1
    assert "reset button" in search.query(owner.user_id, "router reset", 1,
                                          authorization=owner.authorization)["results"][0]["text"]


def test_reindexing_a_document_replaces_its_chunks(search, new_person, search_db):
    person = new_person()
    search.index_document(person.user_id, "note", "The meeting is on Monday about the budget.",
                          authorization=person.authorization)
    search.index_document(person.user_id, "note", "The picnic is on Saturday in the park.", {"v": 2},
                          authorization=person.authorization)
    found = search.query(person.user_id, "when is the meeting", 5, authorization=person.authorization)
    assert [(r["text"], r["metadata"]) for r in found["results"]] == [("The picnic is on Saturday in the park.",
                                                                       {"v": 2})]
    assert chunk_rows(search_db, person.user_id) == 1


@pytest.fixture(scope="module")
def crowd(app, search_db):
    """5 000 chunks of another account (random vectors, seeded by SQL), so one user's rows are a tiny fraction."""
    response = app.test_client().post("/auth/guest-login")
    from tests.file_search.conftest import Person

    other = Person(app, response.json)
    with search_db.transaction() as conn:
        conn.execute(text("SET LOCAL statement_timeout = 0"))  # each row goes into the HNSW graph
        pk = conn.execute(text("INSERT INTO file_search_documents (user_id, document_id, text_bytes, chunk_count, "
                               "token_count) VALUES (:u, 'crowd', 0, 5000, 0) RETURNING id"),
                          {"u": other.user_id}).scalar_one()
        conn.execute(text("""
            INSERT INTO file_search_chunks (document_pk, user_id, chunk_index, text, embedding)
            SELECT :pk, :u, g, 'crowd row', (SELECT array_agg(random() - 0.5) FROM generate_series(1, 384)
                                            WHERE g > 0)::vector
            FROM generate_series(1, 5000) g"""), {"pk": pk, "u": other.user_id})
    with search_db.read() as conn:
        conn.execute(text("ANALYZE file_search_chunks"))
    return other


def test_a_user_with_few_rows_among_many_still_gets_top_k(make_search, new_person, crowd, search_db):
    # Every scope goes through the HNSW index here (no exact scan).
    search = make_search(file_search_exact_scan_max_chunks=0, file_search_chunk_chars=300,
                         file_search_chunk_overlap_chars=60)
    person = new_person()
    index_handbook(search, person)
    mine = chunk_rows(search_db, person.user_id)
    assert 6 <= mine < 20
    found = search.query(person.user_id, "router reset", 6, authorization=person.authorization)
    assert found["count"] == 6 and "reset button" in found["results"][0]["text"]
    scores = [result["score"] for result in found["results"]]
    assert scores == sorted(scores, reverse=True)
    only = search.query(person.user_id, "planets", 5, ["astronomy", "football"], authorization=person.authorization)
    assert [r["document_id"] for r in only["results"]] == ["astronomy", "football"]

    # The query really is an index scan (so the iterative scan is what found the user's rows), and without the
    # iterative scan the same index scan finds too few.
    vector = "[" + ",".join(["0.05"] * 384) + "]"
    parameters = {"query_vector": vector, "user_id": person.user_id, "top_k": 6}
    with search_db.transaction() as conn:
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(conn.execute(text("EXPLAIN " + HNSW_QUERY_ALL.text), parameters).scalars())
        assert "ix_file_search_chunks_embedding" in plan
        conn.execute(text("SET LOCAL hnsw.iterative_scan = off"))
        assert len(conn.execute(HNSW_QUERY_ALL, parameters).all()) < 6


def test_embedding_service_down_is_a_clear_error(make_search, search, new_person, search_db):
    person = new_person()
    search.index_document(person.user_id, "kept", "Some text that is already indexed.",
                          authorization=person.authorization)
    down = make_search(EmbeddingClient(f"http://127.0.0.1:{free_port()}", dimension=384, timeout_seconds=2))
    with pytest.raises(EmbeddingServiceError, match=r"^embedding service unavailable: cannot reach http://127"):
        down.index_document(person.user_id, "new", "More text.", authorization=person.authorization)
    with pytest.raises(EmbeddingServiceError, match="embedding service unavailable"):
        down.query(person.user_id, "text", authorization=person.authorization)
    with search_db.read() as conn:
        assert conn.execute(select(file_search_documents.c.document_id)
                            .where(file_search_documents.c.user_id == person.user_id)).scalars().all() == ["kept"]


def test_embedding_service_refusing_credentials_or_dimension_mismatch_is_a_clear_error(make_search, new_person,
                                                                                       live_embeddings):
    person = new_person()
    with pytest.raises(EmbeddingServiceError, match=r"refused the credentials \(401\)"):
        make_search().index_document(person.user_id, "d", "text", authorization="Bearer wrong")
    mismatched = make_search(EmbeddingClient(live_embeddings, dimension=1024))
    with pytest.raises(EmbeddingServiceError, match="returned 384-dimensional vectors; the index holds 1024"):
        mismatched.index_document(person.user_id, "d", "text", authorization=person.authorization)


def test_per_user_limits(make_search, new_person, search_db):
    person = new_person()
    search = make_search(file_search_max_documents_per_user=2, file_search_max_bytes_per_user=100,
                         file_search_max_document_bytes=80)
    search.index_document(person.user_id, "a", "a" * 40, authorization=person.authorization)
    search.index_document(person.user_id, "b", "b" * 40, authorization=person.authorization)
    with pytest.raises(LimitExceeded, match="document limit reached: at most 2 documents per user"):
        search.index_document(person.user_id, "c", "c", authorization=person.authorization)
    # Replacing a document is not a new one; its old size does not count against its new one.
    search.index_document(person.user_id, "b", "B" * 60, authorization=person.authorization)
    with pytest.raises(LimitExceeded, match="storage limit reached: 40 bytes stored, this document adds 70; "
                                            "at most 100 bytes per user"):
        search.index_document(person.user_id, "b", "B" * 70, authorization=person.authorization)
    with pytest.raises(LimitExceeded, match="the document is 81 bytes; at most 80 bytes per document"):
        search.index_document(person.user_id, "a", "é" * 40 + "x", authorization=person.authorization)
    with search_db.read() as conn:
        rows = conn.execute(select(file_search_documents.c.document_id, file_search_documents.c.text_bytes)
                            .where(file_search_documents.c.user_id == person.user_id)
                            .order_by(file_search_documents.c.document_id)).all()
    assert [tuple(row) for row in rows] == [("a", 40), ("b", 60)]
    # Limits are per user: another account starts from zero.
    other = new_person()
    search.index_document(other.user_id, "c", "c" * 80, authorization=other.authorization)


@pytest.mark.parametrize("call, message", [
    (lambda s, p: s.index_document(p.user_id, "", "text"), "document_id is required"),
    (lambda s, p: s.index_document(p.user_id, "x" * 257, "text"), "document_id must be at most 256 characters"),
    (lambda s, p: s.index_document(p.user_id, "d", "   "), "text is required"),
    (lambda s, p: s.index_document(p.user_id, "d", "nul \x00 inside"), "text must not contain NUL"),
    (lambda s, p: s.index_document(p.user_id, "d", "text", ["not", "an", "object"]), "metadata must be an object"),
    (lambda s, p: s.index_document(p.user_id, "d", "text", tags="hr"), "tags must be an array of strings"),
    (lambda s, p: s.query(p.user_id, ""), "query is required"),
    (lambda s, p: s.query(p.user_id, "q", "five"), "top_k must be an integer"),
    (lambda s, p: s.query(p.user_id, "q", 5, "handbook"), "document_ids must be an array of strings"),
])
def test_bad_arguments_are_clear_errors(search, new_person, call, message):
    with pytest.raises(InvalidInput, match=message):
        call(search, new_person())


def test_top_k_follows_jans_rules(search, new_person):
    person = new_person()
    for index in range(25):
        search.index_document(person.user_id, f"n{index}", f"Note number {index} about topic {index}.",
                              authorization=person.authorization)
    assert search.query(person.user_id, "note", 0, authorization=person.authorization)["count"] == 5
    assert search.query(person.user_id, "note", 99, authorization=person.authorization)["top_k"] == 20
    assert search.query(person.user_id, "note", 99, authorization=person.authorization)["count"] == 20


def test_delete_document_and_purge_user(search, new_person, search_db):
    person, bystander = new_person(), new_person()
    index_handbook(search, person)
    index_handbook(search, bystander)
    before = chunk_rows(search_db, bystander.user_id)
    assert search.delete_document(person.user_id, "handbook") is True
    assert search.delete_document(person.user_id, "handbook") is False
    found = search.query(person.user_id, "router reset", 5, authorization=person.authorization)
    assert "handbook" not in {result["document_id"] for result in found["results"]}
    assert chunk_rows(search_db, person.user_id) == len(DECOYS)
    assert search.purge_user(person.user_id) == len(DECOYS)
    assert chunk_rows(search_db, person.user_id) == 0
    assert search.query(person.user_id, "sourdough", authorization=person.authorization)["count"] == 0
    assert chunk_rows(search_db, bystander.user_id) == before


def test_account_deletion_removes_the_index(app, search, new_person, search_db):
    person = new_person()
    index_handbook(search, person)
    response = app.test_client().delete("/v1/users/me", headers={"Authorization": person.authorization})
    assert response.status_code == 200
    assert chunk_rows(search_db, person.user_id) == 0
    with search_db.read() as conn:
        assert conn.execute(select(func.count()).select_from(file_search_documents)
                            .where(file_search_documents.c.user_id == person.user_id)).scalar_one() == 0

"""Conversation auto-titles by Jan's rules: sanitising and truncation (units), then through chat completions
against PostgreSQL and the scripted provider: the fallback title at once, a model title within the request
(and the fallback when the model fails, times out or is missing), title turns (one user message or a multiple
of five), preset and locked titles, streams, and `store: false`."""
from __future__ import annotations

import time

import pytest

from shared.settings import from_env
from tests.conftest import TEST_MODEL_ID, Account
from tests.doubles import error, hang, reply
from tests.llm.conversation_support import create, dialogue
from shared.domain.conversations.titles import SYSTEM_PROMPT, fallback_title, is_title_turn, sanitize, truncate

pytestmark = pytest.mark.usefixtures("provider")

TITLE_TIMEOUT = 1.0


# Units ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, title", [
    ("Hello, check https://x.com/a?b=1 and mail me at a.b+c@d.example.org!", "Hello, check and mail me at"),
    ("[Read the docs](https://docs.example.com) please", "Read the docs please"),
    ("see www.example.com/page or ftp://files.example.com now", "see or now"),
    ('"Trip to Paris."', "Trip to Paris"),
    ("  many   spaces\n\tand lines  ", "many spaces and lines"),
    ("Don't panic - it's fine?!...", "Don't panic - it's fine"),
    ("emoji 😀 and #hash @at *stars*", "emoji and hash at stars"),
    ("你好 世界, Ünïcode", "你好 世界, Ünïcode"),
    ("<think>the user wants a title</think>Rust borrow checker", "Rust borrow checker"),
    ("https://only.example.com", ""),
])
def test_sanitize(raw, title):
    assert sanitize(raw) == title


def test_truncate_to_256_at_a_word_boundary_with_an_ellipsis():
    title = truncate("word " * 100)
    assert len(title) <= 256 and title.endswith("...") and title == ("word " * 50).rstrip() + "..."
    assert truncate("x" * 300) == "x" * 253 + "..."  # no boundary past the middle: a hard cut
    assert truncate("short") == "short"
    assert len(sanitize("long words " * 50)) <= 256


@pytest.mark.parametrize("users, expected", [(0, False), (1, True), (2, False), (4, False), (5, True), (7, False),
                                             (10, True), (15, True)])
def test_title_turns_are_the_first_user_message_and_every_fifth(users, expected):
    messages = [{"role": "system", "content": "s"}]
    for n in range(users):
        messages += [{"role": "user", "content": f"q{n}"}, {"role": "assistant", "content": f"a{n}"}]
    assert is_title_turn(messages) is expected


def test_fallback_is_the_first_user_message_with_text():
    assert fallback_title([{"role": "system", "content": "sys"}, {"role": "user", "content": "  "},
                           {"role": "user", "content": [{"type": "text", "text": "from parts"}]}]) == "from parts"
    assert fallback_title([{"role": "user", "content": "!!!"}]) is None


# Through chat -----------------------------------------------------------------------------------------------

def chat(account, conversation_id: str, messages, **body):
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    response = account.post("/v1/chat/completions", json={"model": TEST_MODEL_ID, "conversation": conversation_id,
                                                          "messages": messages, **body})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def title_of(account, conversation_id: str):
    return account.get(f"/v1/conversations/{conversation_id}").json["title"]


def test_the_first_message_titles_an_untitled_conversation_at_once(guest, upstream):
    created = create(guest)
    body = chat(guest, created["id"], "Plan a trip to Lisbon! https://maps.example.com").json
    assert body["conversation"] == {"id": created["id"], "title": "Plan a trip to Lisbon"}
    assert title_of(guest, created["id"]) == "Plan a trip to Lisbon"
    assert len(upstream.requests) == 1  # no title model configured: no extra call


def test_later_single_messages_keep_the_title(guest, upstream):
    created = create(guest)
    chat(guest, created["id"], "first question")
    body = chat(guest, created["id"], "second question").json
    assert body["conversation"]["title"] == "first question"


def test_a_preset_title_survives(guest, upstream):
    created = create(guest, title="Holiday")
    assert chat(guest, created["id"], "where to go?").json["conversation"]["title"] == "Holiday"


def test_only_title_turns_retitle(guest, upstream):
    created = create(guest)
    two = [{"role": "user", "content": "one"}, {"role": "assistant", "content": "a"},
           {"role": "user", "content": "two"}]
    assert chat(guest, created["id"], two, store=False).json["conversation"]["title"] is None
    five = dialogue(5)[:-1]  # q1 a1 … q5
    body = chat(guest, created["id"], five, store=False).json
    assert body["conversation"]["title"] == "question 1"


def test_a_locked_title_is_never_replaced(guest, upstream):
    created = create(guest, items=dialogue(1))
    guest.post(f"/v1/conversations/{created['id']}", json={"title": "Mine"})
    five = dialogue(5)[:-1]
    assert chat(guest, created["id"], five, store=False).json["conversation"]["title"] == "Mine"
    assert title_of(guest, created["id"]) == "Mine"


def test_a_long_first_message_is_truncated(guest, upstream):
    created = create(guest)
    title = chat(guest, created["id"], "lorem ipsum " * 40).json["conversation"]["title"]
    assert len(title) <= 256 and title.endswith("...")


def test_store_false_still_titles(guest, upstream):
    created = create(guest)
    assert chat(guest, created["id"], "not stored", store=False).json["conversation"]["title"] == "not stored"
    assert guest.get(f"/v1/conversations/{created['id']}/items").json["data"] == []


def test_a_stream_titles_after_it_is_stored(guest, upstream):
    created = create(guest)
    response = chat(guest, created["id"], "streamed question", stream=True)
    assert b"data: [DONE]" in response.get_data()
    assert title_of(guest, created["id"]) == "streamed question"


def test_a_failed_completion_does_not_title(guest, upstream):
    created = create(guest)
    upstream.script(error(500))
    response = guest.post("/v1/chat/completions", json={"model": TEST_MODEL_ID, "conversation": created["id"],
                                                        "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 502
    assert title_of(guest, created["id"]) is None


# With a title model -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def titled_app(llm_env, provider):
    from functions.llm.app import create_app
    from functions.llm.settings import LlmSettings

    return create_app(from_env(LlmSettings, environ=llm_env, conversation_title_model=TEST_MODEL_ID,
                               conversation_title_timeout_seconds=TITLE_TIMEOUT))


@pytest.fixture
def titled_guest(titled_app):
    client = titled_app.test_client()
    response = client.post("/auth/guest-login")
    return Account(client, response.json)


def test_the_title_model_names_the_conversation_within_the_request(titled_guest, upstream):
    created = create(titled_guest)
    upstream.script(reply(content="Sure, Lisbon in May is lovely."), reply(content='"Lisbon Trip Planning."'))
    body = chat(titled_guest, created["id"], "plan a trip to Lisbon").json
    assert body["conversation"]["title"] == "Lisbon Trip Planning"
    assert title_of(titled_guest, created["id"]) == "Lisbon Trip Planning"
    sent = upstream.requests[-1].body
    assert sent["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert sent["messages"][1]["content"] == (
        "Create a concise title for this conversation. Max length: 256 characters.\nConversation:\n"
        "1. user: plan a trip to Lisbon\n2. assistant: Sure, Lisbon in May is lovely.")
    assert (sent["max_tokens"], sent["temperature"], sent["stream"], sent["model"]) == (64, 0.2, False, "test-model")


def test_a_title_equal_to_the_fallback_is_improved_by_the_model(titled_guest, upstream):
    created = create(titled_guest, title="plan a trip")
    upstream.script(reply(content="ok"), reply(content="Trip Planning"))
    assert chat(titled_guest, created["id"], "plan a trip").json["conversation"]["title"] == "Trip Planning"


@pytest.mark.parametrize("behavior", [error(500), reply(content="?!"), reply(content="")])
def test_the_fallback_when_the_model_fails(titled_guest, upstream, behavior):
    created = create(titled_guest)
    upstream.script(reply(content="answer"), behavior)
    assert chat(titled_guest, created["id"], "my question").json["conversation"]["title"] == "my question"


def test_a_slow_title_model_costs_at_most_the_timeout(titled_guest, upstream):
    created = create(titled_guest)
    upstream.script(reply(content="answer"), hang(10))
    started = time.monotonic()
    body = chat(titled_guest, created["id"], "quick question").json
    assert time.monotonic() - started < TITLE_TIMEOUT + 2
    assert body["conversation"]["title"] == "quick question"


def test_a_stream_gets_the_model_title_before_it_closes(titled_guest, upstream):
    created = create(titled_guest)
    upstream.script(reply(content="streamed answer"), reply(content="Streamed Title"))
    response = chat(titled_guest, created["id"], "stream please", stream=True)
    assert b"data: [DONE]" in response.get_data()
    assert title_of(titled_guest, created["id"]) == "Streamed Title"
    assert upstream.requests[-1].body["stream"] is False


def test_an_unknown_title_model_falls_back(llm_env, provider, upstream):
    from functions.llm.app import create_app
    from functions.llm.settings import LlmSettings

    app = create_app(from_env(LlmSettings, environ=llm_env, conversation_title_model="nobody/nothing"))
    client = app.test_client()
    account = Account(client, client.post("/auth/guest-login").json)
    created = create(account)
    assert chat(account, created["id"], "hello there").json["conversation"]["title"] == "hello there"
    assert len(upstream.requests) == 1


def test_a_title_set_while_the_request_ran_is_not_overwritten(app, llm, guest):
    import types

    from tests.llm.conversation_support import internal_conversation

    created = create(guest)
    row = internal_conversation(app, created["id"])  # as the chat request read it: no title yet
    guest.post(f"/v1/conversations/{created['id']}", json={"title": "Set meanwhile"})
    stale = types.SimpleNamespace(id=row.id, title=None, metadata=row.metadata)
    assert llm.chat.titles.after_completion(stale, [{"role": "user", "content": "hi"}], "hello") == "Set meanwhile"
    assert title_of(guest, created["id"]) == "Set meanwhile"

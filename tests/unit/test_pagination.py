"""shared/pagination.py: limit/order/after from the query string (400s, never silent clamping) and OpenAI's
list shape."""
from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from shared.errors import BadRequest
from shared.pagination import Page, list_body, page_from


def params(query: str = "", **kwargs) -> Page:
    return page_from(dict(parse_qsl(query, keep_blank_values=True)), **kwargs)


def test_defaults():
    assert params() == Page(limit=20, order="desc", after=None)
    assert params(default_limit=5, default_order="asc") == Page(limit=5, order="asc", after=None)


def test_empty_values_mean_defaults():
    assert params("limit=&order=&after=") == Page(limit=20, order="desc", after=None)


@pytest.mark.parametrize("query, expected", [
    ("limit=1", Page(1, "desc", None)),
    ("limit=100", Page(100, "desc", None)),
    ("limit=007", Page(7, "desc", None)),
    ("order=asc", Page(20, "asc", None)),
    ("order=desc&after=msg_abc", Page(20, "desc", "msg_abc")),
    ("after=" + "a" * 128, Page(20, "desc", "a" * 128)),
])
def test_valid_values(query, expected):
    assert params(query) == expected


def test_maximum_is_configurable():
    assert params("limit=500", max_limit=1000).limit == 500
    with pytest.raises(BadRequest, match="between 1 and 1000"):
        params("limit=1001", max_limit=1000)


@pytest.mark.parametrize("query, message, param", [
    ("limit=0", "limit must be between 1 and 100", "limit"),
    ("limit=-1", "limit must be between 1 and 100", "limit"),
    ("limit=101", "limit must be between 1 and 100", "limit"),
    ("limit=x", "limit must be an integer", "limit"),
    ("limit=1.0", "limit must be an integer", "limit"),
    ("limit=%20", "limit must be an integer", "limit"),
    ("order=ASC", "order must be 'asc' or 'desc'", "order"),
    ("order=newest", "order must be 'asc' or 'desc'", "order"),
    ("after=" + "a" * 129, "after is not a valid cursor", "after"),
])
def test_invalid_values_are_400(query, message, param):
    with pytest.raises(BadRequest) as caught:
        params(query)
    assert (caught.value.status, caught.value.message, caught.value.param) == (400, message, param)


def test_list_body_shape():
    items = [{"id": "a"}, {"id": "b"}, {"id": "c"}]
    assert list_body(items, has_more=True) == {"object": "list", "data": items, "first_id": "a", "last_id": "c",
                                               "has_more": True}


def test_empty_list_body_has_null_ids():
    assert list_body([], has_more=False) == {"object": "list", "data": [], "first_id": None, "last_id": None,
                                             "has_more": False}


def test_list_body_extra_fields_follow_the_openai_ones():
    body = list_body([{"id": "a"}], has_more=False, total=1)
    assert list(body) == ["object", "data", "first_id", "last_id", "has_more", "total"]
    assert body["total"] == 1

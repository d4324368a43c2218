"""No bound parameter, and no value the database echoes back, reaches a log line or an error's text."""
from __future__ import annotations

import io
import logging
import uuid

import pytest
from flask import Blueprint
from sqlalchemy import bindparam, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from shared.app import create_app
from shared.db import Database, make_engine
from shared.settings import PlatformSettings
from shared.telemetry import JsonLogFormatter

SECRET = "s3cret-" + uuid.uuid4().hex

# Each statement fails and carries the secret: as a bound parameter, and echoed by the server (a value in
# "invalid input syntax", a row in a not-null violation's DETAIL).
FAILING = {
    "cast": (text("SELECT CAST(:secret AS integer)"), {"secret": SECRET}),
    "undefined_function": (text("SELECT * FROM (VALUES (:secret)) AS v(x) "
                    "WHERE pg_temp.no_such_function(x)"), {"secret": SECRET}),
    "not_null": (text("INSERT INTO users (public_id, issuer, subject, password_hash) "
                      "VALUES (:public_id, NULL, :subject, :secret)"),
                 {"public_id": SECRET[:60], "subject": SECRET, "secret": SECRET}),
}


@pytest.fixture(scope="module")
def db(database_url):
    database = Database(make_engine(PlatformSettings(database_url=database_url)))
    yield database
    database.engine.dispose()


@pytest.mark.parametrize("name", sorted(FAILING))
def test_a_failing_statement_never_shows_its_values(db, name):
    statement, params = FAILING[name]
    with pytest.raises(DBAPIError) as raised:
        with db.transaction() as conn:
            conn.execute(statement, params)
    text_of_error = str(raised.value) + repr(raised.value) + str(raised.value.orig) + repr(raised.value.orig)
    assert SECRET not in text_of_error
    assert raised.value.orig.sqlstate  # still says what went wrong


def test_a_unique_violation_keeps_its_type_and_constraint_but_not_its_key(db):
    with db.transaction() as conn:
        conn.execute(text("CREATE TEMP TABLE IF NOT EXISTS secrets_once (v text UNIQUE)"))
        conn.execute(text("INSERT INTO secrets_once VALUES (:v)"), {"v": SECRET})
        with pytest.raises(IntegrityError) as raised:
            conn.execute(text("INSERT INTO secrets_once VALUES (:v)").bindparams(bindparam("v")), {"v": SECRET})
    assert SECRET not in str(raised.value)
    assert raised.value.orig.diag.constraint_name == "secrets_once_v_key"
    assert "secrets_once_v_key" in str(raised.value)


def test_an_unhandled_database_error_in_a_handler_logs_no_secret(database_url):
    bp = Blueprint("failing", __name__)

    @bp.post("/fail")
    def fail():
        from shared.app import platform

        with platform().db.transaction() as conn:
            conn.execute(*FAILING["not_null"])
        return {}

    app = create_app(PlatformSettings(database_url=database_url, log_level="WARNING"), [bp])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter())
    plain = io.StringIO()
    plain_handler = logging.StreamHandler(plain)  # the standard formatter too (gunicorn's, pytest's)
    root = logging.getLogger()
    root.addHandler(handler)
    root.addHandler(plain_handler)
    try:
        response = app.test_client().post("/fail")
    finally:
        root.removeHandler(handler)
        root.removeHandler(plain_handler)
        app.extensions["jan"].db.engine.dispose()
    assert response.status_code == 500
    assert SECRET not in response.get_data(as_text=True)
    logged = stream.getvalue() + plain.getvalue()
    assert "unhandled error" in logged and "NotNullViolation" in logged
    assert SECRET not in logged

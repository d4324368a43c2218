"""`make new-function` on a copy of the repository: the scaffolded function passes the deploy checks (manifest,
generated files, Kong, routing through the dev gateway, Knative rules, skaffold), its own first test passes, and
the dev stack starts it on its port."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from dev import new_function, stack
from dev.readiness import wait_http

COPIED = ("functions", "shared", "knative", "gateway", "dev", "migrations", "tests", "skaffold.yaml",
          "pyproject.toml", "Dockerfile")
SYSTEM_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
DEPLOY_CHECKS = [
    "tests/deploy/test_function_manifests.py",
    "tests/deploy/test_kong_yml.py::test_deck_validates_kong_yml",
    "tests/deploy/test_kong_yml.py::test_kong_yml_plugin_settings",
    "tests/deploy/test_kong_routing.py::test_kong_routes_and_function_routes_meet",
    "tests/deploy/test_renders.py::test_target_holds_every_function_once_in_one_labelled_namespace",
    "tests/deploy/test_knative_services.py::test_services_follow_our_rules",
    "tests/deploy/test_knative_services.py::test_services_match_the_strict_crd_schema",
    "tests/deploy/test_skaffold.py::test_skaffold_yaml_has_no_problems",
    "tests/notes/test_notes.py",
]
pytestmark = pytest.mark.timeout(600)
NEXT_PORT = new_function.next_free_port(stack.PROJECT_ROOT)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("scaffold") / "repo"
    copy.mkdir()
    for name in COPIED:
        source = stack.PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, copy / name)
    return copy


def run(repo: Path, *argv: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], cwd=repo, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(repo), **env})


@pytest.fixture(scope="module")
def scaffolded(repo) -> Path:
    result = run(repo, "-m", "dev.new_function", "notes")
    assert result.returncode == 0, result.stderr
    return repo


def test_it_writes_the_folder_manifest_routes_and_first_test(scaffolded):
    for path in ("functions/notes/function.toml", "functions/notes/main.py", "functions/notes/app.py",
                 "functions/notes/settings.py", "functions/notes/routes.py", "tests/notes/test_notes.py",
                 "knative/base/functions/notes.yaml"):
        assert (scaffolded / path).is_file(), path
    manifest = (scaffolded / "functions/notes/function.toml").read_text()
    assert f"port = {NEXT_PORT}\n" in manifest, "the next free port above llm's 8080"
    kong = (scaffolded / "gateway/kong.yml").read_text()
    assert "url: http://notes.jan.svc.cluster.local" in kong
    blocked = kong[kong.index("- name: internal-blocked"):].split("\n", 2)[1]
    assert all(f"/notes{path}" in blocked for path in ("/metrics", "/version", "/openapi.json", "/internal")), blocked
    assert "\nnotes = []\n" in (scaffolded / "pyproject.toml").read_text()


def test_a_taken_name_or_port_is_refused(scaffolded):
    again = run(scaffolded, "-m", "dev.new_function", "notes")
    assert again.returncode == 1 and "functions/notes already exists" in again.stderr
    taken = run(scaffolded, "-m", "dev.new_function", "media", "--port", "8080")
    assert taken.returncode == 1 and "port 8080 is taken (llm)" in taken.stderr
    assert not (scaffolded / "functions/media").exists()


def test_the_scaffolded_function_passes_the_deploy_checks_and_its_own_test(scaffolded, server_url):
    # The migrations need pgvector: the embedded PostgreSQL of this session, not the system one.
    result = run(scaffolded, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *DEPLOY_CHECKS,
                 TEST_DATABASE_URL=server_url)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_dev_stack_starts_it(scaffolded, tmp_path):
    listed = run(scaffolded, "-c", "from dev import stack; print(stack.available_functions())")
    assert eval(listed.stdout) == {**stack.available_functions(), "notes": NEXT_PORT}, listed.stderr
    port = free_port()
    command = run(scaffolded, "-c", f"from dev import stack; print(repr(stack.function_command('notes', {port})))")
    keys = run(scaffolded, "-c", f"from dev import stack; print(repr(stack.dev_keys_env(__import__('pathlib').Path({str(tmp_path)!r}))))")
    env = {**os.environ, **eval(keys.stdout), "DATABASE_URL": SYSTEM_DATABASE_URL, "PORT": str(port),
           "HOST": "127.0.0.1", "PYTHONPATH": str(scaffolded)}
    process = subprocess.Popen(eval(command.stdout), cwd=scaffolded, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", 60, check_alive=lambda: _still_running(process))
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/notes/whoami", timeout=5)
        assert refused.value.code == 401
    finally:
        process.terminate()
        process.wait(timeout=30)


def _still_running(process: subprocess.Popen) -> None:
    assert process.poll() is None, process.stdout.read()

"""The function images, without a Docker engine.

The Dockerfile follows our rules (slim base, non-root, one dependency group, exec'd gunicorn, compiled bytecode).
Then, for every function, a stand-in build (tests/deploy/dockerfile.py) runs the Dockerfile's own steps: a fresh
venv with only that function's dependency group (pip's cache makes it quick), the code laid out as the image
copies it. The image's exact command starts it as a non-root user, with the environment its Knative Service gives
it (tests/deploy/cluster_env.py): /healthz and /readyz
must answer 200, and SIGTERM must end it cleanly. This proves the group is complete and the entry point right.
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from knative import render
from shared import function_manifest
from tests.deploy import cluster_env, dockerfile
from tests.deploy.broken import cases

DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
RUN_AS = "jan-image-test"
START_TIMEOUT = 60.0
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def run_as() -> tuple[int, int] | None:
    """A non-root user to run the images as: ours when the tests run as root, else the current one."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(RUN_AS)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", RUN_AS],
                       check=True)
        entry = pwd.getpwnam(RUN_AS)
    return entry.pw_uid, entry.pw_gid


@pytest.fixture(scope="module")
def scratch():
    # Readable by the run-time user (pytest's tmp_path is private to root).
    path = Path(tempfile.mkdtemp(prefix="jan-image-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def python(run_as) -> str:
    return dockerfile.free_python([sys._base_executable, "/usr/bin/python3.11", shutil.which("python3.11") or ""],
                                  run_as)


def roots_under(base: Path) -> dict[str, Path]:
    return {"/": base, "/opt/venv": base / "venv", "/app": base / "app", "/build": base / "build"}


@pytest.fixture(scope="module")
def images(scratch, python) -> dict[str, tuple[dockerfile.BuiltImage, dict[str, Path]]]:
    text = dockerfile.DOCKERFILE.read_text()
    built = {}
    for function in render.function_names():
        roots = roots_under(scratch / function)
        build_args = function_manifest.function(function).build_args
        build = dockerfile.StandInBuild(dockerfile.parse(text), build_args, roots, python)
        built[function] = (build.build(dockerfile.FUNCTION_STAGE), roots)
    return built


@pytest.fixture(scope="module")
def outside_values() -> dict[tuple[str, str, str], str]:
    return cluster_env.outside_values(DATABASE_URL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(image: dockerfile.BuiltImage, environment: dict[str, str], run_as) -> tuple[subprocess.Popen, int]:
    port = free_port()
    # Knative sets PORT to the container port; HOST keeps the test off other interfaces.
    env = dockerfile.non_root_run_environment(image, {**environment, "PORT": str(port), "HOST": "127.0.0.1"})
    process = subprocess.Popen(image.command, cwd=image.workdir, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True,
                               user=run_as[0] if run_as else None, group=run_as[1] if run_as else None)
    return process, port


def wait_for(process: subprocess.Popen, url: str) -> int:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited with {process.returncode} before {url} answered:\n{process.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {START_TIMEOUT} s")


def stop(process: subprocess.Popen) -> str:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    return process.communicate()[0]


def test_dockerfile_follows_our_rules():
    text = dockerfile.DOCKERFILE.read_text()
    assert dockerfile.rule_problems(dockerfile.parse(text), text) == []


@pytest.mark.parametrize("broken", cases("dockerfile"))
def test_broken_dockerfile_breaks_a_rule(broken):
    text = broken.applied_to_text(dockerfile.DOCKERFILE.read_text())
    problems = dockerfile.rule_problems(dockerfile.parse(text), text)
    assert any(problem.startswith(broken.expect) for problem in problems), problems


@pytest.mark.parametrize("function", render.function_names())
def test_function_image_serves_health_as_non_root_and_stops_on_sigterm(images, function, run_as, prod_render,
                                                                        outside_values, scratch):
    image, _roots = images[function]
    assert image.user.split(":")[0] not in {"root", "0"}
    service = render.knative_services(prod_render)[function]
    environment = cluster_env.environment(service, prod_render, outside_values, scratch / f"{function}-files")
    process, port = start(image, environment, run_as)
    try:
        assert wait_for(process, f"http://127.0.0.1:{port}/healthz") == 200
        assert wait_for(process, f"http://127.0.0.1:{port}/readyz") == 200
        process.send_signal(signal.SIGTERM)
        # gunicorn exits 0 after draining; uvicorn drains, then re-raises the SIGTERM it caught.
        clean = (0,) if function_manifest.function(function).server == "wsgi" else (0, -signal.SIGTERM)
        assert process.wait(timeout=40) in clean
    finally:
        output = stop(process)
    assert "Shutting down" in output, output


@pytest.mark.parametrize("broken", cases("image"))
def test_broken_image_does_not_start(images, broken, run_as, prod_render, outside_values, scratch, python):
    """Each fixture breaks the Dockerfile; the image is rebuilt on the llm image's dependencies and must fail."""
    _image, roots = images["llm"]
    base = scratch / f"broken-{broken.name}"
    broken_roots = {**roots_under(base), "/opt/venv": roots["/opt/venv"]}
    text = broken.applied_to_text(dockerfile.DOCKERFILE.read_text())
    build = dockerfile.StandInBuild(dockerfile.parse(text), function_manifest.function("llm").build_args,
                                    broken_roots, python,
                                    built={"dependencies"})
    image = build.build(dockerfile.FUNCTION_STAGE)
    service = render.knative_services(prod_render)["llm"]
    environment = cluster_env.environment(service, prod_render, outside_values, base / "files")
    process, port = start(image, environment, run_as)
    try:
        with pytest.raises(AssertionError) as failure:
            wait_for(process, f"http://127.0.0.1:{port}/healthz")
    finally:
        stop(process)
    assert broken.expect in str(failure.value), str(failure.value)

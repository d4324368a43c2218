"""python_exec against the real dev sandbox process: output, errors, every limit, no network, a fresh working
directory and a minimal environment for each run."""
from __future__ import annotations

import json
import os
import socket
import stat
import tempfile
import textwrap
import time

import pytest

from shared.sandbox import SandboxToolError, python_exec
from tests.sandbox.conftest import LIMITS, SECRET_VARIABLE

OUTPUT_CAP = int(LIMITS["DEV_SANDBOX_MAX_OUTPUT_BYTES"])


def run(settings, code: str, **arguments) -> dict:
    return python_exec({"code": textwrap.dedent(code), **arguments}, settings)


def test_output_reaches_the_caller(sandbox_settings):
    result = run(sandbox_settings, """
        import sys
        print("hello from the sandbox", 6 * 7)
        print("to stderr", file=sys.stderr)
    """, session_id="sess-1")
    assert result["stdout"] == "hello from the sandbox 42\n"
    assert result["stderr"] == "to stderr\n"
    assert result["error"] == ""
    assert result["session_id"] == "sess-1"
    assert result["artifacts"] is None
    assert isinstance(result["duration_ms"], int) and 0 <= result["duration_ms"] < 2000


def test_an_exception_is_a_failed_run_with_its_traceback(sandbox_settings):
    result = run(sandbox_settings, "raise ValueError('boom')")
    assert "ValueError: boom" in result["stderr"]
    assert result["error"] == "run exited with code 1"


def test_a_non_zero_exit_is_named(sandbox_settings):
    result = run(sandbox_settings, "import sys; print('partial'); sys.exit(3)")
    assert result["stdout"] == "partial\n"
    assert result["error"] == "run exited with code 3"


def test_a_language_other_than_python_is_a_sandbox_error(sandbox_settings):
    result = run(sandbox_settings, "echo hi", language="bash")
    assert result["error"] == "language 'bash' is not available in the dev sandbox (python only)"


def test_an_unknown_language_is_refused_by_the_sandbox(sandbox_settings):
    with pytest.raises(SandboxToolError, match=r"^sandboxfusion error \(422\): .*literal_error"):
        run(sandbox_settings, "x", language="cobol")


@pytest.mark.parametrize("code", ["while True: pass", "import time; time.sleep(60)"], ids=["busy", "sleeping"])
def test_the_time_limit_stops_the_run(sandbox_settings, code):
    started = time.monotonic()
    result = run(sandbox_settings, code)
    elapsed = time.monotonic() - started
    assert result["error"] == "run time limit exceeded"
    limit = float(LIMITS["DEV_SANDBOX_MAX_RUN_TIMEOUT_SECONDS"])
    assert limit <= elapsed < limit + 3
    assert limit * 1000 <= result["duration_ms"] < (limit + 1) * 1000


def test_the_time_limit_kills_processes_the_run_started(sandbox_settings):
    result = run(sandbox_settings, """
        import os, time
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        print(os.getpid(), flush=True)
        time.sleep(60)
    """)
    assert result["error"] == "run time limit exceeded"
    # The run's whole process group is gone (zombies aside) when the answer comes.
    assert live_members_of_group(int(result["stdout"])) == []


def live_members_of_group(group: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(entry))
    return members


def test_the_memory_limit_holds(sandbox_settings):
    within = run(sandbox_settings, "x = bytearray(64 * 1024 * 1024); print(len(x))")
    assert within["stdout"] == f"{64 * 1024 * 1024}\n" and within["error"] == ""
    over = run(sandbox_settings, "x = bytearray(1024 * 1024 * 1024)")
    assert "MemoryError" in over["stderr"]
    assert over["error"] == "run exited with code 1"


def test_the_process_count_limit_holds(sandbox_settings):
    result = run(sandbox_settings, """
        import os, time
        started = 0
        try:
            for _ in range(64):
                if os.fork() == 0:
                    time.sleep(1)
                    os._exit(0)
                started += 1
        except OSError as error:
            print("stopped after", started, error.errno)
    """)
    limit = int(LIMITS["DEV_SANDBOX_MAX_PROCESSES"])
    words = result["stdout"].split()
    assert words[:2] == ["stopped", "after"], result
    assert int(words[2]) < limit
    assert int(words[3]) == 11  # EAGAIN


def test_output_is_cut_at_the_byte_limit(sandbox_settings):
    result = run(sandbox_settings, "import sys; sys.stdout.write('x' * 1_000_000); sys.stderr.write('y' * 1_000_000)")
    note = f"\n[output truncated: more than {OUTPUT_CAP} bytes]"
    assert result["stdout"] == "x" * OUTPUT_CAP + note
    assert result["stderr"] == "y" * OUTPUT_CAP + note
    assert result["error"] == ""


def test_the_file_size_limit_holds(sandbox_settings):
    result = run(sandbox_settings, "open('big', 'wb').write(b'0' * (8 * 1024 * 1024))")
    assert "File too large" in result["stderr"]


def test_no_network_a_listening_loopback_socket_is_unreachable(dev_sandbox, sandbox_settings):
    assert "network: own " in dev_sandbox.startup_line, dev_sandbox.startup_line
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        result = run(sandbox_settings, f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=3)
                print("connected")
            except OSError as error:
                print("refused", error.errno)
        """)
        assert result["stdout"].startswith("refused"), result
        with pytest.raises(socket.timeout):
            listener.accept()


def test_each_run_has_a_fresh_directory_and_a_minimal_environment(sandbox_settings):
    code = """
        import json, os
        open("left-behind", "w").write("x")
        print(json.dumps({"cwd": os.getcwd(), "files": sorted(os.listdir(".")), "env": dict(os.environ)}))
    """
    first, second = (json.loads(run(sandbox_settings, code)["stdout"]) for _ in range(2))
    assert first["cwd"] != second["cwd"]
    assert second["files"] == ["left-behind", "main.py"]
    assert not os.path.exists(first["cwd"])
    assert SECRET_VARIABLE not in first["env"]
    assert set(first["env"]) <= {"PATH", "HOME", "TMPDIR", "LANG", "PYTHONDONTWRITEBYTECODE", "LC_CTYPE"}


@pytest.mark.skipif(os.geteuid() != 0, reason="runs drop to an unprivileged user only when the sandbox is root")
def test_started_as_root_runs_cannot_read_a_private_file(dev_sandbox, sandbox_settings):
    assert "user: uid " in dev_sandbox.startup_line
    with tempfile.NamedTemporaryFile("w", dir="/tmp") as private:
        private.write("root only")
        private.flush()
        os.chmod(private.name, stat.S_IRUSR | stat.S_IWUSR)
        result = run(sandbox_settings, f"""
            try:
                print(open({private.name!r}).read())
            except PermissionError:
                print("denied")
        """)
    assert result["stdout"] == "denied\n"

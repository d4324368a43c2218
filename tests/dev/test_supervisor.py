"""Process supervision as dev.run uses it: SIGTERM stops every child with its own children, then the cleanups;
a child that dies takes the others down with it."""
import io
import re
import signal
import subprocess
import sys

import pytest

from dev.supervisor import ChildExited, Supervisor

SUPERVISED_SCRIPT = """
import sys
from dev.supervisor import Shutdown, Supervisor
try:
    with Supervisor(grace_seconds=5) as supervisor:
        supervisor.on_stop(lambda: print("cleanup after children:", [c.name for c in supervisor.children], flush=True))
        supervisor.start("parent", ["sh", "-c", "sleep 300 & echo parent $$ grandchild $!; wait"])
        sleeper = "import os, time; print('pid', os.getpid(), flush=True); time.sleep(300)"
        supervisor.start("plain", [sys.executable, "-c", sleeper])
        supervisor.wait()
except Shutdown as signal_name:
    print("shutdown on", signal_name, flush=True)
"""


def read_until_all(stream, patterns: list[str]) -> str:
    """Read lines from `stream` until every regex in `patterns` has matched one; returns what was read."""
    lines, waiting = [], set(patterns)
    while waiting:
        line = stream.readline()
        assert line, f"output ended before {sorted(waiting)} matched: {lines}"
        lines.append(line)
        waiting = {pattern for pattern in waiting if not re.search(pattern, line)}
    return "".join(lines)


def test_sigterm_stops_children_and_grandchildren_then_cleanups(assert_all_gone):
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISED_SCRIPT], stdout=subprocess.PIPE, text=True
    )
    try:
        output = read_until_all(supervisor.stdout, [r"parent \| parent \d+ grandchild \d+", r"plain \| pid \d+"])
        pids = [int(pid) for pid in re.findall(r"(?:parent|grandchild|pid) (\d+)", output)]
        assert len(pids) == 3

        supervisor.send_signal(signal.SIGTERM)
        rest = supervisor.communicate(timeout=15)[0]
    finally:
        supervisor.kill()

    assert supervisor.returncode == 0
    assert "cleanup after children: []" in rest and "shutdown on SIGTERM" in rest
    assert_all_gone(pids)


def test_a_child_that_dies_stops_the_others(assert_all_gone):
    log = io.StringIO()
    with pytest.raises(ChildExited) as exited:
        with Supervisor(log=log, grace_seconds=5) as supervisor:
            survivor = supervisor.start("survivor", ["sleep", "300"])
            supervisor.start("doomed", ["sh", "-c", "echo giving up; exit 3"])
            supervisor.wait()

    assert (exited.value.name, exited.value.returncode) == ("doomed", 3)
    assert "doomed | giving up" in log.getvalue()
    assert survivor.process.returncode is not None
    assert_all_gone([survivor.process.pid])

import time

import pytest


@pytest.fixture
def assert_all_gone():
    """Assert every pid exits within a few seconds (a zombie counts as gone: only its parent or init reaps it)."""

    def check(pids: list[int], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        alive = list(pids)
        while alive and time.monotonic() < deadline:
            alive = [pid for pid in alive if _running(pid)]
            time.sleep(0.05)
        assert not alive, f"still running: {alive}"

    return check


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False

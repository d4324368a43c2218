"""The scripted upstream double (tests/doubles/openai_upstream.py), run with TCP_NODELAY on its sockets.

The double writes the status line and headers in one send and the body (or each SSE event) in the next. Without
TCP_NODELAY, Nagle's algorithm holds that second write until the client ACKs the first, and the client's delayed
ACK makes that ~40 ms: every direct request measured 44 ms p50 (docs/performance.md, "The upstream double").
A real provider (vLLM behind uvicorn, OpenAI) does not stall like this, so the benchmark removes the stall and
measures the double at ~0.3 ms. Everything else is the double unchanged; once the double sets
`disable_nagle_algorithm = True` itself, this wrapper changes nothing.

    python -m bench.upstream --port P --model test-model      (same arguments as the double)
"""
from __future__ import annotations

import sys

from tests.doubles import openai_upstream


def main(argv: list[str] | None = None) -> None:
    openai_upstream._Exchange.disable_nagle_algorithm = True
    openai_upstream.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])

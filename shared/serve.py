"""The function image's command: `python -m shared.serve` runs the server that $FUNCTION's manifest declares
(gunicorn for wsgi, uvicorn for asgi) in this very process, so the server is PID 1 and gets SIGTERM itself."""
from __future__ import annotations

import os
import runpy
import sys

from shared import function_manifest


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else os.environ["FUNCTION"]
    sys.argv = function_manifest.function(name).server_argv(dict(os.environ))
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()

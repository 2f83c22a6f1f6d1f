"""Progress for steps that take more than a moment (a Verilator build, a simulation, Yosys, an export).

``with step("building kofn_array (Verilator)"):`` shows a spinner with the elapsed time on a terminal, and on
a log or pipe prints the message once and a closing line with the time taken, so a user never stares at a
silent command. Output goes to stderr, so ``--json -`` style stdout stays clean. Nested steps print as lines.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

_console = Console(stderr=True)
_depth = 0


@contextmanager
def step(message: str) -> Iterator[None]:
    """Show ``message ...`` while the block runs, then ``message: done in X s`` (or ``failed``)."""
    global _depth
    t0 = time.perf_counter()
    spinner = _console.is_terminal and _depth == 0
    _depth += 1
    ok = False
    try:
        if spinner:
            with _console.status(f"{message} ...", spinner="dots"):
                yield
        else:
            print(f"{message} ...", file=sys.stderr, flush=True)
            yield
        ok = True
    finally:
        _depth -= 1
        took = time.perf_counter() - t0
        print(f"{message}: {'done' if ok else 'failed'} in {took:.1f} s", file=sys.stderr, flush=True)


__all__ = ["step"]

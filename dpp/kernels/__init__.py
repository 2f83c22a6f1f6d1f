"""C kernels compiled at first use with the system C compiler, cached per user, loaded with ctypes.

``load("kofn_mask")`` builds ``dpp/kernels/kofn_mask.c`` with :data:`CFLAGS` into :func:`cache_dir`, under the
SHA-256 of the source, the compiler's identity, the flags and the CPU (``-march=native`` code must never run
on another CPU sharing the home directory). The library is written under a temporary name and renamed into
place, so concurrent processes never load a half-written file. No ``-ffast-math``: the kernels must give the
same bits as their torch definitions (``-ffp-contract=off`` keeps every multiply and add separately rounded).

When no compiler works, :func:`load` returns None after one warning and the callers use their torch path.
``CC`` picks the compiler (default: the first of cc, gcc, clang on PATH); ``DPP_KERNEL_CACHE`` the cache folder.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

CFLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fPIC", "-shared")
KERNEL_DIR = Path(__file__).resolve().parent
COMPILE_TIMEOUT_SECONDS = 300


class KernelBuildError(RuntimeError):
    """The C compiler is missing or failed; the message says which and why."""


def cache_dir() -> Path:
    """``$DPP_KERNEL_CACHE``, else ``$XDG_CACHE_HOME/dpp-codesign/kernels`` (default ``~/.cache``)."""
    if os.environ.get("DPP_KERNEL_CACHE"):
        return Path(os.environ["DPP_KERNEL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dpp-codesign" / "kernels"


def compiler() -> str | None:
    """The C compiler to use: ``$CC`` if set (resolved on PATH), else the first of cc, gcc, clang."""
    if os.environ.get("CC"):
        return shutil.which(os.environ["CC"])
    return next((path for cc in ("cc", "gcc", "clang") if (path := shutil.which(cc))), None)


def _cpu_identity() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text(errors="replace").splitlines()
        return "\n".join(sorted({ln for ln in lines if ln.startswith(("model name", "flags", "Features"))}))
    except OSError:
        return platform.processor()


def _compiler_identity(cc: str) -> str:
    try:
        return subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise KernelBuildError(f"C compiler {cc} does not run ({exc})") from exc


def build(name: str, extra_flags: tuple[str, ...] = ()) -> Path:
    """The cached shared library of ``<name>.c``, compiled first if needed; :class:`KernelBuildError` if not.

    ``extra_flags`` follow :data:`CFLAGS` (the tests build e.g. ``-mno-avx512f`` to check the portable paths).
    """
    flags = (*CFLAGS, *extra_flags)
    source = KERNEL_DIR / f"{name}.c"
    if not source.is_file():
        raise KernelBuildError(f"no kernel source {source}")
    cc = compiler()
    if cc is None:
        wanted = os.environ.get("CC") or "cc, gcc or clang"
        raise KernelBuildError(f"no C compiler found (looked for {wanted} on PATH)")
    text = source.read_bytes()
    key = hashlib.sha256(
        b"\0".join(
            [
                text,
                _compiler_identity(cc).encode(),
                " ".join(flags).encode(),
                platform.machine().encode(),
                _cpu_identity().encode(),
            ]
        )
    ).hexdigest()
    out_dir = cache_dir()
    target = out_dir / f"{name}-{key[:32]}.so"
    if target.is_file():
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=".so", dir=out_dir)
    os.close(fd)
    try:
        done = subprocess.run(
            [cc, *flags, str(source), "-o", tmp], capture_output=True, text=True, timeout=COMPILE_TIMEOUT_SECONDS
        )
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()[:5]
            raise KernelBuildError(f"{cc} failed on {source.name} (exit {done.returncode}): " + " | ".join(detail))
        os.replace(tmp, target)
    except (OSError, subprocess.SubprocessError) as exc:
        raise KernelBuildError(f"{cc} could not compile {source.name} ({exc})") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


@functools.cache
def load(name: str, extra_flags: tuple[str, ...] = ()) -> ctypes.CDLL | None:
    """The loaded kernel library (built on first use), or None after one warning if it cannot be built."""
    try:
        return ctypes.CDLL(str(build(name, extra_flags)))
    except (KernelBuildError, OSError) as exc:
        warnings.warn(
            f"dpp: C kernel {name!r} unavailable, using the slower torch path: {exc}", RuntimeWarning, stacklevel=2
        )
        return None

"""The library search paths (``DT_RUNPATH`` / ``DT_RPATH``) written into an ELF executable.

A simulator binary built by cocotb's runner finds ``libcocotbvpi_verilator.so`` through a run path into the
virtual environment it was built from. The build cache outlives that environment (a re-created ``.venv``, a CI
clone that was deleted), and a cached binary whose run path is gone fails with "cannot open shared object
file". :func:`missing_runpath_dirs` lets the cache see that before it hands such a build out. Read with
:mod:`struct` from the section headers (64- and 32-bit, either byte order), so no ``readelf`` is needed.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

DT_NULL, DT_RPATH, DT_RUNPATH = 0, 15, 29
SHT_DYNAMIC = 6


def runpath_dirs(path: Path) -> list[str]:
    """The run-path directories of the ELF file ``path`` in order (``[]`` for a non-ELF file or none set)."""
    try:
        data = path.read_bytes()
    except OSError:
        return []
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return []
    bits64, end = data[4] == 2, "<" if data[5] == 1 else ">"
    word = "Q" if bits64 else "I"
    if bits64:
        shoff = struct.unpack_from(end + "Q", data, 0x28)[0]
        shentsize, shnum = struct.unpack_from(end + "HH", data, 0x3A)
    else:
        shoff = struct.unpack_from(end + "I", data, 0x20)[0]
        shentsize, shnum = struct.unpack_from(end + "HH", data, 0x2E)
    sections = []
    for i in range(shnum):
        at = shoff + i * shentsize
        if at + shentsize > len(data):
            return []
        if bits64:
            _, sh_type, _, _, off, size, link, _, _, entsize = struct.unpack_from(end + "IIQQQQIIQQ", data, at)
        else:
            _, sh_type, _, _, off, size, link, _, _, entsize = struct.unpack_from(end + "IIIIIIIIII", data, at)
        sections.append((sh_type, off, size, link, entsize))
    dirs: list[str] = []
    for sh_type, off, size, link, entsize in sections:
        if sh_type != SHT_DYNAMIC or link >= len(sections) or not entsize:
            continue
        strtab = sections[link][1]
        for at in range(off, min(off + size, len(data) - entsize + 1), entsize):
            tag, val = struct.unpack_from(end + word + word, data, at)
            if tag == DT_NULL:
                break
            if tag in (DT_RPATH, DT_RUNPATH):
                stop = data.find(b"\x00", strtab + val)
                dirs += [d for d in data[strtab + val : stop].decode(errors="replace").split(":") if d]
    return dirs


def missing_runpath_dirs(folder: Path) -> list[str]:
    """Absolute run-path directories of the executables directly in ``folder`` that no longer exist
    (``$ORIGIN``-relative entries are left out: they move with the binary)."""
    missing: list[str] = []
    for f in sorted(folder.iterdir()) if folder.is_dir() else []:
        if f.is_file() and os.access(f, os.X_OK):
            for d in runpath_dirs(f):
                if d.startswith("/") and not Path(d).is_dir() and d not in missing:
                    missing.append(d)
    return missing

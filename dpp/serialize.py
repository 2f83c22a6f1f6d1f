"""Atomic ``.npz`` + JSON-manifest files, the on-disk form of every packed matrix and network.

A saved object is two files side by side: ``NAME.npz`` (the integer arrays) and ``NAME.json`` (the manifest:
schema name and version, shape parameters, and the SHA-256 of the ``.npz`` so a corrupt or swapped file is
refused). Both are written to temporary files in the target folder and renamed into place, manifest last,
so a crash never leaves a half-written pair that loads.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dpp.errors import FormatError

_UMASK = os.umask(0)
os.umask(_UMASK)


def npz_and_manifest_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """``foo``, ``foo.npz`` or ``foo.json`` → ``(foo.npz, foo.json)``."""
    p = Path(path)
    if p.suffix in (".npz", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".npz"), p.with_name(p.name + ".json")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Text version of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def save_arrays(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], manifest: Mapping[str, Any]) -> Path:
    """Save ``arrays`` and ``manifest`` atomically; returns the manifest path."""
    npz_path, json_path = npz_and_manifest_paths(path)
    buf = io.BytesIO()
    payload: dict[str, Any] = {k: np.asarray(v) for k, v in arrays.items()}
    np.savez_compressed(buf, **payload)
    data = buf.getvalue()
    full = dict(manifest)
    full["npz_file"] = npz_path.name
    full["npz_sha256"] = hashlib.sha256(data).hexdigest()
    atomic_write_bytes(npz_path, data)
    atomic_write_text(json_path, json.dumps(full, indent=2, sort_keys=True) + "\n")
    return json_path


def read_manifest(json_path: Path, *, schema: str, schema_version: int) -> dict[str, Any]:
    """Read a JSON manifest, refusing a missing file, bad JSON, or another schema or schema version."""
    if not json_path.is_file():
        raise FormatError(f"manifest {json_path} not found")
    try:
        manifest = json.loads(json_path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError(f"manifest {json_path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise FormatError(f"manifest {json_path} must hold a JSON object")
    if manifest.get("schema") != schema:
        raise FormatError(f"{json_path}: schema must be {schema!r} (got {manifest.get('schema')!r})")
    if manifest.get("schema_version") != schema_version:
        raise FormatError(
            f"{json_path}: schema_version must be {schema_version} (got {manifest.get('schema_version')!r})"
        )
    return manifest


def load_arrays(
    path: str | os.PathLike, *, schema: str, schema_version: int
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Load a pair written by :func:`save_arrays`, refusing another schema, version or a corrupt ``.npz``."""
    npz_path, json_path = npz_and_manifest_paths(path)
    manifest = read_manifest(json_path, schema=schema, schema_version=schema_version)
    if not npz_path.is_file():
        raise FormatError(f"array file {npz_path} not found")
    data = npz_path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if manifest.get("npz_sha256") != digest:
        raise FormatError(f"{npz_path} is corrupt: its SHA-256 does not match the manifest")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:  # numpy raises several types for a damaged archive
        raise FormatError(f"{npz_path} cannot be read: {exc}") from None
    return arrays, manifest


def require_keys(manifest: Mapping[str, Any], keys: list[str], where: str) -> None:
    """Raise :class:`FormatError` naming the first of ``keys`` missing from ``manifest``."""
    for key in keys:
        if key not in manifest:
            raise FormatError(f"{where}: manifest lacks key {key!r}")

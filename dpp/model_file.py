"""A model brought from outside: ``FILE.py:FACTORY`` (a function returning an ``nn.Module``) and a state dict.

``dpp prune --model-file FILE.py:FACTORY [--weights STATE.pth]`` and ``dpp train --model-file ...`` go through
here: :func:`parse_model_file` checks the spec and makes the file's path absolute (a run records it so
``dpp export`` can rebuild the model from any folder), :func:`build_user_model` imports the file (its folder on
``sys.path`` while it loads, so it may import its neighbours) and calls the factory with no arguments under a
seed, and :func:`load_weights` reads a state dict with ``torch.load(..., weights_only=True)`` (no code runs)
and loads it, listing every layer whose shape differs, which is missing or which is extra in one line.
"""

from __future__ import annotations

import importlib.util
import pickle
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from dpp.errors import DPPError, FormatError, PathError

STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")
"""Keys under which a checkpoint dict may hold the state dict (as common training scripts save it)."""


def parse_model_file(spec: str) -> tuple[Path, str]:
    """``"FILE.py:FACTORY"`` → ``(absolute file path, factory name)``; one error line when malformed or missing."""
    if not isinstance(spec, str) or ":" not in spec:
        raise DPPError(
            f"--model-file {spec!r}: expected FILE.py:FACTORY (a Python file and the name of a function "
            "in it returning an nn.Module)"
        )
    file, _, factory = spec.rpartition(":")
    if not file or not factory.isidentifier():
        raise DPPError(
            f"--model-file {spec!r}: expected FILE.py:FACTORY with FACTORY a Python name "
            f"(got file {file!r}, factory {factory!r})"
        )
    path = Path(file).expanduser().resolve()
    if path.suffix != ".py":
        raise DPPError(f"--model-file {spec!r}: {path} is not a .py file")
    if not path.is_file():
        raise PathError(f"--model-file {spec!r}: {path} does not exist, expected a Python file")
    return path, factory


def model_file_spec(spec: str) -> str:
    """The spec with the file's absolute path (what a run records)."""
    path, factory = parse_model_file(spec)
    return f"{path}:{factory}"


def _factory(path: Path, name: str, spec: str) -> Callable[[], object]:
    module_name = f"dpp_user_model_{abs(hash(str(path)))}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise DPPError(f"--model-file {spec!r}: {path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(loader_spec)
    sys.path.insert(0, str(path.parent))
    sys.modules[module_name] = module  # dataclasses and pickling look the module up by name
    try:
        loader_spec.loader.exec_module(module)
    except Exception as exc:  # the user's file: any error while it runs is reported, not a bug of ours
        sys.modules.pop(module_name, None)
        first = (str(exc).strip().splitlines() or [""])[0]
        raise DPPError(f"--model-file {spec!r}: importing {path.name} failed: {type(exc).__name__}: {first}") from None
    finally:
        if sys.path and sys.path[0] == str(path.parent):
            sys.path.pop(0)
    factory = getattr(module, name, None)
    if not callable(factory):
        known = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_"))
        raise DPPError(f"--model-file {spec!r}: {path.name} has no function {name!r} (callables in it: {known})")
    return factory


def build_user_model(spec: str, seed: int = 0) -> nn.Module:
    """Import ``FILE.py:FACTORY`` and return ``FACTORY()``, its weights drawn under ``torch.manual_seed(seed)``."""
    path, name = parse_model_file(spec)
    factory = _factory(path, name, spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        try:
            model = factory()
        except Exception as exc:  # noqa: BLE001 - the user's factory
            first = (str(exc).strip().splitlines() or [""])[0]
            raise DPPError(f"--model-file {spec!r}: {name}() failed: {type(exc).__name__}: {first}") from None
    if not isinstance(model, nn.Module):
        raise DPPError(f"--model-file {spec!r}: {name}() must return an nn.Module (got {type(model).__name__})")
    return model


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a state dict file (``torch.load(..., weights_only=True)``; a checkpoint dict holding
    one under :data:`STATE_DICT_KEYS` is unwrapped)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise PathError(f"--weights {path} does not exist, expected a state dict file (torch.save)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise FormatError(f"--weights {path} is not a state dict readable with weights_only=True ({first})") from None
    if isinstance(obj, dict):
        for key in STATE_DICT_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise FormatError(
            f"--weights {path}: expected a state dict (a dict of tensors, as model.state_dict() "
            f"gives; got {type(obj).__name__})"
        )
    return {str(k).removeprefix("module."): v for k, v in obj.items()}  # nn.DataParallel's prefix


def load_weights(model: nn.Module, path: str | Path, what: str = "the model") -> nn.Module:
    """Load the state dict in ``path`` into ``model`` (strict); every mismatch named layer by layer in one line."""
    state = read_state_dict(path)
    own = model.state_dict()
    problems = [
        f"{k}: file {tuple(v.shape)}, model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    if missing:
        problems.append(f"missing in the file: {', '.join(missing)}")
    if extra:
        problems.append(f"not in the model: {', '.join(extra)}")
    if problems:
        raise FormatError(f"--weights {Path(path)} does not fit {what}: {'; '.join(problems)}")
    model.load_state_dict(state)
    return model

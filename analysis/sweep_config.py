"""Sweep configuration (YAML or TOML) → checked :class:`SweepConfig` → list of grid points.

Format (every key except ``grid`` and ``layers`` is optional; a grid value may be one value or a list)::

    name: demo                 # label stored with the results
    seed: 0                    # seed of the random layer weights (same weights for every arch of a layer)
    batch: 4                   # inputs per layer run
    grid:
      arch: [kofn, csr, dense] # kofn | dense | csr
      k: [1, 2]                # kept slots per group; also multipliers per PE for every arch
      n: [4, 8]                # slots per group (csr: target density k/n; dense: ignored but recorded)
      block: [1]               # columns per slot (kofn only; forced to 1 for the baselines)
      pes: [4]                 # processing elements
      weight_bits: [8]
      act_bits: [8]
      out_bits: [8]
      act_banks: [0]           # csr only: 0 = an activation replica per lane; B (power of two) = one memory
                               # in B banks, k-of-n's size (reported as arch csr_banked); other archs: 0
    layers:                    # layer shapes: the (rows, cols) of the weight matrix
      - {name: fc1, rows: 32, cols: 64}
      - {name: conv2, rows: 16, cols: 72, block: [1, 9], vectors: 16}
                               # block: optional per-layer list; vectors: input vectors of this layer per
                               # inference (conv: output positions; default 1)
    hardware: {max_rows: 0, max_cols: 0, max_batch: 0}     # 0 = size memories to each layer
    rtl_sample: 2              # points also simulated in RTL (model == RTL re-checked); 0 = none
    area: {enabled: false, flows: [generic, ice40]}        # Yosys synthesis per hardware config
    timing: {enabled: false, flows: [ecp5], timeout_s: 3600}
                               # place-and-route per hardware config (analysis.timing, cached per design, so
                               # layers sharing a build share it): Fmax of the first flow gives fmax_mhz,
                               # time_per_inference_s, inferences_per_s, energy_per_inference_j, edp_js;
                               # a design that does not fit (or whose tools stop) gets NaN and timing_message
    runs: []                   # trained-network RUN folders whose accuracy is joined on (k, n, block)

Combinations that are not a valid design (``k >= n``) are skipped and counted; an empty grid is an error.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from analysis.timing import DEFAULT_TIMEOUT_S, FLOWS
from dpp.errors import DPPError
from rtl.archs import ARCHS, arch_named, banks_for

GRID_KEYS = ("arch", "k", "n", "block", "pes", "weight_bits", "act_bits", "out_bits", "act_banks")
GRID_DEFAULTS: dict[str, list[Any]] = {
    "arch": ["kofn"],
    "block": [1],
    "pes": [4],
    "weight_bits": [8],
    "act_bits": [8],
    "out_bits": [8],
    "act_banks": [0],
}
TOP_KEYS = ("name", "seed", "batch", "grid", "layers", "hardware", "rtl_sample", "area", "timing", "runs")
LAYER_KEYS = ("name", "rows", "cols", "block", "vectors")
HARDWARE_KEYS = ("max_rows", "max_cols", "max_batch")
AREA_KEYS = ("enabled", "flows")
AREA_FLOWS = ("generic", "ice40")
TIMING_KEYS = ("enabled", "flows", "timeout_s")
TIMING_FLOWS: tuple[str, ...] = FLOWS  #: ecp5, ice40, osu018 (analysis.timing)
TIMING_DEFAULT_FLOWS = ("ecp5",)
POINT_KEYS = (
    "arch",
    "k",
    "n",
    "block",
    "pes",
    "weight_bits",
    "act_bits",
    "out_bits",
    "act_banks",
    "layer",
    "rows",
    "cols",
    "batch",
    "vectors",
    "seed",
    "max_rows",
    "max_cols",
    "max_batch",
)


@dataclass(frozen=True)
class Layer:
    """One layer shape of the sweep."""

    name: str
    rows: int
    cols: int
    blocks: tuple[int, ...] | None = None
    vectors: int = 1


@dataclass(frozen=True)
class SweepConfig:
    """A checked sweep configuration (see the module docstring for the file format)."""

    name: str
    seed: int
    batch: int
    grid: dict[str, tuple[Any, ...]]
    layers: tuple[Layer, ...]
    hardware: dict[str, int] = field(default_factory=dict)
    rtl_sample: int = 0
    area_enabled: bool = False
    area_flows: tuple[str, ...] = AREA_FLOWS
    runs: tuple[Path, ...] = ()
    source: str = ""
    timing_enabled: bool = False
    timing_flows: tuple[str, ...] = TIMING_DEFAULT_FLOWS
    timing_timeout_s: float = DEFAULT_TIMEOUT_S

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (written next to the results)."""
        timing = {"timing": {"enabled": True, "flows": list(self.timing_flows), "timeout_s": self.timing_timeout_s}}
        return {
            "name": self.name,
            "seed": self.seed,
            "batch": self.batch,
            "grid": {k: list(v) for k, v in self.grid.items()},
            "layers": [
                {
                    "name": ly.name,
                    "rows": ly.rows,
                    "cols": ly.cols,
                    "vectors": ly.vectors,
                    **({"block": list(ly.blocks)} if ly.blocks else {}),
                }
                for ly in self.layers
            ],
            "hardware": dict(self.hardware),
            "rtl_sample": self.rtl_sample,
            "area": {"enabled": self.area_enabled, "flows": list(self.area_flows)},
            # absent when off, so the folders of sweeps written before it still match their config
            **(timing if self.timing_enabled else {}),
            "runs": [str(r) for r in self.runs],
            "source": self.source,
        }


def _int(where: str, v: Any, lo: int = 0) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise DPPError(f"{where} must be an integer (got {v!r})")
    if v < lo:
        raise DPPError(f"{where} must be >= {lo} (got {v})")
    return v


def _unknown(where: str, d: dict[str, Any], allowed: tuple[str, ...]) -> None:
    bad = [k for k in d if k not in allowed]
    if bad:
        raise DPPError(f"unknown key {bad[0]!r} in {where} (expected one of {', '.join(allowed)})")


def _as_list(where: str, v: Any) -> list[Any]:
    out = list(v) if isinstance(v, (list, tuple)) else [v]
    if not out:
        raise DPPError(f"{where} must not be empty")
    return out


def _parse_grid(raw: Any) -> dict[str, tuple[Any, ...]]:
    if not isinstance(raw, dict):
        raise DPPError(f"grid must be a mapping of {', '.join(GRID_KEYS)} (got {type(raw).__name__})")
    _unknown("grid", raw, GRID_KEYS)
    grid: dict[str, tuple[Any, ...]] = {}
    for key in GRID_KEYS:
        if key not in raw and key not in GRID_DEFAULTS:
            raise DPPError(f"grid.{key} is required")
        vals = _as_list(f"grid.{key}", raw.get(key, GRID_DEFAULTS.get(key)))
        if key == "arch":
            for a in vals:
                if a not in ARCHS:
                    raise DPPError(f"grid.arch values must be one of {', '.join(ARCHS)} (got {a!r})")
        else:
            lo = 2 if key in ("n", "weight_bits", "act_bits", "out_bits") else 0 if key == "act_banks" else 1
            vals = [_int(f"grid.{key} value", v, lo) for v in vals]
            bad = [v for v in vals if v & (v - 1)] if key == "act_banks" else []
            if bad:
                raise DPPError(f"grid.act_banks values must be 0 or a power of two (got {bad[0]})")
        grid[key] = tuple(dict.fromkeys(vals))  # drop duplicates, keep order
    return grid


def _parse_layers(raw: Any) -> tuple[Layer, ...]:
    if not isinstance(raw, list) or not raw:
        raise DPPError("layers must be a non-empty list of {name, rows, cols} mappings")
    layers = []
    for i, d in enumerate(raw):
        where = f"layers[{i}]"
        if not isinstance(d, dict):
            raise DPPError(f"{where} must be a mapping with name, rows, cols (got {d!r})")
        _unknown(where, d, LAYER_KEYS)
        for key in ("rows", "cols"):
            if key not in d:
                raise DPPError(f"{where}.{key} is required")
        blocks = None
        if "block" in d:
            blocks = tuple(_int(f"{where}.block value", b, 1) for b in _as_list(f"{where}.block", d["block"]))
        layers.append(
            Layer(
                str(d.get("name", f"layer{i}")),
                _int(f"{where}.rows", d["rows"], 1),
                _int(f"{where}.cols", d["cols"], 1),
                blocks,
                _int(f"{where}.vectors", d.get("vectors", 1), 1),
            )
        )
    names = [ly.name for ly in layers]
    if len(set(names)) != len(names):
        raise DPPError(f"layer names must be unique (got {names})")
    return tuple(layers)


def _parse_timing(raw: Any) -> tuple[bool, tuple[str, ...], float]:
    """The ``timing`` section: (enabled, flows, timeout_s)."""
    timing = raw if raw is not None else {}
    if isinstance(timing, bool):
        timing = {"enabled": timing}
    if not isinstance(timing, dict):
        raise DPPError("timing must be true/false or a mapping with enabled, flows, timeout_s")
    _unknown("timing", timing, TIMING_KEYS)
    flows = tuple(dict.fromkeys(_as_list("timing.flows", timing.get("flows", list(TIMING_DEFAULT_FLOWS)))))
    for f in flows:
        if f not in TIMING_FLOWS:
            raise DPPError(f"timing.flows values must be one of {', '.join(TIMING_FLOWS)} (got {f!r})")
    enabled = timing.get("enabled", False)
    if not isinstance(enabled, bool):
        raise DPPError(f"timing.enabled must be true or false (got {enabled!r})")
    timeout = timing.get("timeout_s", DEFAULT_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise DPPError(f"timing.timeout_s must be a number of seconds > 0 (got {timeout!r})")
    return enabled, flows, float(timeout)


def parse_config(raw: Any, source: str = "") -> SweepConfig:
    """Check a config mapping (as read from YAML/TOML) and return a :class:`SweepConfig`."""
    if not isinstance(raw, dict):
        raise DPPError(f"a sweep config must be a mapping (got {type(raw).__name__})")
    _unknown("the sweep config", raw, TOP_KEYS)
    for key in ("grid", "layers"):
        if key not in raw:
            raise DPPError(f"the sweep config needs a {key!r} section")
    hw = raw.get("hardware", {}) or {}
    if not isinstance(hw, dict):
        raise DPPError(f"hardware must be a mapping of {', '.join(HARDWARE_KEYS)}")
    _unknown("hardware", hw, HARDWARE_KEYS)
    area = raw.get("area", {}) or {}
    if isinstance(area, bool):
        area = {"enabled": area}
    if not isinstance(area, dict):
        raise DPPError("area must be true/false or a mapping with enabled, flows")
    _unknown("area", area, AREA_KEYS)
    flows = tuple(_as_list("area.flows", area.get("flows", list(AREA_FLOWS))))
    for f in flows:
        if f not in AREA_FLOWS:
            raise DPPError(f"area.flows values must be one of {', '.join(AREA_FLOWS)} (got {f!r})")
    if not isinstance(area.get("enabled", False), bool):
        raise DPPError(f"area.enabled must be true or false (got {area['enabled']!r})")
    runs = raw.get("runs", []) or []
    if not isinstance(runs, list) or not all(isinstance(r, str) for r in runs):
        raise DPPError(f"runs must be a list of folder paths (got {runs!r})")
    base = Path(source).parent if source else Path(".")
    timing_enabled, timing_flows, timing_timeout = _parse_timing(raw.get("timing"))
    return SweepConfig(
        name=str(raw.get("name", "sweep")),
        seed=_int("seed", raw.get("seed", 0)),
        batch=_int("batch", raw.get("batch", 1), 1),
        grid=_parse_grid(raw["grid"]),
        layers=_parse_layers(raw["layers"]),
        hardware={k: _int(f"hardware.{k}", v) for k, v in hw.items()},
        rtl_sample=_int("rtl_sample", raw.get("rtl_sample", 0)),
        area_enabled=bool(area.get("enabled", False)),
        area_flows=flows,
        runs=tuple((base / r) if not os.path.isabs(r) else Path(r) for r in runs),
        source=source,
        timing_enabled=timing_enabled,
        timing_flows=timing_flows,
        timing_timeout_s=timing_timeout,
    )


def load_config(path: str | os.PathLike) -> SweepConfig:
    """Read a ``.yaml``/``.yml`` or ``.toml`` sweep config file."""
    p = Path(path)
    if not p.is_file():
        raise DPPError(f"sweep config {p} not found")
    text = p.read_text("utf-8")
    try:
        if p.suffix in (".yaml", ".yml"):
            raw = yaml.safe_load(text)
        elif p.suffix == ".toml":
            raw = tomllib.loads(text)
        else:
            raise DPPError(f"sweep config must end in .yaml, .yml or .toml (got {p.name})")
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise DPPError(f"sweep config {p} cannot be parsed: {' '.join(str(exc).split())}") from None
    return parse_config(raw, source=str(p))


def point_id(point: dict[str, Any]) -> str:
    """Stable 16-hex-digit key of a point (its sorted JSON)."""
    return hashlib.sha256(json.dumps(point, sort_keys=True).encode()).hexdigest()[:16]


def expand_grid(cfg: SweepConfig) -> tuple[list[dict[str, Any]], int]:
    """All valid points (deduplicated, in grid order) and the number of invalid combinations skipped."""
    points: dict[str, dict[str, Any]] = {}
    skipped = 0
    g = cfg.grid
    for layer in cfg.layers:
        blocks = layer.blocks or g["block"]
        for arch, k, n, block, pes, wb, ab, ob, banks in itertools.product(
            g["arch"], g["k"], g["n"], blocks, g["pes"], g["weight_bits"], g["act_bits"], g["out_bits"], g["act_banks"]
        ):
            if k >= n:
                skipped += 1
                continue
            p = {
                "arch": arch,
                "k": k,
                "n": n,
                "block": block if arch_named(arch).takes_block else 1,
                "pes": pes,
                "weight_bits": wb,
                "act_bits": ab,
                "out_bits": ob,
                "layer": layer.name,
                "rows": layer.rows,
                "cols": layer.cols,
                "batch": cfg.batch,
                "vectors": layer.vectors,
                "seed": cfg.seed,
                "max_rows": cfg.hardware.get("max_rows", 0) or layer.rows,
                "max_cols": cfg.hardware.get("max_cols", 0) or layer.cols,
                "max_batch": cfg.hardware.get("max_batch", 0) or cfg.batch,
            }
            if banks_for(arch, banks):  # absent when 0, so the ids of replicated / other points stay as they were
                p["act_banks"] = banks
            points.setdefault(point_id(p), p)
    if not points:
        raise DPPError(f"the sweep grid has no valid point ({skipped} combinations skipped: need k < n)")
    return list(points.values()), skipped

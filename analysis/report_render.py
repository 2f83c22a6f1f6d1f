"""Rendering of report sections to one self-contained HTML page (PNGs inlined as base64) and Markdown.

Numbers are written for people (:func:`fmt`, :func:`si`, :func:`format_cell`): thousands separators, SI
prefixes with units (``66.6 k cycles``, ``870 nJ``, ``233 kbit``), ratios as ``8.00×``, accuracies in per cent,
``yes``/``no`` for booleans. The table files (``tables/*.csv``) keep the raw numbers; only the page formats them.
A section with nothing to show is left out of the page, with one line saying what would fill it.
"""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

MAX_TABLE_ROWS = 60
OPEN_TABLE_ROWS = 16  #: longer tables start folded on the page (one click opens them)
SI_PREFIXES = (
    (1e12, "T"),
    (1e9, "G"),
    (1e6, "M"),
    (1e3, "k"),
    (1.0, ""),
    (1e-3, "m"),
    (1e-6, "µ"),
    (1e-9, "n"),
    (1e-12, "p"),
    (1e-15, "f"),
)
#: written right after the prefix (nJ); words get a space (k cycles)
SYMBOL_UNITS = ("J", "bit", "B", "s", "W", "Hz", "J·s")
#: columns that are parameters of a design, not results: folded into the caption when one value fills the table
PARAM_COLUMNS = (
    "model",
    "method",
    "granularity",
    "arch",
    "array",
    "layer",
    "kind",
    "rows",
    "cols",
    "k",
    "n",
    "block",
    "pes",
    "weight_bits",
    "act_bits",
    "out_bits",
    "acc_bits",
    "batch",
    "vectors",
    "layers",
    "act_banks",
    "bit_exact",
    "counters_match",
)
ARCH_LABELS = {"kofn": "k-of-n", "csr": "CSR"}  #: an ``arch`` cell on the page (ids such as csr_banked8 stay)
WIDTH_COLUMNS = ("weight_bits", "act_bits", "out_bits", "acc_bits", "bits")  #: bit widths, not bit counts
TITLES = {
    "kofn_speedup": "k-of-n speed-up",
    "kofn_energy_saving": "k-of-n energy saving",
    "area_ice40_luts": "area (ice40 LUTs)",
    "area_generic_cells": "area (cells)",
    "area_generic_transistors": "area (transistors)",
    "rtl_accuracy": "accuracy (RTL)",
    "torch_accuracy": "accuracy (torch)",
    "test_accuracy": "test-set accuracy",
    "pes": "PEs",
    "arch": "array",
    "array": "runs on",
    "k": "k",
    "n": "n",
    "fmax_mhz": "Fmax (MHz)",
    "kofn_time_speedup": "k-of-n time speed-up",
    "edp_js": "energy x delay",
    "images_per_s": "images / s",
    "inferences_per_s": "inferences / s",
    "energy_per_image_j": "energy / image",
    "energy_per_inference_j": "energy / inference",
    "time_per_image_s": "time / image",
    "time_per_inference_s": "time / inference",
}


def fmt(v: Any) -> str:
    """A plain number for people: integers with thousands separators, other numbers to 4 significant digits
    (separators from 10,000 up), booleans as yes / no, missing values as an en dash."""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isnan(f):
            return "–"
        if math.isinf(f):
            return "∞" if f > 0 else "-∞"
        if f.is_integer() and abs(f) < 1e15 or abs(f) >= 1e4:
            return f"{round(f):,}"
        return f"{f:.4g}"
    if v is None or v is pd.NA:
        return "–"
    return str(v)


def si(v: Any, unit: str = "", digits: int = 3) -> str:
    """``v`` with an SI prefix and ``unit`` to ``digits`` significant digits: ``si(66600, "cycles")`` is
    ``66.6 k cycles``, ``si(8.7e-7, "J")`` is ``870 nJ``, ``si(233310, "bit")`` is ``233 kbit``."""
    if v is None or v is pd.NA:
        return "–"
    f = float(v)
    if math.isnan(f):
        return "–"
    sep = "" if unit in SYMBOL_UNITS else " "
    if f == 0 or math.isinf(f):
        return f"{fmt(f)} {unit}".rstrip()
    for i, (scale, prefix) in enumerate(SI_PREFIXES):
        if abs(f) >= scale or i == len(SI_PREFIXES) - 1:
            m = float(f"{f / scale:.{digits}g}")
            if abs(m) >= 1000 and i > 0:  # rounding carried into the next prefix (999.7 k -> 1 M)
                scale, prefix = SI_PREFIXES[i - 1]
                m = float(f"{f / scale:.{digits}g}")
            num = f"{m:.{digits}g}"
            if "e" in num:
                num = f"{m:.0f}"
            if not prefix:
                return f"{num} {unit}".rstrip()
            return f"{num} {prefix}{sep}{unit}".rstrip()
    raise AssertionError("unreachable")


def energy(pj: Any) -> str:
    """Energy given in pJ, with an SI prefix: ``energy(8.7e5)`` is ``870 nJ``."""
    if pj is None or pj is pd.NA or (isinstance(pj, float) and math.isnan(pj)):
        return "–"
    return si(float(pj) * 1e-12, "J")


def ratio(r: Any) -> str:
    """A ratio such as a speed-up: ``8.00×`` (three significant digits from 10 up: ``12.3×``)."""
    if r is None or r is pd.NA or (isinstance(r, float) and math.isnan(r)):
        return "–"
    r = float(r)
    return f"{r:.3g}×" if abs(r) >= 10 else f"{r:.2f}×"


def percent(v: Any) -> str:
    """A fraction in [0, 1] as per cent: ``percent(0.9172)`` is ``91.72 %``."""
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{fmt(round(float(v) * 100, 2))} %"


def column_kind(name: str) -> str:
    """How a column's values are written: ``ratio``, ``energy`` (pJ), ``cycles``, ``bits`` (a count of bits),
    ``accuracy`` (a fraction shown in per cent), ``seconds`` / ``joules`` / ``edp`` (J·s, SI prefixes) or
    ``plain``."""
    n = str(name).lower()
    if n.startswith(
        ("speedup", "energy_saving", "kofn_speedup", "kofn_energy_saving", "kofn_time_speedup")
    ) or n.endswith("_vs_kofn"):
        return "ratio"
    if n.startswith("time_per_") and n.endswith("_s"):
        return "seconds"
    if n.endswith("_js"):
        return "edp"
    if n.startswith("energy_per_") and n.endswith("_j"):
        return "joules"
    if re.search(r"(^|_)pj($|_)", n):
        return "energy"
    if "cycles" in n:
        return "cycles"
    if n.endswith("accuracy"):
        return "accuracy"
    if n in WIDTH_COLUMNS or "per_kept" in n or "per_dense" in n:
        return "plain"
    if n.endswith(("_bits", "bits_read", "bits_written")) or "_bits_" in n:
        return "bits"
    return "plain"


def format_cell(column: str, v: Any) -> str:
    """One table cell of ``column`` as it appears on the page (see :func:`column_kind`)."""
    if column in ("arch", "array") and isinstance(v, str):
        return ARCH_LABELS.get(v, v)
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        return fmt(v)
    kind = column_kind(column)
    if kind == "ratio":
        return ratio(v)
    if kind == "energy":
        return energy(v)
    if kind == "cycles":
        return si(v, "cycles")
    if kind == "bits":
        return si(v, "bit")
    if kind == "accuracy":
        return percent(v)
    if kind in ("seconds", "joules", "edp"):
        return si(v, {"seconds": "s", "joules": "J", "edp": "J·s"}[kind])
    return fmt(v)


def column_title(name: str) -> str:
    """A column's header on the page: ``cycles_per_image`` → ``cycles / image``, ``speedup_vs_dense`` →
    ``speed-up vs dense`` (the unit is in the cells: ``_pj`` is dropped)."""
    name = str(name)
    if name in TITLES:
        return TITLES[name]
    t = re.sub(r"_pj(?=_|$)", "", name)
    t = t.replace("_per_", " / ").replace("_vs_", " vs ").replace("speedup", "speed-up").replace("kofn", "k-of-n")
    parts = re.split(r"(csr_banked\d+)", t)  # an architecture id keeps its spelling
    return "".join(p if p.startswith("csr_banked") else p.replace("_", " ") for p in parts).strip()


def display_table(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The page's view of a table: every cell formatted, headers for people, and parameter columns holding
    one value in every row moved into a note (``same in every row: weight bits 8, act bits 8``)."""
    view, note = df.head(MAX_TABLE_ROWS), ""
    if len(df) > MAX_TABLE_ROWS:
        note = f"first {MAX_TABLE_ROWS} of {len(df)} rows; all in tables/"
    same: list[str] = []
    if len(df) > 1:
        for c in df.columns:
            if c in PARAM_COLUMNS and df[c].nunique(dropna=False) == 1 and len(df.columns) - len(same) > 2:
                same.append(c)
    if same:
        folded = ", ".join(f"{column_title(c)} {format_cell(c, df[c].iloc[0])}" for c in same)
        note = "; ".join(x for x in (f"same in every row: {folded}", note) if x)
    cols = [c for c in view.columns if c not in same]
    out = pd.DataFrame(
        [[format_cell(c, v) for c, v in zip(cols, row)] for row in view[cols].itertuples(index=False)],
        columns=[column_title(c) for c in cols],
    )
    return out, note


@dataclass
class Figure:
    name: str
    png: bytes
    caption: str


@dataclass
class Section:
    """One report section: prose, figures, tables, where its data came from, or (``no_data``) why it is left
    out and what would fill it."""

    title: str
    anchor: str
    text: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    tables: list[tuple[str, str, pd.DataFrame]] = field(default_factory=list)  # (name, caption, table)
    provenance: list[str] = field(default_factory=list)
    no_data: str | None = None
    lead: bool = False  #: the answer the page opens with: its table before its prose, in larger type
    page_columns: dict[str, list[str]] = field(default_factory=dict)  #: table name → the columns the page shows


def page_view(s: Section, name: str, df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The columns of table ``name`` the page shows (all, unless ``s.page_columns`` narrows it) and a note
    pointing at the full table when some are left to ``tables/<name>.csv``."""
    cols = [c for c in s.page_columns.get(name, df.columns) if c in df.columns]
    if len(cols) == len(df.columns):
        return df, ""
    return df[cols], f"more columns in tables/{name}.csv"


def shown(sections: list[Section]) -> tuple[list[Section], list[Section]]:
    """(sections with something to show, sections left out for lack of data)."""
    return [s for s in sections if not s.no_data], [s for s in sections if s.no_data]


def left_out_line(s: Section) -> str:
    """The one line a left-out section leaves on the page."""
    return f"{s.title}: {s.no_data}"


def _md_table(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "| " + " | ".join("---" for _ in df.columns) + " |"
    body = ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def _html_table(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in df.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _inline_code(text: str) -> str:
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


CSS = """body{font-family:sans-serif;max-width:1340px;margin:1.2em auto;padding:0 1em;color:#222;line-height:1.35}
h1{margin:.2em 0}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:12px;margin:.3em 0 1.2em}td,th{border:1px solid #ccc;padding:2px 6px}
th{background:#eee;font-weight:600}td{text-align:right;white-space:nowrap}td:first-child{text-align:left}
.scroll{overflow-x:auto}figure{margin:1em 0;display:inline-block;vertical-align:top}
figcaption{font-size:13px;color:#444;max-width:760px}h4{margin:.8em 0 .2em;font-size:14px}
.note{font-weight:normal;color:#555}
.meta,.prov,.left{font-size:12px;color:#555}.lead table{font-size:15px}.lead td,.lead th{padding:4px 10px}
.lead p{font-size:17px}.toc{font-size:14px;columns:2}code{background:#f4f4f4}img{max-width:100%}
summary{cursor:pointer}summary h4{display:inline}"""


def _html_tables(s: Section) -> list[str]:
    out = []
    for name, caption, df in s.tables:
        df, more = page_view(s, name, df)
        view, note = display_table(df)
        note = "; ".join(x for x in (note, more) if x)
        note_html = f" <span class='note'>({html.escape(note)})</span>" if note else ""
        table = f"<div class='scroll'>{_html_table(view)}</div>"
        if len(df) > OPEN_TABLE_ROWS:
            out.append(
                f"<details><summary><h4>{_inline_code(caption)}{note_html} <span class='note'>[{len(df)} "
                f"rows: click to open]</span></h4></summary>{table}</details>"
            )
        else:
            out.append(f"<h4>{_inline_code(caption)}{note_html}</h4>{table}")
    return out


def render_html(title: str, sections: list[Section], header: list[str]) -> str:
    """The page: title, the lead section (the answer), contents, every section with data, the left-out lines."""
    present, left = shown(sections)
    out = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"
    ]
    out.append("<p class='meta'>" + "<br>".join(_inline_code(h) for h in header) + "</p>")
    toc = (
        "<ul class='toc'>"
        + "".join(f"<li><a href='#{s.anchor}'>{html.escape(s.title)}</a></li>" for s in present if not s.lead)
        + "</ul>"
    )
    if left:
        toc += (
            "<p class='left'>Left out (nothing to show yet):<br>"
            + "<br>".join(_inline_code(left_out_line(s)) for s in left)
            + "</p>"
        )
    placed_toc = False
    for s in present:
        if not s.lead and not placed_toc:
            out.append(toc)
            placed_toc = True
        out.append(f"<div class='{'lead' if s.lead else 'section'}'><h2 id='{s.anchor}'>{html.escape(s.title)}</h2>")
        if s.lead:  # the answer: table first, then the sentences computed from it
            out += _html_tables(s)
            out += [f"<p>{_inline_code(t)}</p>" for t in s.text]
        else:
            out += [f"<p>{_inline_code(t)}</p>" for t in s.text]
        for f in s.figures:
            b64 = base64.b64encode(f.png).decode("ascii")
            out.append(
                f"<figure><img alt='{html.escape(f.name)}' src='data:image/png;base64,{b64}'>"
                f"<figcaption>{_inline_code(f.caption)}</figcaption></figure>"
            )
        if not s.lead:
            out += _html_tables(s)
        if s.provenance:
            out.append("<div class='prov'>" + "<br>".join(_inline_code(p) for p in s.provenance) + "</div>")
        out.append("</div>")
    if not placed_toc:
        out.append(toc)
    out.append("</body></html>")
    return "\n".join(out)


def render_markdown(title: str, sections: list[Section], header: list[str]) -> str:
    """The same report in Markdown (figures linked from ``figures/``)."""
    present, left = shown(sections)
    out = [f"# {title}", "", *[h + "  " for h in header], ""]
    for s in present:
        out += [f"## {s.title}", ""]
        out += [t + "\n" for t in s.text]
        for f in s.figures:
            out += [f"![{f.name}](figures/{f.name}.png)", "", f"*{f.caption}*", ""]
        for name, caption, df in s.tables:
            df, more = page_view(s, name, df)
            view, note = display_table(df)
            note = "; ".join(x for x in (note, more) if x)
            out += [f"**{caption}**" + (f" ({note})" if note else ""), "", _md_table(view), ""]
        out += [f"> {p}  " for p in s.provenance] + ([""] if s.provenance else [])
    if left:
        out += ["## Left out (nothing to show yet)", "", *[f"- {left_out_line(s)}" for s in left], ""]
    return "\n".join(out)

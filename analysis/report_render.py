"""Rendering of report sections to one self-contained HTML page (PNGs inlined as base64) and Markdown."""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

MAX_TABLE_ROWS = 60


def fmt(v: Any) -> str:
    """How every number appears in the report: integers in full, other numbers to 4 significant digits."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isnan(f):
            return "–"
        return str(int(f)) if f.is_integer() and abs(f) < 1e15 else f"{f:.4g}"
    if v is None or v is pd.NA:
        return "–"
    return str(v)


@dataclass
class Figure:
    name: str
    png: bytes
    caption: str


@dataclass
class Section:
    """One report section: prose, figures, tables, where its data came from, or why there is none."""

    title: str
    anchor: str
    text: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    tables: list[tuple[str, str, pd.DataFrame]] = field(default_factory=list)  # (name, caption, table)
    provenance: list[str] = field(default_factory=list)
    no_data: str | None = None


def _table_rows(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    note = f" (first {MAX_TABLE_ROWS} of {len(df)} rows; all in tables/)" if len(df) > MAX_TABLE_ROWS else ""
    return df.head(MAX_TABLE_ROWS), note


def _md_table(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "| " + " | ".join("---" for _ in df.columns) + " |"
    body = ["| " + " | ".join(fmt(v).replace("|", "\\|") for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def _html_table(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _inline_code(text: str) -> str:
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


CSS = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:12px;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 6px}
th{background:#eee}.scroll{overflow-x:auto}td{text-align:right}figure{margin:1em 0}figcaption{font-size:13px;color:#444}
.nodata{color:#a00;font-style:italic}.prov{font-size:12px;color:#555}code{background:#f4f4f4}"""


def render_html(title: str, sections: list[Section], header: list[str]) -> str:
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    out += [f"<p>{_inline_code(h)}</p>" for h in header]
    out.append("<ul>" + "".join(f"<li><a href='#{s.anchor}'>{html.escape(s.title)}</a></li>" for s in sections)
               + "</ul>")
    for s in sections:
        out.append(f"<h2 id='{s.anchor}'>{html.escape(s.title)}</h2>")
        if s.no_data:
            out.append(f"<p class='nodata'>{_inline_code(s.no_data)}</p>")
        out += [f"<p>{_inline_code(t)}</p>" for t in s.text]
        for f in s.figures:
            b64 = base64.b64encode(f.png).decode("ascii")
            out.append(f"<figure><img alt='{html.escape(f.name)}' src='data:image/png;base64,{b64}'>"
                       f"<figcaption>{_inline_code(f.caption)}</figcaption></figure>")
        for name, caption, df in s.tables:
            view, note = _table_rows(df)
            out.append(f"<h4>{html.escape(caption)}{html.escape(note)}</h4>"
                       f"<div class='scroll'>{_html_table(view)}</div>")
        if s.provenance:
            out.append("<div class='prov'>" + "<br>".join(_inline_code(p) for p in s.provenance) + "</div>")
    out.append("</body></html>")
    return "\n".join(out)


def render_markdown(title: str, sections: list[Section], header: list[str]) -> str:
    out = [f"# {title}", "", *[h + "  " for h in header], ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        if s.no_data:
            out += [f"*{s.no_data}*", ""]
        out += [t + "\n" for t in s.text]
        for f in s.figures:
            out += [f"![{f.name}](figures/{f.name}.png)", "", f"*{f.caption}*", ""]
        for name, caption, df in s.tables:
            view, note = _table_rows(df)
            out += [f"**{caption}**{note}", "", _md_table(view), ""]
        out += [f"> {p}  " for p in s.provenance] + ([""] if s.provenance else [])
    return "\n".join(out)

"""One self-contained HTML page: the summary tables and every figure embedded as base64 PNG."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import polars as pl


def _table(df: pl.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in df.columns)
    rows = []
    for row in df.iter_rows():
        cells = "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row)
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def write_html(path: Path, title: str, source: str, tables: dict[str, pl.DataFrame], figures: list[Path]) -> Path:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse;"
        "margin:1em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}img{max-width:100%}</style>",
        f"</head><body><h1>{html.escape(title)}</h1><p>source: {html.escape(source)}</p>",
    ]
    for name, df in tables.items():
        parts.append(f"<h2>{html.escape(name)}</h2>{_table(df)}")
    for fig in figures:
        if fig.suffix == ".png":
            data = base64.b64encode(fig.read_bytes()).decode()
            parts.append(f"<h2>{html.escape(fig.stem)}</h2><img alt='{html.escape(fig.stem)}' src='data:image/png;base64,{data}'>")
        else:
            parts.append(f"<h2>{html.escape(fig.stem)}</h2><p>see {html.escape(fig.name)}</p>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path

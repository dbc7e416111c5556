"""Tables as the book shows them: numbers to significant digits, no pandas index, fitted to the text column.

:func:`show` turns a pandas DataFrame, a :class:`pnc.LayerReport` or a list of row dicts into a :class:`Table` that
displays as HTML on the site (``table.pnc-table`` in a ``.pnc-scroll`` box: a table wider than a phone's column
scrolls inside it, by design) and as aligned text elsewhere (the PDF edition, whose builder reads a notebook's
``text/latex`` output as mathematics). Rounding to
decimals (``frame.round(4)``) prints a training loss of ``3e-9`` as ``0.0000``; significant digits keep it.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Table", "format_number", "show"]

_SCROLL_COLUMNS = 6
"""Tables with more columns than this are *wide*: a smaller type size on the site (``.pnc-wide``)."""


def format_number(value: Any, digits: int = 4) -> str:
    """``value`` to ``digits`` significant digits (``3e-09``, ``0.2846``, ``13.52``), integers in full, missing as —."""
    if value is None:
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "—"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        if v == 0.0:
            return "0"
        if v.is_integer() and abs(v) < 10**digits:
            return str(int(v))
        text = f"{v:.{digits}g}"
        if "e" in text:
            mantissa, exponent = text.split("e")
            text = f"{mantissa}e{int(exponent)}"
        return text
    return str(value)


@dataclass(frozen=True)
class Table:
    """Formatted cells of a table; ``numeric[j]`` says whether column ``j`` holds numbers (right-aligned)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]
    scroll: bool
    caption: str = ""

    def _repr_html_(self) -> str:
        def cell(tag: str, text: str, j: int) -> str:
            align = ' class="pnc-num"' if self.numeric[j] else ""
            return f"<{tag}{align}>{html.escape(text)}</{tag}>"

        head = "".join(cell("th", c, j) for j, c in enumerate(self.columns))
        body = "".join("<tr>" + "".join(cell("td", v, j) for j, v in enumerate(r)) + "</tr>" for r in self.rows)
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        table = f'<table class="pnc-table table">{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        # always in a scroller: a table that fits a laptop's column may still be wider than a phone's
        return f'<div class="pnc-table-wrap pnc-scroll{" pnc-wide" if self.scroll else ""}">{table}</div>'

    def __repr__(self) -> str:
        widths = [max(len(c), *(len(r[j]) for r in self.rows)) if self.rows else len(c)
                  for j, c in enumerate(self.columns)]

        def line(values: Sequence[str]) -> str:
            return "  ".join(v.rjust(w) if n else v.ljust(w)
                             for v, w, n in zip(values, widths, self.numeric, strict=True)).rstrip()

        return "\n".join([line(self.columns), *(line(r) for r in self.rows)])


def _records(data: Any, index: bool) -> tuple[list[str], list[list[Any]]]:
    if hasattr(data, "to_pandas") and hasattr(data, "columns") and hasattr(data, "rows"):  # a LayerReport
        columns = [c for c in data.columns if c != "note" or any(r.get("note") for r in data.rows)]
        return columns, [[r.get(c) for c in columns] for r in data.rows]
    if hasattr(data, "to_dict") and hasattr(data, "index") and hasattr(data, "columns"):  # a DataFrame
        columns = [str(c) for c in data.columns]
        values = data.to_numpy(dtype=object).tolist()
        if index:
            names = [str(n) if n is not None else "" for n in data.index.names]
            idx = [list(i) if isinstance(i, tuple) else [i] for i in data.index]
            return names + columns, [i + v for i, v in zip(idx, values, strict=True)]
        return columns, values
    if isinstance(data, Sequence) and data and all(isinstance(r, Mapping) for r in data):
        columns = list(dict.fromkeys(k for r in data for k in r))
        return [str(c) for c in columns], [[r.get(c) for c in columns] for r in data]
    raise ValueError(f"show needs a pandas DataFrame, a pnc.LayerReport or a non-empty list of dicts, got "
                     f"{type(data).__name__}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def show(data: Any, digits: int = 4, *, index: bool = False, scroll: bool | None = None, caption: str = "") -> Table:
    """``data`` as a :class:`Table` with numbers to ``digits`` significant digits.

    ``index=True`` keeps a DataFrame's index as leading columns (by default it is dropped: a row number is not
    data). ``scroll`` marks the table as wide, set in a smaller type (default: when it has more than six
    columns); every table scrolls inside its box where the screen is narrower than it.
    """
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= 17:
        raise ValueError(f"digits must be an integer from 1 to 17, got {digits!r}")
    columns, values = _records(data, index)
    if not values:
        raise ValueError("show needs at least one row")
    numeric = tuple(all(_is_number(r[j]) or r[j] is None for r in values) and any(_is_number(r[j]) for r in values)
                    for j in range(len(columns)))
    rows = tuple(tuple(format_number(v, digits) for v in r) for r in values)
    wide = len(columns) > _SCROLL_COLUMNS if scroll is None else bool(scroll)
    return Table(columns=tuple(columns), rows=rows, numeric=numeric, scroll=wide, caption=caption)

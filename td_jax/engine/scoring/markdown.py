"""Markdown pipe tables from data frames, for the reports of every suite."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def markdown_table(frame: pd.DataFrame, floatfmt: str = ".3g") -> str:
    """A pipe table of ``frame``'s columns and rows, floats formatted with ``floatfmt``
    (no tabulate dependency)."""
    cols = list(frame.columns)

    def cell(v: Any) -> str:
        if isinstance(v, float | np.floating):
            return format(float(v), floatfmt)
        return str(v)

    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines)

"""Small helpers shared by the asset modules: previews, figures and the data source."""

import base64
from pathlib import Path

import dagster as dg
import pandas as pd

from nasa_autoscale.warehouse import SCHEMA

PREVIEW_ROWS = 10


def preview(df: pd.DataFrame, rows: int = PREVIEW_ROWS) -> dg.MetadataValue:
    return dg.MetadataValue.md(df.head(rows).to_markdown(index=False))


def figure(path: Path) -> dg.MetadataValue:
    """A PNG shown inline in the Dagster UI."""
    encoded = base64.b64encode(path.read_bytes()).decode()
    return dg.MetadataValue.md(f"![{path.name}](data:image/png;base64,{encoded})")


def data_source(con) -> str:
    """'real', 'replica' (or both joined with '+') for the files behind the warehouse."""
    rows = con.execute(f"SELECT DISTINCT data_source FROM {SCHEMA}.source_files").fetchall()
    return "+".join(sorted(r[0] for r in rows)) or "none"

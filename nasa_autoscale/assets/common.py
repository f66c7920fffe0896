"""Small helpers shared by the asset modules: previews and figures in the metadata."""

import base64
from pathlib import Path

import dagster as dg
import pandas as pd

PREVIEW_ROWS = 10


def preview(df: pd.DataFrame, rows: int = PREVIEW_ROWS) -> dg.MetadataValue:
    return dg.MetadataValue.md(df.head(rows).to_markdown(index=False))


def figure(path: Path) -> dg.MetadataValue:
    """A PNG shown inline in the Dagster UI."""
    encoded = base64.b64encode(path.read_bytes()).decode()
    return dg.MetadataValue.md(f"![{path.name}](data:image/png;base64,{encoded})")

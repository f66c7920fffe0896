"""Small helpers shared by the asset modules: previews and figures in the metadata."""

import base64
from pathlib import Path

import dagster as dg
import pandas as pd

from nasa_autoscale.partitions import key

PREVIEW_ROWS = 10


def preview(df: pd.DataFrame, rows: int = PREVIEW_ROWS) -> dg.MetadataValue:
    return dg.MetadataValue.md(df.head(rows).to_markdown(index=False))


def figure(path: Path) -> dg.MetadataValue:
    """A PNG shown inline in the Dagster UI."""
    encoded = base64.b64encode(path.read_bytes()).decode()
    return dg.MetadataValue.md(f"![{path.name}](data:image/png;base64,{encoded})")


def history_too_short(
    context, warehouse, tables: dict[str, list[str]], source: str, reason: str, **metadata
) -> list[dg.MaterializeResult]:
    """What a step writes when the history is too short for it: each of its tables empty (so
    nothing of an earlier, longer history stays behind) and a result per table saying why."""
    from nasa_autoscale.warehouse import empty_frame, replace_table

    context.log.warning(f"skipped: {reason}")
    with warehouse.connect() as con:
        for table, columns in tables.items():
            replace_table(con, table, empty_frame(columns))
    return [
        dg.MaterializeResult(
            asset_key=key(table),
            metadata={"data_source": source, "dagster/row_count": 0, "skipped": reason, **metadata},
        )
        for table in tables
    ]

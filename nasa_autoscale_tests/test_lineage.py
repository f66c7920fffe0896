"""Lineage: every asset reads only the tables of the assets it declares upstream, and the
settings' windows reach every report. The whole graph runs asset by asset on a small site's
combined log (not NASA's) with non-default test and validation days, each step's warehouse reads
captured from the SQL it sends."""

from __future__ import annotations

import datetime as dt
import re
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from nasa_autoscale import warehouse
from nasa_autoscale.definitions import defs
from nasa_autoscale.resources import MLflowResource, SettingsResource, WarehouseResource
from nasa_autoscale.settings import DEFAULT_FLEETS_PATH

pytestmark = pytest.mark.slow

READ = re.compile(rf"(?<!DELETE\s)\b(?:FROM|JOIN)\s+{warehouse.SCHEMA}\.(\w+)", re.IGNORECASE)
# Where the data came from (data_source) and its zone: provenance of the requests, readable by
# every asset downstream of them, not only by their children.
PROVENANCE = {"source_files", "site"}
READS: set[str] = set()  # what the current step read


def tables_read(sql: str) -> set[str]:
    return set(READ.findall(sql))


class RecordingConnection:
    """A DuckDB connection that notes the warehouse tables each statement reads."""

    def __init__(self, con):
        self._con = con

    def execute(self, sql, *args, **kwargs):
        READS.update(tables_read(sql))
        return self._con.execute(sql, *args, **kwargs)

    def sql(self, sql, *args, **kwargs):
        READS.update(tables_read(sql))
        return self._con.sql(sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._con, name)


class RecordingWarehouse(WarehouseResource):
    @contextmanager
    def connect(self, read_only: bool = False):
        with super().connect(read_only) as con:
            yield RecordingConnection(con)


def test_the_reader_finds_reads_and_not_writes():
    assert tables_read("SELECT * FROM nasa.a JOIN nasa.b USING (x)") == {"a", "b"}
    assert tables_read("DELETE FROM nasa.c WHERE day = ?") == set()
    assert tables_read("INSERT INTO nasa.d BY NAME SELECT * FROM _rows") == set()


def undeclared_reads(graph, node_keys: set, read: set[str]) -> set[str]:
    """The tables a step read that neither it nor its declared upstream assets write."""
    names = {k.to_user_string() for k in node_keys}
    parents = {p.to_user_string() for k in node_keys for p in graph.get(k).parent_keys}
    ancestors = {a.to_user_string() for k in node_keys for a in graph.upstream_key_iterator(k)}
    allowed = {t for t, producer in warehouse.PRODUCERS.items() if producer in names | parents} | (
        PROVENANCE if "requests" in ancestors | names else set()
    )
    return read - allowed


def test_an_undeclared_read_is_found():
    @dg.asset
    def sneaky():  # as if it read traffic_5m, declaring nothing
        pass

    graph = dg.Definitions(assets=[sneaky]).resolve_asset_graph()
    assert undeclared_reads(graph, {dg.AssetKey("sneaky")}, {"traffic_5m"}) == {"traffic_5m"}
    assert undeclared_reads(graph, {dg.AssetKey("sneaky")}, set()) == set()


FIRST, DAYS = dt.date(1995, 8, 1), 22  # inside the definitions' partitions; not NASA's traffic


def site_log(path: Path) -> None:
    """A small shop's combined log in UTC: evenings busy, weekends quiet, a morning unlogged."""
    rng = np.random.default_rng(7)
    lines = []
    for d in range(DAYS):
        day = FIRST + dt.timedelta(days=d)
        for slot in range(288):
            hour = slot / 12
            level = 6 + 10 * np.exp(-(((hour - 20) / 3) ** 2)) * (0.5 if day.weekday() >= 5 else 1)
            if d == 9 and 6 <= hour < 10:
                continue  # no log: missing, not zero
            for second in sorted(rng.integers(0, 300, rng.poisson(level))):
                at = dt.datetime.combine(day, dt.time()) + dt.timedelta(
                    seconds=slot * 300 + int(second)
                )
                lines.append(
                    f"10.1.{second % 7}.{slot % 200} - - [{at:%d/%b/%Y:%H:%M:%S} +0000] "
                    f'"GET /shop/{slot % 13} HTTP/1.1" 200 {512 + slot} "-" "Mozilla/5.0"'
                )
    path.write_text("\n".join(lines) + "\n")


def materializable() -> list[dg.AssetsDefinition]:
    """The graph's assets a run materializes (not the live path's external ones: the follower
    writes those, and its reads are its own tests')."""
    return [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]


def toposorted_nodes(graph):
    """Each asset definition's keys (a multi-asset once), parents before children."""
    nodes, done = [], set()
    pending = [frozenset(a.keys) for a in materializable()]
    while pending:
        for keys in pending:
            parents = {p for k in keys for p in graph.get(k).parent_keys} - set(keys)
            if parents <= done:
                nodes.append(keys)
                done |= keys
                pending.remove(keys)
                break
        else:
            raise AssertionError(f"a cycle among {pending}")
    return nodes


def test_every_asset_reads_only_what_it_declares_and_the_windows_follow_the_settings(tmp_path):
    from nasa_autoscale.ingest.load import ingest_days
    from nasa_autoscale.ingest.traffic import write_traffic

    raw = tmp_path / "raw"
    raw.mkdir()
    site_log(raw / "access.log")
    path = tmp_path / "site.duckdb"
    last = FIRST + dt.timedelta(days=DAYS - 1)
    con = warehouse.connect(path)
    ingest_days(con, [raw / "access.log"], FIRST, last, "real")
    write_traffic(con, FIRST, last)
    con.close()
    reports = tmp_path / "reports"
    fleets = tmp_path / "fleets.toml"  # NASA's two and a fleet of pods that boot in a minute
    fleets.write_text(
        DEFAULT_FLEETS_PATH.read_text()
        + '\n[[fleet]]\nname = "pods"\nrequests_per_second = 0.1\nmin_servers = 1\n'
        "max_servers = 40\nprice_per_hour = 0.034\nboot_s = 60\n"
        'scale_in_stabilization_s = 300\nbilling = "second"\n'
    )
    resources = {
        "warehouse": RecordingWarehouse(duckdb_path=str(path)),
        "settings": SettingsResource.from_env(
            raw_dir=raw,
            landing_dir=tmp_path / "landing",
            duckdb_path=path,
            reports_dir=reports,
            start_date=FIRST.isoformat(),
            end_date=last.isoformat(),
            timezone="auto",
            events_path=None,
            test_days=3,  # not the defaults (9 and 7): every window must come from here
            validation_days=2,
            forecast_granularities=("5m",),
            fleets_path=fleets,
        ),
        "mlflow": MLflowResource(
            tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
            artifact_dir=str(tmp_path / "mlruns"),
        ),
    }
    graph = defs.resolve_asset_graph()
    assets = materializable()
    checked, problems = [], {}
    for keys in toposorted_nodes(graph):
        partitioned = graph.get(next(iter(keys))).partitions_def is not None
        READS.clear()
        result = dg.materialize(
            assets,
            selection=list(keys),
            resources=resources,
            partition_key=last.isoformat() if partitioned else None,
            raise_on_error=True,
        )
        assert result.success
        name = ", ".join(sorted(k.to_user_string() for k in keys))
        extra = undeclared_reads(graph, set(keys), set(READS))
        if extra:
            problems[name] = sorted(extra)
        checked.append(name)
    assert not problems, f"tables read but not declared upstream: {problems}"
    assert len(checked) == len(assets)
    # the settings' windows, in the forecasting report, the cost report and the robustness table
    windows = "test 1995-08-20 .. 1995-08-22 (the last 3 whole days)"
    for report in ("benchmark.md", "cost_report.md", "robustness.md"):
        text = (reports / report).read_text()
        assert windows in text and "validation 1995-08-18 .. 1995-08-19, 2 days" in text, report
    # another site: no NASA yardsticks in its reports
    benchmark = (reports / "benchmark.md").read_text()
    assert "original project" not in benchmark and "target RMSE" not in benchmark
    assert "target <=" not in (reports / "cost_report.md").read_text()
    con = warehouse.connect(path, read_only=True)
    decided = con.execute(
        "SELECT setting, min(bucket_start), count(DISTINCT bucket_start) "
        "FROM nasa.scaling_decisions GROUP BY setting ORDER BY setting"
    ).fetchall()
    planned = con.execute(
        "SELECT setting, count(*) FROM nasa.provisioning_plan GROUP BY setting ORDER BY setting"
    ).fetchall()
    con.close()
    # NASA's fleets decide every 5 minutes; the pods (no decision_interval_s) every minute
    day = dt.datetime(1995, 8, 20)
    assert decided == [
        ("default", day, 3 * 288),
        ("pods", day, 3 * 1440),
        ("realistic", day, 3 * 288),
    ]
    assert dict(planned) == {"default": 288, "pods": 1440, "realistic": 288}
    # every fleet of the profiles is swept, recommended for and planned
    con = warehouse.connect(path, read_only=True)
    for table in ("cost_report", "recommendation", "provisioning_plan"):
        found = {r[0] for r in con.execute(f"SELECT DISTINCT setting FROM nasa.{table}").fetchall()}
        assert found == {"default", "realistic", "pods"}, table
    pods = con.execute(
        "SELECT params FROM nasa.cost_report WHERE setting = 'pods' LIMIT 1"
    ).fetchall()[0][0]
    con.close()
    assert '"capacity": 6.0' in pods and '"minutes": 1' in pods  # 0.1 a second, each minute

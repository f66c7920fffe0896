"""make's readable progress: one line per finished step, the assets' messages, failures in full."""

import io
import sys

from nasa_autoscale import progress

RUN = "analysis_job - 3df843c1-ff7b-4604-a68c-8642e80332bb"
LINES = [
    f"2026-11-28 06:35:52 +0000 - dagster - DEBUG - {RUN} - 13314 - forecasting - STEP_START - "
    'Started execution of step "forecasting".',
    f"2026-11-28 06:35:53 +0000 - dagster - INFO - {RUN} - forecasting - 5m prophet: 2.4 s",
    f"2026-11-28 06:35:54 +0000 - dagster - DEBUG - {RUN} - 13314 - forecasting - STEP_SUCCESS - "
    'Finished execution of step "forecasting" in 1m18s.',
    f"2026-11-28 06:35:55 +0000 - dagster - ERROR - {RUN} - 13315 - scaling - STEP_FAILURE - "
    'Execution of step "scaling" failed.',
    "ValueError: cost_report has no selected policy",
    "/x/click/core.py:911: SupersessionWarning: Function `x` is superseded",
    "07:02:56 - cmdstanpy - INFO - Chain [1] start processing",
]


def test_progress_shows_steps_messages_and_failures_and_keeps_the_whole_log(tmp_path, monkeypatch):
    shown = [progress.condense(line) for line in LINES]
    assert shown[0] is None  # DEBUG noise
    assert shown[1] == "        forecasting: 5m prophet: 2.4 s"
    assert shown[2] == "  done  forecasting (1m18s)"
    assert shown[3].startswith("  FAIL  scaling: STEP_FAILURE")
    assert shown[4] == "ValueError: cost_report has no selected policy"  # a traceback line
    assert shown[5] is None and shown[6] is None
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(LINES) + "\n"))
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    assert progress.main([str(tmp_path / "run.log")]) == 0
    assert (tmp_path / "run.log").read_text().splitlines() == LINES
    assert "done  forecasting" in out.getvalue() and "STEP_START" not in out.getvalue()


def test_step_seconds_reads_each_finished_step(tmp_path, monkeypatch, capsys):
    short = LINES[2].replace("forecasting", "special_events").replace("1m18s", "226ms")
    assert progress.step_seconds([*LINES, short]) == {"forecasting": 78.0, "special_events": 0.226}
    # the daily benchmark says what to run first when there is no warehouse
    from nasa_autoscale.benchmarks import daily

    monkeypatch.setenv("NASA_DUCKDB_PATH", str(tmp_path / "absent.duckdb"))
    assert daily.main([]) == 1
    assert "make run" in capsys.readouterr().err

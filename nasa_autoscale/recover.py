"""Recover after a run was killed (SIGKILL, OOM, a reboot): mark the runs whose processes are
gone as failed and free the concurrency-pool slots they held, so that the next run of a writer
is not blocked forever by a slot nobody will release.

    python -m nasa_autoscale.recover          (make recover)

It checks processes on this machine only; with runs on several machines, the daemon's run
monitoring does the same job (dagster.yaml: run_monitoring).
"""

from __future__ import annotations

import os
import sys

import dagster as dg

UNFINISHED = [
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.CANCELING,
]


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def recover(instance: dg.DagsterInstance, progress=print) -> list[str]:
    """Fail the unfinished runs none of whose processes is alive; returns their ids."""
    recovered = []
    for run in instance.get_runs(dg.RunsFilter(statuses=UNFINISHED)):
        events = [entry.dagster_event for entry in instance.all_logs(run.run_id)]
        pids = {event.pid for event in events if event is not None and event.pid}
        if any(_alive(pid) for pid in pids):
            continue
        instance.report_run_failed(
            run,
            f"its processes ({', '.join(map(str, sorted(pids))) or 'unknown'}) are gone: "
            "killed or crashed; marked failed by nasa_autoscale.recover",
        )
        storage = instance.event_log_storage
        held = run.run_id in storage.get_concurrency_run_ids()
        storage.free_concurrency_slots_for_run(run.run_id)
        progress(
            f"run {run.run_id} ({run.job_name}): processes gone, marked failed"
            + (", its pool slots freed" if held else "")
        )
        recovered.append(run.run_id)
    if not recovered:
        progress("no run to recover: every unfinished run has a live process")
    return recovered


def main() -> int:
    if not os.environ.get("DAGSTER_HOME"):
        print("DAGSTER_HOME is not set (make sets it to .dagster_home)", file=sys.stderr)
        return 2
    with dg.DagsterInstance.get() as instance:
        recover(instance)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Scaling benchmark: the whole policy sweep (tuning on the validation week, every policy on the
test window for every fleet of the profiles) and the hindsight optimum, timed on the warehouse
`make run` built (it reads scaling_forecasts and anomalies_5m). Target: <= 60 s wall.

    python -m nasa_autoscale.benchmarks.scaling     (make bench-scaling)

Writes reports/bench_scaling.json and prints each setting's cost table; the robustness table
(nine more sweeps a fleet) is timed apart, and each fleet's sweep is rerun with a 2- and a 5-minute
boot: at a 1-minute decision interval the two must differ, at 5 minutes they are one bucket.
"""

from __future__ import annotations

import dataclasses
import sys
import time

import pandas as pd

from nasa_autoscale import warehouse
from nasa_autoscale.scaling.fleets import rules_of
from nasa_autoscale.scaling.simulator import optimal_provisioning
from nasa_autoscale.scaling.sweep import (
    decision_minutes,
    load_inputs,
    make_window,
    robustness,
    robustness_fleets,
    run_sweep,
)
from nasa_autoscale.settings import Settings

TARGET_SECONDS = 60.0


def main(argv: list[str] | None = None) -> int:
    import json

    settings = Settings.from_env()  # the command's entry point: the environment, read here
    fleets = settings.fleets()
    try:
        with warehouse.reading(settings.duckdb_path) as con:
            requests, forecasts, anomalies = load_inputs(con, decision_minutes(rules_of(fleets)))
    except warehouse.WarehouseError as error:
        print(f"cannot read the scaling inputs: {error}", file=sys.stderr)
        return 1
    calendar = settings.calendar(requests)
    started = time.perf_counter()
    _, report, _, _ = run_sweep(requests, forecasts, anomalies, calendar, rules_of(fleets))
    wall = time.perf_counter() - started
    optimum_s = {}
    for name, rules in rules_of(fleets).items():  # the optimum alone, for the record
        window = make_window("test", requests, forecasts, anomalies, rules, calendar)
        begun = time.perf_counter()
        optimal_provisioning(window.demand, rules)
        optimum_s[name] = round(time.perf_counter() - begun, 2)
    begun = time.perf_counter()
    cells = robustness(
        requests, forecasts, anomalies, calendar, robustness_fleets(fleets), lambda _: None
    )
    robustness_s = time.perf_counter() - begun
    boots = boot_comparison(requests, forecasts, anomalies, calendar, rules_of(fleets))
    table = report[["setting", "policy", "cost", "pct_above_optimal", "dropped_fraction"]]
    result = {
        "command": "python -m nasa_autoscale.benchmarks.scaling",
        "wall_seconds": wall,
        "target_seconds": TARGET_SECONDS,
        "optimum_seconds": optimum_s,
        "robustness_seconds": robustness_s,
        "selected": report[report["selected"]][
            ["setting", "policy", "pct_above_optimal", "dropped_fraction"]
        ]
        .round(4)
        .to_dict(orient="records"),
        "robustness": cells.round(4).to_dict(orient="records"),
        "boot_2_vs_5_min": boots.round(4).to_dict(orient="records"),
        "cost_report": table.round(4).to_dict(orient="records"),
    }
    out = settings.reports_dir / "bench_scaling.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(table.round(4).to_string(index=False))
    print("\nselected on the validation window, on the test window:")
    print(pd.DataFrame(result["selected"]).to_string(index=False))
    print(
        f"\npolicy sweep + tuning + optimum, every fleet ({len(fleets)}): {wall:.1f} s "
        f"[target <= {TARGET_SECONDS:.0f} s]; optimum alone {optimum_s} s"
    )
    print(f"robustness table ({len(cells)} cells, each a whole sweep): {robustness_s:.1f} s")
    print("\neach fleet's sweep with a 2- and a 5-minute boot (test window):")
    print(boots.round(4).to_string(index=False))
    print(f"written to {out}")
    return 0


def boot_comparison(requests, forecasts, anomalies, calendar, rules: dict) -> pd.DataFrame:
    """Each fleet's whole sweep rerun with 120 s and 300 s boots: the selected policy's and the
    hindsight optimum's test cost and dropped share under each."""
    rows = []
    for name, fleet_rules in rules.items():
        for boot_s in (120, 300):
            varied = {name: dataclasses.replace(fleet_rules, boot_delay_s=boot_s)}
            _, report, _, _ = run_sweep(requests, forecasts, anomalies, calendar, varied)
            chosen = report[report["selected"]].iloc[0]
            optimum = report[report["policy"] == "hindsight_optimal"].iloc[0]
            rows.append(
                {
                    "fleet": name,
                    "minutes": fleet_rules.minutes,
                    "boot_s": boot_s,
                    "selected": chosen["policy"],
                    "selected_cost": chosen["cost"],
                    "selected_dropped_fraction": chosen["dropped_fraction"],
                    "optimum_cost": optimum["cost"],
                }
            )
    return pd.DataFrame(rows)


if __name__ == "__main__":
    sys.exit(main())

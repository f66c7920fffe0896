"""The dashboard: traffic, forecasts, the scaling simulation and the benchmarks, read from what the
graph materialized (read-only). The scaling page re-runs the simulator with the user's own
capacity, boot delay and price; nothing is retrained.

    make dashboard     # streamlit on http://127.0.0.1:8501
"""

from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from nasa_autoscale import warehouse
from nasa_autoscale.forecasting.next import selected_row  # noqa: E402
from nasa_autoscale.forecasting.protocols import PROTOCOLS  # noqa: E402
from nasa_autoscale.scaling import policies  # noqa: E402
from nasa_autoscale.scaling.fleets import rules_of  # noqa: E402
from nasa_autoscale.scaling.forecasts import forecast_array, made_at  # noqa: E402
from nasa_autoscale.scaling.plan import PLAN_SETTING, plan_fleet  # noqa: E402
from nasa_autoscale.scaling.recommend import known_policies, resolve_policy  # noqa: E402
from nasa_autoscale.scaling.simulator import (  # noqa: E402
    optimal_provisioning,
    replay,
    simulate,
    summarize,
)
from nasa_autoscale.settings import Settings  # noqa: E402
from nasa_autoscale.warehouse import SCHEMA  # noqa: E402

PAGES = ["Tomorrow", "Traffic", "Forecasts", "Scaling simulator", "Benchmarks"]
SCORE_DAYS = 14


@st.cache_data(ttl=60, show_spinner=False)
def query(path: str, sql: str) -> pd.DataFrame:
    """A query's rows (cached a minute); a table not materialized yet is a WarehouseError that
    names its asset, shown as a warning."""
    with warehouse.reading(path) as con:
        return warehouse.read(con, sql)


@st.cache_data(ttl=60, show_spinner=False)
def selected_model(path: str) -> pd.Series:
    """The model selected on the validation window for 5-minute day-ahead forecasts."""
    with warehouse.reading(path) as con:
        return selected_row(con)["model"]


@st.cache_data(ttl=60, show_spinner=False)
def data_source(path: str) -> str:
    with warehouse.reading(path) as con:
        return warehouse.data_source(con)


def site_settings() -> Settings:
    """The settings of the site the sidebar shows (a sites file's, NASA_SITES_PATH), else of the
    one site; the dashboard is an entry point: each rerun reads the environment."""
    sites = Settings.from_env().all_sites()
    return sites.get(st.session_state.get("site"), next(iter(sites.values())))


def test_window(path: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The test window of the data (the forecasting calendar, read from traffic_5m)."""
    requests = query(
        path, f"SELECT bucket_start, requests FROM {SCHEMA}.traffic_5m ORDER BY bucket_start"
    )
    step = pd.Timedelta(minutes=5)
    grid = pd.date_range(
        requests["bucket_start"].min().normalize(),
        requests["bucket_start"].max().normalize() + pd.Timedelta(days=1) - step,
        freq=step,
    )
    series = requests.drop_duplicates("bucket_start").set_index("bucket_start")["requests"]
    # the dashboard is an entry point: each rerun reads the environment, as its start does
    calendar = site_settings().calendar(series.reindex(grid).astype(float))
    return calendar.test_start, calendar.test_end


def _draw_forecast(ax, rows: pd.DataFrame, label: str) -> None:
    """A forecast line with its 80% interval on `ax`, then the figure shown and closed."""
    ax.plot(rows["bucket_start"], rows["yhat"], lw=0.8, color="#c44e52", label=label)
    ax.fill_between(
        rows["bucket_start"],
        rows["yhat_lower"],
        rows["yhat_upper"],
        color="#c44e52",
        alpha=0.2,
        lw=0,
        label="80% interval",
    )
    ax.set_ylabel("requests per 5 minutes")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    st.pyplot(ax.figure)
    plt.close(ax.figure)


def tomorrow_page(path: str):
    """What the daily path produced: the next day's forecast with its interval (forecast_next)
    and how the daily forecasts of the last days scored (forecast_scores)."""
    upcoming = query(path, f"SELECT * FROM {SCHEMA}.forecast_next ORDER BY bucket_start")
    try:
        # one row per day: the forecast's score is the same in every fleet's row, so the
        # default fleet's (a fleet name is letters, digits and '_': safe to inline)
        fleet = plan_fleet(site_settings().fleets())
        scores = query(
            path,
            f"SELECT * FROM {SCHEMA}.forecast_scores "
            f"QUALIFY row_number() OVER (PARTITION BY day ORDER BY plan_setting = '{fleet}' DESC) "
            f"= 1 ORDER BY day DESC LIMIT {SCORE_DAYS}",
        ).sort_values("day")
    except warehouse.MissingTable:  # no daily forecast job yet (make run does not run it)
        scores = pd.DataFrame(columns=["day", "rmse", "n"])
    if upcoming.empty:
        st.header("Tomorrow")
        st.warning("forecast_next is empty: materialize the asset `forecast_next`.")
        return
    origin = upcoming["origin"].iloc[0]
    st.header(f"Tomorrow: the 24 hours from {origin:%Y-%m-%d %H:%M}")
    made = upcoming["made_at"].iloc[0] if "made_at" in upcoming else None
    through = origin - pd.Timedelta(minutes=5)
    st.caption(
        f"{upcoming['model'].iloc[0]}, from data through {through:%Y-%m-%d %H:%M}"
        + (f"; made {made:%Y-%m-%d %H:%M} UTC" if made is not None else "")
    )
    left, middle, right = st.columns(3)
    left.metric("requests forecast", f"{upcoming['yhat'].sum():,.0f}")
    middle.metric("busiest 5 minutes", f"{upcoming['yhat'].max():,.0f}")
    if len(scores):
        n = scores["n"].sum()
        pooled = float(np.sqrt((scores["n"] * scores["rmse"] ** 2).sum() / n)) if n else np.nan
        right.metric(f"day-ahead RMSE, last {len(scores)} day(s)", f"{pooled:.1f}")
    fig, ax = plt.subplots(figsize=(14, 4))
    _draw_forecast(ax, upcoming, "forecast")
    plan_section(path)
    st.subheader("How the daily forecasts scored")
    if scores.empty:
        st.info(
            "No day scored yet: the daily forecast job (daily_forecasts, forecast_scores) runs "
            "after each ingest (refresh_after_ingest) or from the UI for a partition."
        )
        return
    st.bar_chart(scores.set_index("day")[["rmse"]], height=220)
    st.dataframe(scores.round(3), hide_index=True)
    shadow_section(path)


def shadow_section(path: str):
    """Shadow mode: per fleet, what the plan made at each midnight would have cost and dropped
    against the day that came, beside the day's hindsight optimum (forecast_scores), so a user
    can judge a fleet before letting an autoscaler act on it."""
    shadow = query(
        path,
        "SELECT day, plan_setting AS fleet, plan_policy AS policy, plan_cost, optimum_cost, "
        f"plan_pct_above_optimum, plan_dropped FROM {SCHEMA}.forecast_scores "
        "WHERE plan_cost IS NOT NULL QUALIFY dense_rank() OVER "
        f"(PARTITION BY plan_setting ORDER BY day DESC) <= {SCORE_DAYS} ORDER BY fleet, day",
    )
    if shadow.empty:
        return
    st.subheader("Shadow mode: each fleet's plan against the days that came")
    st.caption(
        "The plan made at each midnight from that day's forecast (the deployed policy, as "
        "provisioning_plan), run against the day's requests; nothing was scaled. Cost above the "
        "optimum can be negative: a plan that drops requests can cost less than the optimum, "
        "which drops none."
    )
    totals = shadow.groupby("fleet", sort=False).agg(
        days=("day", "count"),
        plan_cost=("plan_cost", "sum"),
        optimum_cost=("optimum_cost", "sum"),
        worst_day_dropped=("plan_dropped", "max"),
        mean_dropped=("plan_dropped", "mean"),
    )
    totals["above optimum (%)"] = 100 * (totals["plan_cost"] / totals["optimum_cost"] - 1)
    st.dataframe(totals.round(4))
    fleet = st.radio("fleet", list(totals.index), horizontal=True, key="shadow_fleet")
    st.dataframe(shadow[shadow["fleet"] == fleet].round(4), hide_index=True)


def plan_section(path: str):
    """provisioning_plan as a step line of servers, per setting, with the times to scale."""
    try:
        plan = query(path, f"SELECT * FROM {SCHEMA}.provisioning_plan ORDER BY bucket_start")
    except warehouse.MissingTable as error:
        st.info(f"No provisioning plan yet: {error}")
        return
    if plan.empty:
        return
    settings = list(dict.fromkeys(plan["setting"]))
    default = settings.index(PLAN_SETTING) if PLAN_SETTING in settings else 0
    setting = st.radio("setting", settings, index=default, horizontal=True)
    rows = plan[plan["setting"] == setting]
    changes = rows[rows["action"] != "hold"]
    st.subheader(f"The plan: servers per decision interval ({rows['policy'].iloc[0]})")
    fig, ax = plt.subplots(figsize=(14, 2.6))
    ax.step(rows["bucket_start"], rows["servers"], where="post", color="#4c72b0", lw=1.2)
    ax.set_ylabel("servers")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    st.pyplot(fig)
    plt.close(fig)
    st.caption(
        f"{len(changes)} scaling step(s); peak {rows['servers'].max()} servers. "
        "Scale at: "
        + (", ".join(f"{r.bucket_start:%H:%M} -> {r.servers}" for r in changes.itertuples()) or "-")
    )


def traffic_page(path: str):
    traffic = query(
        path,
        f"SELECT bucket_start, requests, is_missing FROM {SCHEMA}.traffic_5m ORDER BY bucket_start",
    )
    if len(traffic):
        first, last = traffic["bucket_start"].min(), traffic["bucket_start"].max()
        st.header(f"Traffic, {first:%Y-%m-%d} .. {last:%Y-%m-%d}")
    else:
        st.header("Traffic")
    flagged = "WHERE is_anomaly_z AND kind IN ('spike', 'dip')"
    anomalies = query(
        path, f"SELECT bucket_start, requests, kind FROM {SCHEMA}.anomalies_5m {flagged}"
    )
    events = query(path, f"SELECT name, kind, start_ts, end_ts FROM {SCHEMA}.special_events")
    if "replica" in data_source(path).split("+"):
        st.info(
            "Data: the replica (real per-bucket request counts, synthetic lines); see "
            "data/README.md."
        )
    present = traffic[~traffic["is_missing"]]
    left, middle, right = st.columns(3)
    left.metric("requests", f"{int(present['requests'].sum()):,}")
    middle.metric("missing 5-minute buckets", f"{int(traffic['is_missing'].sum()):,}")
    right.metric("3-sigma anomalies", f"{len(anomalies):,}")
    fig, ax = plt.subplots(figsize=(14, 5))
    ax.plot(
        traffic["bucket_start"],
        traffic["requests"],
        lw=0.4,
        color="#4c72b0",
        label="requests / 5 min",
    )
    for kind, color in (("spike", "#c44e52"), ("dip", "#dd8452")):
        rows = anomalies[anomalies["kind"] == kind]
        ax.scatter(rows["bucket_start"], rows["requests"], s=6, color=color, label=kind, zorder=3)
    missing = traffic[traffic["is_missing"]]["bucket_start"]
    ax.scatter(
        missing, np.zeros(len(missing)), s=4, color="#888888", marker="|", label="missing (no log)"
    )
    if len(traffic):  # only the events within the data's span (NASA's lie in 1995)
        first, last = traffic["bucket_start"].min(), traffic["bucket_start"].max()
        events = events[(events["end_ts"] >= first) & (events["start_ts"] <= last)]
    for i, event in enumerate(events.itertuples()):
        ax.axvspan(
            event.start_ts,
            event.end_ts,
            color="#55a868",
            alpha=0.15,
            label="special events" if i == 0 else None,
        )
    ax.set_ylabel("requests per 5 minutes")
    ax.legend(loc="upper left", fontsize=8, ncol=5)
    ax.grid(alpha=0.3)
    st.pyplot(fig)
    plt.close(fig)
    with st.expander("Special events"):
        st.dataframe(events, hide_index=True)


def forecasts_page(path: str):
    st.header("Forecast vs actual, test window (5-minute buckets)")
    models = query(
        path,
        f"SELECT DISTINCT model FROM {SCHEMA}.forecasts WHERE granularity = '5m' ORDER BY model",
    )["model"].tolist()
    selected = selected_model(path)
    default = selected.iloc[0] if len(selected) and selected.iloc[0] in models else None
    left, right = st.columns(2)
    model = left.selectbox(
        "model (default: selected on the validation window, day-ahead)",
        models,
        index=models.index(default) if default else 0,
    )
    protocol = right.selectbox("protocol", list(PROTOCOLS), index=1)
    test_start, test_end = test_window(path)
    test_days = max(1, (test_end - test_start).days)
    days = st.slider("days of the test window", 1, test_days, (1, min(3, test_days)))
    rows = query(
        path,
        "SELECT model, protocol, bucket_start, yhat, yhat_lower, yhat_upper FROM "
        f"{SCHEMA}.forecasts WHERE granularity = '5m'",
    )
    rows = rows[(rows["model"] == model) & (rows["protocol"] == protocol)]
    actual = query(path, f"SELECT bucket_start, requests FROM {SCHEMA}.traffic_5m")
    start = test_start + pd.Timedelta(days=days[0] - 1)
    end = test_start + pd.Timedelta(days=days[1])
    rows = rows[(rows["bucket_start"] >= start) & (rows["bucket_start"] < end)]
    rows = rows.sort_values("bucket_start")
    actual = actual[(actual["bucket_start"] >= start) & (actual["bucket_start"] < end)]
    metrics = query(
        path,
        f"SELECT model, protocol, rmse, mae, coverage FROM {SCHEMA}.model_metrics "
        "WHERE granularity = '5m'",
    )
    score = metrics[(metrics["model"] == model) & (metrics["protocol"] == protocol)]
    if len(score):
        a, b, c = st.columns(3)
        a.metric("RMSE (whole test window)", f"{score['rmse'].iloc[0]:.1f}")
        b.metric("MAE", f"{score['mae'].iloc[0]:.1f}")
        c.metric("80% interval coverage", f"{score['coverage'].iloc[0]:.0%}")
    fig, ax = plt.subplots(figsize=(14, 5))
    ax.plot(actual["bucket_start"], actual["requests"], lw=0.8, color="black", label="actual")
    _draw_forecast(ax, rows, model)


def simulation_inputs(path: str, boot: int, minutes: int):
    """(bucket times, demand, forecasts) of the test window at a fleet's decision interval."""
    requests = query(path, f"SELECT bucket_start, requests FROM {SCHEMA}.traffic_{minutes}m")
    requests = requests.set_index("bucket_start")["requests"].astype(float)
    test_start, test_end = test_window(path)
    times = pd.date_range(test_start, test_end, freq=f"{minutes}min", inclusive="left")
    forecasts = query(path, f"SELECT * FROM {SCHEMA}.scaling_forecasts WHERE \"window\" = 'test'")
    array = forecast_array(forecasts, "test", (test_start, test_end), minutes, boot + 1)
    made = forecasts[made_at(forecasts, minutes)]
    if made.empty:
        st.warning(
            f"No {minutes}-minute scaling forecasts are stored (the benchmark ran with no fleet "
            "deciding at this interval): the predictive policies hold the fleet."
        )
        return times, requests.reindex(times).to_numpy(), array
    have = int(made["step"].max())
    if boot + 1 > have:  # steps beyond the stored ones: repeat the furthest (an approximation)
        array[:, have:] = array[:, have - 1 : have]
        st.warning(
            f"The stored forecasts reach {have} bucket(s) ahead; for a longer boot delay the "
            "predictive policies reuse the furthest forecast."
        )
    return times, requests.reindex(times).to_numpy(), array


def scaling_page(path: str):
    st.header("Scaling simulation, test window")
    st.caption(
        "The same simulator as the cost report, with your own fleet. A decision at t reads only "
        "demand before t and forecasts made at t; the optimum knows everything."
    )
    report = query(path, f"SELECT setting, policy, params, selected FROM {SCHEMA}.cost_report")
    fleets = site_settings().fleets()
    with st.sidebar:
        st.subheader("Fleet")
        names = list(fleets)
        fleet = st.selectbox(
            "fleet (NASA_FLEETS_PATH)", names, index=names.index(plan_fleet(fleets))
        )
        base = fleets[fleet].rules  # the what-if starts from the fleet's own rules
        top = max(200, int(4 * base.capacity))
        capacity = st.slider(
            f"requests per server per {base.minutes} minute(s)",
            1,
            top,
            int(round(base.capacity)),
            1,
        )
        boot_s = st.slider("boot delay (seconds)", 0, 900, base.boot_delay_s, 15)
        stabilization_s = st.slider(
            "scale-in stabilization (seconds)", 0, 900, base.stabilization_s, 15
        )
        st.caption(f"{fleets[fleet].name} decides every {base.bucket_s} s")
        price = st.slider(
            "price per server-hour ($)",
            0.01,
            max(1.0, 4 * base.price_per_hour),
            base.price_per_hour,
            0.01,
        )
        most = max(60, 2 * base.max_servers)
        low, high = st.slider("servers (min, max)", 0, most, (base.min_servers, base.max_servers))
    rules = dataclasses.replace(
        base,
        capacity=float(capacity),
        min_servers=low,
        max_servers=max(high, 1),
        price_per_hour=price,
        boot_delay_s=boot_s,
        stabilization_s=stabilization_s,
    )
    names = known_policies(report, fleet)
    chosen = st.multiselect(
        "policies",
        names,
        default=[n for n in ("predictive", "hpa", "reactive_balanced") if n in names],
    )
    times, demand, array = simulation_inputs(path, rules.boot, rules.minutes)
    peak_sql = (
        f"SELECT max(requests) AS peak FROM {SCHEMA}.traffic_{rules.minutes}m "
        f"WHERE bucket_start < '{test_window(path)[0]}'"
    )
    training_peak = query(path, peak_sql)["peak"].iloc[0]
    optimum = simulate(demand, replay(optimal_provisioning(demand, rules), rules), rules)
    best = summarize(optimum, rules)
    outcomes, rows = {"hindsight_optimal": optimum}, []
    for name in chosen:
        # the policy as tuned for the picked fleet
        params = resolve_policy(report, fleet, rules_of(fleets), name).params
        if name == "static":  # sized for the training window's peak, as in the cost report
            params = {"servers": int(np.ceil(training_peak / capacity))}
        outcome = simulate(demand, policies.build(name, params), rules, array)
        outcomes[name] = outcome
    for name, outcome in outcomes.items():
        summary = summarize(outcome, rules)
        rows.append(
            {
                "policy": name,
                "cost ($)": summary["cost"],
                "above optimum (%)": 100 * (summary["cost"] / best["cost"] - 1),
                "dropped (%)": 100 * summary["dropped_fraction"],
                "scaling actions": summary["scaling_actions"],
            }
        )
    table = pd.DataFrame(rows)
    fig, (cost_ax, time_ax) = plt.subplots(
        1, 2, figsize=(15, 4.8), gridspec_kw={"width_ratios": [1, 2]}
    )
    for row in rows:
        point = (row["dropped (%)"], row["above optimum (%)"])
        cost_ax.scatter(*point, s=40)
        cost_ax.annotate(
            row["policy"], point, fontsize=8, xytext=(4, 3), textcoords="offset points"
        )
    cost_ax.set_xlabel("dropped requests (%)")
    cost_ax.set_ylabel("cost above the hindsight optimum (%)")
    cost_ax.grid(alpha=0.3)
    day = slice(0, 2 * 1440 // rules.minutes)
    time_ax.plot(
        times[day], demand[day] / capacity, color="black", lw=0.8, label="demand / capacity"
    )
    for name, outcome in outcomes.items():
        time_ax.step(times[day], outcome["serving"][day], where="post", lw=0.8, label=name)
    time_ax.set_ylabel("servers (first two days)")
    time_ax.legend(fontsize=8, loc="upper left")
    time_ax.grid(alpha=0.3)
    st.pyplot(fig)
    plt.close(fig)
    st.dataframe(table.round(2), hide_index=True)


def benchmarks_page(path: str):
    st.header("Benchmarks")
    metrics = query(path, f"SELECT model, granularity, protocol, rmse FROM {SCHEMA}.model_metrics")
    five = metrics[metrics["granularity"] == "5m"].pivot(
        index="model", columns="protocol", values="rmse"
    )
    five = five[[p for p in PROTOCOLS if p in five.columns]].sort_values("one_step")
    st.subheader("Forecasting: 5-minute RMSE on the test window (lower is better)")
    st.bar_chart(five, stack=False, horizontal=True, height=380)
    report = query(path, f"SELECT * FROM {SCHEMA}.cost_report")
    st.subheader("Scaling: cost above the hindsight optimum (%)")
    costs = report[~report["policy"].isin(["static"])].pivot(
        index="policy", columns="setting", values="pct_above_optimal"
    )
    st.bar_chart(costs, stack=False, horizontal=True, height=380)
    with st.expander("Tables"):
        st.dataframe(five.round(2))
        st.dataframe(report.drop(columns=["params"]).round(4), hide_index=True)


def main():
    st.set_page_config(page_title="nasa_autoscale", layout="wide")
    st.title("nasa_autoscale")
    sites = list(Settings.from_env().all_sites())
    if len(sites) > 1:  # a sites file: which site's warehouse every page reads
        st.sidebar.selectbox("site", sites, key="site")
    path = str(site_settings().duckdb_path)
    page = st.sidebar.radio("page", PAGES)
    pages = {
        "Tomorrow": tomorrow_page,
        "Traffic": traffic_page,
        "Forecasts": forecasts_page,
        "Scaling simulator": scaling_page,
        "Benchmarks": benchmarks_page,
    }
    try:
        pages[page](path)
    except warehouse.WarehouseError as missing:
        st.warning(str(missing))


if __name__ == "__main__":  # streamlit runs this file as __main__; importing it draws nothing
    main()

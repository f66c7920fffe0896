"""Fleet profiles: the user's servers, as they size and pay for them, in a TOML file
(NASA_FLEETS_PATH, default data/fleets.toml, which holds the NASA demo's two settings).

    [[fleet]]
    name = "web"
    requests_per_second = 50      # what one server serves at its target utilization
    min_servers = 3               # (or requests_per_minute = 3000)
    max_servers = 400
    price_per_hour = 0.034        # per server-hour
    boot_s = 90                   # from the launch to the first request served
    scale_in_stabilization_s = 300
    billing = "second"            # per second with a minimum (min_billed_s), or "hour"
    min_billed_s = 60
    dropped_budget = 0.005        # the share of requests a policy may drop (default 0.5%)
    decision_interval_s = 60      # how often the autoscaler decides: 60 (default) or 300

Every field is checked before any work starts: a bad profile is a FleetError naming the fleet
and the field, and nothing runs on a half-valid file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nasa_autoscale.configfile import (
    MAX_PRICE_PER_HOUR,
    MAX_RATE_PER_SECOND,
    MAX_SECONDS,
    MAX_SERVERS,
    ConfigFileError,
    finite_number,
    matches,
    read_toml,
    tables,
)
from nasa_autoscale.scaling.simulator import ScalingRules

# The simulator decides once per bucket of a traffic table: every minute (traffic_1m, the finest
# the logs are counted at) or every 5 minutes (traffic_5m; NASA's shipped fleets, as before).
DECISION_INTERVALS = (60, 300)
REQUIRED = (
    "name",
    "min_servers",
    "max_servers",
    "price_per_hour",
    "boot_s",
    "scale_in_stabilization_s",
    "billing",
)
OPTIONAL = {
    "requests_per_second": None,
    "requests_per_minute": None,
    "min_billed_s": 60,
    "dropped_budget": 0.005,
    "decision_interval_s": 60,
    "robustness": True,
    "description": "",
}
BILLING = ("second", "hour")


class FleetError(ValueError):
    """A fleet profile the project cannot use; the message names the file, fleet and field."""


@dataclass(frozen=True)
class Fleet:
    name: str
    rules: ScalingRules  # the simulator's rules: capacity in requests per decision interval
    requests_per_second: float
    robustness: bool  # whether the robustness table sweeps around this fleet's rules
    description: str = ""

    def as_dict(self) -> dict:
        """The profile as the API and the reports show it."""
        rules = self.rules
        return {
            "name": self.name,
            "description": self.description,
            "requests_per_second": self.requests_per_second,
            "requests_per_interval": rules.capacity,
            "min_servers": rules.min_servers,
            "max_servers": rules.max_servers,
            "price_per_hour": rules.price_per_hour,
            "boot_s": rules.boot_delay_s,
            "scale_in_stabilization_s": rules.stabilization_s,
            "billing": rules.billing,
            "min_billed_s": rules.min_billed_s,
            "dropped_budget": rules.dropped_budget,
            "decision_interval_s": rules.bucket_s,
        }


def _number(where: str, profile: dict, field: str, low: float, high: float, integer=False):
    """A field's number, finite and within low..high (configfile's bounds: a week of seconds,
    a million servers, a billion requests a second)."""
    try:
        return finite_number(profile[field], field, low, high, integer)
    except ValueError as error:
        raise FleetError(f"{where}: {error}") from None


def parse_fleet(profile: dict, where: str) -> Fleet:
    """One [[fleet]] table, checked field by field."""
    if isinstance(profile.get("name"), str):
        where = f"{where} ({profile['name']!r})"
    unknown = sorted(set(profile) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise FleetError(f"{where}: unknown field(s) {unknown}")
    missing = [f for f in REQUIRED if f not in profile]
    if missing:
        raise FleetError(f"{where}: missing field(s) {missing}")
    values = {**OPTIONAL, **profile}
    name = values["name"]
    if not matches(r"[A-Za-z0-9_]{1,64}", name):
        raise FleetError(f"{where}: name must be 1-64 letters, digits and '_', got {name!r}")
    rates = [f for f in ("requests_per_second", "requests_per_minute") if values[f] is not None]
    if len(rates) != 1:
        raise FleetError(f"{where}: give exactly one of requests_per_second, requests_per_minute")
    per = 60 if rates[0] == "requests_per_minute" else 1
    rate = _number(where, values, rates[0], 0, MAX_RATE_PER_SECOND * per)
    if rate <= 0:
        raise FleetError(f"{where}: {rates[0]} must be positive")
    low = _number(where, values, "min_servers", 0, MAX_SERVERS, integer=True)
    high = _number(where, values, "max_servers", 1, MAX_SERVERS, integer=True)
    if low > high:
        raise FleetError(f"{where}: min_servers {low} is above max_servers {high}")
    price = _number(where, values, "price_per_hour", 0, MAX_PRICE_PER_HOUR)
    boot = _number(where, values, "boot_s", 0, MAX_SECONDS, integer=True)
    stabilization = _number(where, values, "scale_in_stabilization_s", 0, MAX_SECONDS, integer=True)
    billed = _number(where, values, "min_billed_s", 0, MAX_SECONDS, integer=True)
    budget = _number(where, values, "dropped_budget", 0, 1)
    if budget >= 1:
        raise FleetError(f"{where}: dropped_budget is a share of requests, below 1")
    interval = _number(where, values, "decision_interval_s", 1, MAX_SECONDS, integer=True)
    if interval not in DECISION_INTERVALS:
        raise FleetError(
            f"{where}: decision_interval_s {interval} is not one the simulator decides at "
            f"(supported: {', '.join(map(str, DECISION_INTERVALS))})"
        )
    if values["billing"] not in BILLING:
        raise FleetError(f"{where}: billing must be one of {', '.join(BILLING)}")
    if not isinstance(values["robustness"], bool):
        raise FleetError(f"{where}: robustness must be true or false")
    if not isinstance(values["description"], str) or len(values["description"]) > 1000:
        raise FleetError(f"{where}: description must be text of at most 1,000 characters")
    # per minute when given so: 20 a minute is exactly 100 per 5-minute bucket
    per_interval = rate * interval / (60 if rates[0] == "requests_per_minute" else 1)
    per_second = rate / 60 if rates[0] == "requests_per_minute" else rate
    rules = ScalingRules(
        capacity=float(per_interval),
        min_servers=low,
        max_servers=high,
        price_per_hour=float(price),
        boot_delay_s=boot,
        stabilization_s=stabilization,
        minutes=interval // 60,
        billing=values["billing"],
        min_billed_s=billed,
        dropped_budget=float(budget),
    )
    return Fleet(name, rules, float(per_second), values["robustness"], str(values["description"]))


def load_fleets(path: Path) -> dict[str, Fleet]:
    """The fleets of a profile file, in its order; a FleetError for anything wrong in it."""
    try:
        profiles = tables(read_toml(path, "NASA_FLEETS_PATH"), "fleet", path)
    except ConfigFileError as error:
        raise FleetError(str(error)) from None
    fleets: dict[str, Fleet] = {}
    for i, profile in enumerate(profiles, 1):
        fleet = parse_fleet(profile, f"{path}: fleet {i}")
        if fleet.name in fleets:
            raise FleetError(f"{path}: fleet {i}: the name {fleet.name!r} is used twice")
        fleets[fleet.name] = fleet
    return fleets


def rules_of(fleets: dict[str, Fleet]) -> dict[str, ScalingRules]:
    return {name: fleet.rules for name, fleet in fleets.items()}

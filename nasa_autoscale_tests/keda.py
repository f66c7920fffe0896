"""KEDA's metrics-api scaler, from its documented rules, for the tests that play its side: the
number at a GJSON path of a JSON answer, or (`format: prometheus`) the value of the first sample
matching a PromQL selector. Either fails when the value is not there, so KEDA's fallback would
take over."""

from __future__ import annotations

import math
import re

from prometheus_client.parser import text_string_to_metric_families

# the JSON valueLocations docs/keda.md documents for GET /scaling/{fleet}
LOCATIONS = ("forecast.load_rps", "desired_servers", "observed.load_rps")
SELECTOR = re.compile(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?$")


def gjson(document: dict, path: str):
    """The value at a dotted GJSON path (the subset KEDA's examples use)."""
    value = document
    for part in path.split("."):
        value = value[part]
    return value


def json_value(document: dict, path: str) -> float:
    """The scaler's reading: a finite, non-negative number at the path, else an error."""
    value = gjson(document, path)
    assert isinstance(value, int | float) and math.isfinite(value) and value >= 0, (path, value)
    return float(value)


def prometheus_value(page: str, location: str) -> float:
    """`format: prometheus`: the value of the first sample of the selector's metric whose
    labels equal the selector's; KeyError (the scaler's error) when none does."""
    name, matchers = SELECTOR.match(location).groups()
    wanted = dict(re.findall(r'(\w+)="([^"]*)"', matchers or ""))
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in wanted.items()):
                return sample.value
    raise KeyError(location)

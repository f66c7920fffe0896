"""Fleet profiles: the shipped file is NASA's two settings exactly; a bad profile is an error
naming the fleet and the field, before anything runs."""

from __future__ import annotations

import pytest

from nasa_autoscale.scaling.fleets import FleetError, load_fleets
from nasa_autoscale.scaling.sweep import SCENARIOS
from nasa_autoscale.settings import DEFAULT_FLEETS_PATH, Settings, SettingsError

GOOD = """
[[fleet]]
name = "pods"
requests_per_second = 50
min_servers = 3
max_servers = 400
price_per_hour = 0.034
boot_s = 60
scale_in_stabilization_s = 300
billing = "second"
"""


def test_the_shipped_fleets_are_the_nasa_demos_rules_exactly():
    fleets = load_fleets(DEFAULT_FLEETS_PATH)
    assert list(fleets) == ["default", "realistic"]
    for name, fleet in fleets.items():
        assert fleet.rules == SCENARIOS[name]  # so every figure of the sweep stays as it was
    assert fleets["realistic"].requests_per_second == pytest.approx(40 / 300)
    assert not fleets["default"].robustness and fleets["realistic"].robustness


def test_a_fleet_sized_per_second_becomes_requests_per_decision_interval(tmp_path):
    path = tmp_path / "fleets.toml"
    path.write_text(GOOD)
    pods = load_fleets(path)["pods"]
    assert pods.rules.capacity == 50 * 60  # 50 a second, decided every minute (the default)
    assert pods.rules.minutes == 1
    assert (pods.rules.min_servers, pods.rules.max_servers) == (3, 400)  # no hidden cap
    assert pods.rules.boot_delay_s == 60 and pods.rules.dropped_budget == 0.005
    shown = pods.as_dict()
    assert shown["requests_per_second"] == 50 and shown["decision_interval_s"] == 60


@pytest.mark.parametrize(
    "change, message",
    [
        (("boot_s = 60\n", ""), "fleet 1 ('pods'): missing field(s) ['boot_s']"),
        (("0.034", "-1.0"), "('pods'): price_per_hour must be within 0..1e+06"),
        (("min_servers = 3", "min_servers = 500"), "min_servers 500 is above max_servers 400"),
        (('"second"', '"minute"'), "('pods'): billing must be one of second, hour"),
        (("boot_s = 60", "boot_s = 1.5"), "('pods'): boot_s must be a whole number"),
        (("boot_s = 60", 'boot_s = "fast"'), "('pods'): boot_s must be a whole number"),
        (("max_servers = 400", "max_servers = 400\nmax_pods = 9"), "unknown field(s) ['max_pods']"),
        (
            ("requests_per_second = 50", "requests_per_second = 50\nrequests_per_minute = 9"),
            "exactly one of requests_per_second, requests_per_minute",
        ),
        (("requests_per_second = 50", "requests_per_second = 0"), "must be positive"),
        (("billing", "decision_interval_s = 45\nbilling"), "decision_interval_s 45 is not one"),
        (('name = "pods"', 'name = "my pods!"'), "name must be 1-64 letters, digits and '_'"),
        (('name = "pods"', 'name = "pods\\n"'), "name must be 1-64 letters"),
        (("[[fleet]]", "[[fleet]"), "not valid TOML"),
        # bounds: a week of seconds, a million servers, a billion requests a second, finite
        (
            ("scale_in_stabilization_s = 300", "scale_in_stabilization_s = 1000000000000"),
            "scale_in_stabilization_s must be within 0..604800",
        ),
        (("boot_s = 60", "boot_s = 1000000000000"), "boot_s must be within 0..604800"),
        (("max_servers = 400", "max_servers = 36893488147419103232"), "max_servers must be within"),
        (("max_servers = 400", "max_servers = 1000001"), "max_servers must be within 1..1e+06"),
        (("requests_per_second = 50", "requests_per_second = 1e308"), "within 0..1e+09"),
        (("requests_per_second = 50", "requests_per_second = nan"), "within 0..1e+09"),
        (("requests_per_second = 50", "requests_per_second = inf"), "within 0..1e+09"),
        (("billing", "min_billed_s = 99999999\nbilling"), "min_billed_s must be within"),
        (("[[fleet]]", "fleet = [1]\n[[other]]"), "fleet 1 must be a [[fleet]] table"),
        (("[[fleet]]", "x = " + "[" * 40 + "]" * 40 + "\n[[fleet]]"), "nested more than 32"),
    ],
)
def test_a_bad_profile_names_the_fleet_and_the_field(tmp_path, change, message):
    path = tmp_path / "fleets.toml"
    path.write_text(GOOD.replace(*change))
    with pytest.raises(FleetError) as error:
        load_fleets(path)
    assert message in str(error.value) and str(path) in str(error.value)


def test_a_fleets_file_that_is_not_utf8_names_the_file(tmp_path):
    path = tmp_path / "fleets.toml"
    path.write_bytes(GOOD.encode() + b"\n# caf\xe9\n")
    with pytest.raises(FleetError, match="not UTF-8 text"):
        load_fleets(path)
    path.write_bytes(b"x = " + b"[" * 100_000)
    with pytest.raises(FleetError, match="nested more than"):
        load_fleets(path)


def test_two_fleets_of_one_name_and_an_empty_file_are_errors(tmp_path):
    path = tmp_path / "fleets.toml"
    path.write_text(GOOD + GOOD)
    with pytest.raises(FleetError, match="fleet 2: the name 'pods' is used twice"):
        load_fleets(path)
    path.write_text("# nothing yet\n")
    with pytest.raises(FleetError, match="no \\[\\[fleet\\]\\] tables"):
        load_fleets(path)


def test_a_bad_fleets_file_stops_the_settings_before_any_work(tmp_path, monkeypatch):
    path = tmp_path / "fleets.toml"
    path.write_text(GOOD.replace("0.034", "-1.0"))
    monkeypatch.setenv("NASA_FLEETS_PATH", str(path))
    with pytest.raises(SettingsError, match="price_per_hour must be within"):
        Settings.from_env()
    monkeypatch.setenv("NASA_FLEETS_PATH", str(tmp_path / "absent.toml"))
    with pytest.raises(SettingsError, match="NASA_FLEETS_PATH=.*cannot read it"):
        Settings.from_env()
    path.write_text(GOOD)
    monkeypatch.setenv("NASA_FLEETS_PATH", str(path))
    assert list(Settings.from_env().fleets()) == ["pods"]


def test_the_three_fleet_example_keeps_nasas_two_and_adds_pods_deciding_every_minute():
    from pathlib import Path

    shipped = load_fleets(DEFAULT_FLEETS_PATH)
    example = load_fleets(Path(DEFAULT_FLEETS_PATH).with_name("fleets.pods.toml"))
    assert list(example) == [*shipped, "pods"]
    assert all(example[name].rules == shipped[name].rules for name in shipped)
    pods = example["pods"].rules
    assert (pods.minutes, pods.boot_delay_s, pods.capacity) == (1, 60, 12.0)

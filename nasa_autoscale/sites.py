"""Many sites in one deployment: a sites file (NASA_SITES_PATH, TOML) names each site's logs,
zone, format, events, fleets and dates. Without one, the environment describes the one site, as
before.

    [[site]]
    name = "shop"                   # lower-case letters, digits, '-', '_'
    raw_dir = "/var/log/shop"       # its raw log folder (relative paths: to this file's folder)
    timezone = "Europe/Paris"       # optional: auto (the logs' first offset), a zone or +hhmm
    log_format = "combined"         # optional: auto, a preset, an nginx/Apache format
    events = "none"                 # optional: a special-events CSV, or none
    fleets = "fleets.shop.toml"     # optional: the fleet profiles (default NASA_FLEETS_PATH)
    start_date = "2026-09-27"       # optional: none = NASA's trace range (1995-07-01..08-31)
    end_date = "2026-11-30"         # optional: none with a start date = a live site, to today

Every site of a file is checked before any work starts (a SiteError names the file, the site
and the field). Each site has a warehouse, MLflow store, landing folder and reports of its own
(`<data>/sites/<name>/...`, `<reports>/<name>/`); all share the lake (its `site=` partitions).
A process serves one site, NASA_SITE (default: the file's first): the dagster CLI, a code
location of the Dagster UI (`python -m nasa_autoscale.sites workspace` writes one per site),
the API and the dashboard (which open every site).

    python -m nasa_autoscale.sites list         # name, first day, last day of each site
    python -m nasa_autoscale.sites range        # NASA_SITE's first day, last day and name
    python -m nasa_autoscale.sites workspace    # a Dagster workspace with a location per site
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from nasa_autoscale.configfile import ConfigFileError, checked_date, read_toml, tables

FIELDS = ("name", "raw_dir", "timezone", "log_format", "events", "fleets", "start_date", "end_date")


class SiteError(ValueError):
    """A sites file the project cannot use; the message names the file, the site and the field."""


@dataclass(frozen=True)
class Site:
    """One site of a sites file, its paths resolved, every value checked."""

    name: str
    raw_dir: Path
    timezone: str = "auto"
    log_format: str = "auto"
    events: Path | None | str = ""  # "": the environment's (NASA_EVENTS_PATH); None: no events
    fleets: Path | None = None  # None: the environment's (NASA_FLEETS_PATH)
    start_date: str = ""  # "": NASA's trace range
    end_date: str = ""  # "": to today (with a start date), else NASA's last day


def load_sites(path: Path) -> dict[str, Site]:
    """The sites of a file, in its order; a SiteError for anything wrong in it."""
    path = Path(path)
    try:
        document = read_toml(path, "NASA_SITES_PATH")
        unknown = sorted(set(document) - {"site"})
        if unknown:
            raise SiteError(
                f"{path}: unknown top-level key(s) {unknown}; sites are [[site]] tables"
            )
        entries = tables(document, "site", path)
    except ConfigFileError as error:
        raise SiteError(str(error)) from None
    sites: dict[str, Site] = {}
    for i, entry in enumerate(entries, 1):
        site = parse_site(entry, path.parent, f"{path}: site {i}")
        if site.name in sites:
            raise SiteError(f"{path}: site {i}: the name {site.name!r} is used twice")
        sites[site.name] = site
    return sites


def parse_site(entry: dict, base: Path, where: str) -> Site:
    from nasa_autoscale.ingest.formats import FormatError
    from nasa_autoscale.ingest.sitezone import AUTO, TimeZoneError
    from nasa_autoscale.lake import LakeError, check_site
    from nasa_autoscale.scaling.fleets import FleetError, load_fleets
    from nasa_autoscale.settings import checked_log_format, checked_timezone

    unknown = sorted(set(entry) - set(FIELDS))
    if unknown:
        raise SiteError(f"{where}: unknown field(s) {unknown}; a site has {list(FIELDS)}")
    for field, value in entry.items():
        if not isinstance(value, str):
            raise SiteError(f"{where}: {field} must be a string, not {type(value).__name__}")
        if len(value) > 4096 or "\x00" in value:
            raise SiteError(f"{where}: {field} must be at most 4,096 characters, without NUL")
    if "name" not in entry:
        raise SiteError(f"{where}: name is required")
    try:
        name = check_site(entry["name"])
    except LakeError as error:
        raise SiteError(f"{where}: name: {error}") from None
    where = f"{where.rsplit(': site', 1)[0]}: site {name!r}"
    if "raw_dir" not in entry:
        raise SiteError(f"{where}: raw_dir is required (the folder of its logs)")

    def local(value: str) -> Path:
        return (base / Path(value).expanduser()).resolve()

    raw_dir = local(entry["raw_dir"])
    if not raw_dir.is_dir():
        raise SiteError(f"{where}: raw_dir {str(raw_dir)!r} is not a folder")
    try:
        timezone = checked_timezone(entry.get("timezone", AUTO))
    except TimeZoneError as error:
        raise SiteError(f"{where}: timezone: {error}") from None
    try:
        log_format = checked_log_format(entry.get("log_format", "auto"))
    except FormatError as error:
        raise SiteError(f"{where}: log_format: {error}") from None
    events: Path | None | str = ""
    if "events" in entry:
        if entry["events"].strip().lower() in ("", "none"):
            events = None
        else:
            events = local(entry["events"])
            if not events.is_file():
                raise SiteError(f"{where}: events {str(events)!r} is not a file (or say 'none')")
            from nasa_autoscale.features.events import EventsError, load_events

            try:
                load_events(events)
            except EventsError as error:
                raise SiteError(f"{where}: events: {error}") from None
    fleets = None
    if "fleets" in entry:
        fleets = local(entry["fleets"])
        try:
            load_fleets(fleets)
        except FleetError as error:
            raise SiteError(f"{where}: fleets: {error}") from None
    dates = {}
    for field in ("start_date", "end_date"):
        value = entry.get(field, "").strip()
        if value:
            try:
                value = checked_date(value, field)
            except ValueError as error:
                raise SiteError(f"{where}: {error}") from None
        dates[field] = value
    if dates["end_date"] and not dates["start_date"]:
        raise SiteError(f"{where}: end_date needs a start_date")
    if dates["end_date"] and dates["end_date"] < dates["start_date"]:
        raise SiteError(f"{where}: end_date {dates['end_date']} is before {dates['start_date']}")
    return Site(name, raw_dir, timezone, log_format, events, fleets, **dates)


def workspace(sites_path: Path, out_dir: Path) -> Path:
    """A Dagster workspace with one code location per site (each a small file that names its
    site before the definitions load), written into out_dir; returns the workspace file."""
    sites = load_sites(sites_path)
    loaders = out_dir / "sites"
    loaders.mkdir(parents=True, exist_ok=True)
    lines = ["# written by `python -m nasa_autoscale.sites workspace`: a location per site", ""]
    lines.append("load_from:")
    for name in sites:
        loader = loaders / f"{name}.py"
        loader.write_text(
            f'"""The code location of site {name!r} ({sites_path})."""\n\n'
            "import os\n\n"
            f"os.environ['NASA_SITES_PATH'] = {str(Path(sites_path).resolve())!r}\n"
            f"os.environ['NASA_SITE'] = {name!r}\n\n"
            "from nasa_autoscale.definitions import defs  # noqa: E402, F401\n"
        )
        lines += [
            "  - python_file:",
            f"      relative_path: {loader}",
            f"      location_name: {name}",
            f"      working_directory: {Path.cwd()}",
        ]
    out = out_dir / "workspace.yaml"
    out.write_text("\n".join(lines) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    from nasa_autoscale.settings import Settings, SettingsError

    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "list"
    try:
        base = Settings.from_env()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if command == "list":  # name first-day last-day, one site a line (the Makefile reads it)
        for settings in base.all_sites().values():
            print(settings.site, settings.start_date, settings.end_date)
        return 0
    if command == "range":  # this process's site: first day, last day, name (the Makefile)
        print(base.start_date, base.end_date, base.site)
        return 0
    if command == "workspace":
        if base.sites_path is None:
            print("error: NASA_SITES_PATH is not set: use workspace.yaml", file=sys.stderr)
            return 2
        out_dir = Path(args[1]) if len(args) > 1 else Path(".dagster_home")
        print(workspace(base.sites_path, out_dir))
        return 0
    print(f"error: unknown command {command!r}: list, range or workspace", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

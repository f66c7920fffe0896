import datetime as dt

import pytest

from nasa_autoscale.ingest.sitezone import SiteZone, TimeZoneError, first_offset, resolve


def test_zones_are_read_as_names_utc_or_fixed_offsets():
    assert SiteZone.parse("-0400") == SiteZone("-0400", -240)
    assert SiteZone.parse("+05:30") == SiteZone("+0530", 330)
    assert SiteZone.parse("UTC") == SiteZone("+0000", 0)
    assert SiteZone.parse("Europe/Paris") == SiteZone("Europe/Paris")
    assert SiteZone.parse("Europe/Paris").midnight_utc(dt.date(2024, 7, 1)) == dt.datetime(
        2024, 6, 30, 22
    )
    assert SiteZone.parse("-0400").midnight_utc(dt.date(1995, 7, 1)) == dt.datetime(1995, 7, 1, 4)
    for bad in ("Mars/Olympus", "+2500", "+0107", "soon"):
        with pytest.raises(TimeZoneError):
            SiteZone.parse(bad)


def test_auto_takes_the_first_offset_and_the_warehouse_remembers_it(con):
    data = b'garbage\nh - - [01/Jul/1995:00:00:01 -0400] "GET / HTTP/1.0" 200 1\n'
    assert first_offset(data) == "-0400"
    assert resolve(con, "auto", data) == SiteZone("-0400", -240)
    assert resolve(con, "auto", b"h - - [01/Jul/1995:00:00:01 +0900]") == SiteZone("-0400", -240)
    assert resolve(con, "UTC") == SiteZone("+0000", 0)  # nothing ingested yet: it may change
    con.execute(
        "INSERT INTO nasa.source_files (source_file, path, size_bytes, modified_at, lines, "
        "requests, rejected, data_source, read_at) VALUES ('a', 'a', 1, 0, 1, 1, 0, 'real', now())"
    )
    with pytest.raises(TimeZoneError, match="ingested in \\+0000"):
        resolve(con, "Europe/Paris")

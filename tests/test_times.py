"""Kubernetes timestamps as the operator writes and reads them in status and annotations."""

from gridshift.api.times import parse_rfc3339, rfc3339


def test_a_timestamp_round_trips_to_the_second_in_utc() -> None:
    assert rfc3339(1796124000.7) == "2026-12-01T11:20:00Z"
    assert parse_rfc3339("2026-12-01T11:20:00Z") == 1796124000.0


def test_what_is_not_a_timestamp_reads_as_none() -> None:
    assert parse_rfc3339(None) is None and parse_rfc3339("") is None
    assert parse_rfc3339("yesterday") is None and parse_rfc3339("2026-12-01 11:20:00") is None

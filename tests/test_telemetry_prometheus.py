"""The Prometheus allow-list: which URLs a policy may name, decided without a request."""

from __future__ import annotations

from gridshift.telemetry.prometheus import url_allowed


def test_a_url_is_allowed_only_under_an_allowed_base() -> None:
    allowed = ["http://prometheus.monitoring:9090", "https://thanos.example.com/prom/"]
    assert url_allowed("http://prometheus.monitoring:9090", allowed)
    assert url_allowed("HTTP://Prometheus.Monitoring:9090/", allowed), "scheme and host are case-insensitive"
    assert url_allowed("https://thanos.example.com/prom/tenant-a", allowed)
    assert url_allowed("https://thanos.example.com:443/prom", allowed), "the default port is the same port"
    assert not url_allowed("https://thanos.example.com/promx", allowed), "a path prefix is not a path"
    assert not url_allowed("http://prometheus.monitoring:9091", allowed)
    assert not url_allowed("http://169.254.169.254/latest/meta-data", allowed)
    assert not url_allowed("http://prometheus.monitoring:99999", allowed)

"""Power readings from a real Prometheus scraping a real exporter: live values arrive, a target
that disappears turns stale (never 0 W), and every failure says why."""

from __future__ import annotations

import http.server
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from gridshift.devcluster.binaries import find_prometheus
from gridshift.devcluster.controlplane import free_port
from gridshift.devcluster.prometheus import LocalPrometheus
from gridshift.telemetry.prometheus import PrometheusReader
from tests.conftest import eventually

pytestmark = pytest.mark.prometheus

if find_prometheus() is None and not os.environ.get("CI"):
    pytest.skip("prometheus is not installed (apt-get install prometheus); CI installs it", allow_module_level=True)


@dataclass
class Exporter:
    port: int
    gauge: Gauge
    server: object

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def query(self) -> str:
        return f'sum(DCGM_FI_DEV_POWER_USAGE{{instance="{self.target}"}})'


def start_exporter(watts: float) -> Exporter:
    registry = CollectorRegistry()
    gauge = Gauge("DCGM_FI_DEV_POWER_USAGE", "GPU power draw (W)", ["gpu"], registry=registry)
    for gpu in range(8):
        gauge.labels(gpu=str(gpu)).set(watts / 8)
    port = free_port()
    server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    return Exporter(port, gauge, server)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalPrometheus, Exporter, Exporter]]:
    steady, leaving = start_exporter(1600.0), start_exporter(2400.0)
    prom = LocalPrometheus(tmp_path_factory.mktemp("prometheus"), [steady.target, leaving.target]).start()
    try:
        yield prom, steady, leaving
    finally:
        prom.stop()
        steady.server.shutdown()
        leaving.server.shutdown()


def read(prom: LocalPrometheus, query: str, stale_after_s: float = 5.0):
    return PrometheusReader(prom.url).read(query, now=time.time(), lookback_s=60, stale_after_s=stale_after_s)


def test_live_power_is_read_and_follows_changes(stack):
    prom, steady, _ = stack
    first = eventually(lambda: (r := read(prom, steady.query())).status == "ok" and r, timeout=30,
                       what="a first sample")
    assert first.latest_watts == pytest.approx(1600.0)
    assert first.series.step == 1.0 and len(first.series) >= 1
    for gpu in range(8):
        steady.gauge.labels(gpu=str(gpu)).set(400.0)
    eventually(lambda: read(prom, steady.query()).latest_watts == pytest.approx(3200.0), timeout=15,
               what="the new power level")


def test_a_reader_that_reads_again_reads_only_the_new_points_and_gets_what_a_fresh_read_gets(stack):
    prom, steady, _ = stack
    reader = PrometheusReader(prom.url)
    spans: list[float] = []
    query_range = reader.client.custom_query_range

    def recorded(query, start_time, end_time, step):  # type: ignore[no-untyped-def]
        spans.append((end_time - start_time).total_seconds())
        return query_range(query, start_time=start_time, end_time=end_time, step=step)

    reader.client.custom_query_range = recorded  # type: ignore[method-assign]
    eventually(lambda: reader.read(steady.query(), now=time.time(), lookback_s=120, incremental=True).status == "ok",
               timeout=30, what="a first sample")
    for watts in (800.0, 2000.0):
        for gpu in range(8):
            steady.gauge.labels(gpu=str(gpu)).set(watts / 8)
        time.sleep(2.5)
        now = time.time()
        again = reader.read(steady.query(), now=now, lookback_s=120, stale_after_s=5, incremental=True)
        fresh = PrometheusReader(prom.url).read(steady.query(), now=now, lookback_s=120, stale_after_s=5,
                                                incremental=True)
        assert again.status == fresh.status == "ok", (again, fresh)
        assert again.series.start == fresh.series.start
        np.testing.assert_array_equal(again.series.values, fresh.series.values)
    assert spans[0] >= 119 and max(spans[1:]) < 40, spans  # the later reads asked for the last half minute


def test_a_target_that_disappears_goes_stale_never_zero(stack):
    prom, _, leaving = stack
    eventually(lambda: read(prom, leaving.query()).status == "ok", timeout=30, what="the target to be scraped")
    leaving.server.shutdown()
    seen: list[str] = []

    def stale() -> bool:
        r = read(prom, leaving.query(), stale_after_s=3.0)
        seen.append(r.status)
        assert r.latest_watts is None or r.latest_watts == pytest.approx(2400.0), r  # never a made-up 0 W
        return r.status == "stale"

    eventually(stale, timeout=30, what="the reading to turn stale")
    r = read(prom, leaving.query(), stale_after_s=3.0)
    assert r.latest_watts is None and "s old" in r.reason


def test_unknown_metric_is_missing(stack):
    prom, _, _ = stack
    r = read(prom, "sum(kepler_node_platform_joules_total)")
    assert r.status == "missing" and r.latest_watts is None and "matched no series" in r.reason


def test_several_series_must_be_aggregated(stack):
    prom, steady, _ = stack
    eventually(lambda: read(prom, steady.query()).status == "ok", timeout=30, what="a sample")
    r = read(prom, f'DCGM_FI_DEV_POWER_USAGE{{instance="{steady.target}"}}')
    assert r.status == "error" and "aggregate" in r.reason


def test_bad_query_and_unreachable_server_are_errors(stack, tmp_path: Path):
    prom, _, _ = stack
    r = read(prom, "sum(rate(")
    assert r.status == "error" and "refused" in r.reason
    assert "HTTP 400: bad_data: " in r.reason and "parse error" in r.reason, "Prometheus's own message is kept"
    down = PrometheusReader(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    r = down.read("up", now=time.time())
    assert r.status == "error" and "unreachable" in r.reason and r.latest_watts is None


class _Impostor(http.server.BaseHTTPRequestHandler):
    """Not a Prometheus: answers every request with a secret, as a cloud metadata endpoint would."""

    def do_GET(self) -> None:
        body = b'{"AccessKeyId": "AKIASECRET", "Token": "s3cr3t"}' if "query" in self.path else b"<html>s3cr3t</html>"
        self.send_response(200 if "query_range" in self.path else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_what_answers_in_place_of_prometheus_is_never_echoed() -> None:
    """A policy's URL may point at any server the allow-list admits; its answer must not end up in
    status (the reason strings) whatever it says."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Impostor)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        reader = PrometheusReader(f"http://127.0.0.1:{server.server_address[1]}", timeout_s=2)
        r = reader.read("up", now=time.time())
        assert r.status == "error" and "s3cr3t" not in r.reason and "AKIA" not in r.reason, r.reason
        values, why = reader.read_by("up", ("node",))
        assert values == {} and why and "s3cr3t" not in why, why
    finally:
        server.shutdown()

"""Read a power signal from Prometheus as a clean series, and say plainly when it cannot be
trusted. A reading is ``ok``, ``stale`` (newest sample older than ``stale_after_s``),
``missing`` (the query matched no series) or ``error`` (Prometheus unreachable or the query
refused). Anything but ``ok`` carries a reason and no value: stale or missing data is never
turned into zero watts.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect

from gridshift.telemetry.series import Series, resample
from gridshift.telemetry.traces import TraceError, parse_prometheus_range

Status = Literal["ok", "stale", "missing", "error"]


@dataclass(frozen=True)
class Reading:
    """One read of one signal over a look-back window."""

    status: Status
    reason: str
    series: Series | None = None
    newest_age_s: float | None = None

    @property
    def latest_watts(self) -> float | None:
        if self.status != "ok" or self.series is None:
            return None
        return float(self.series.values[-1])


def _short(query: str, limit: int = 160) -> str:
    """A query as quoted in messages: long node matchers are cut, the rest kept."""
    return repr(query) if len(query) <= limit else repr(query[: limit - 20] + " ... " + query[-15:])


class PrometheusReader:
    """PromQL in, evenly spaced watts out (prometheus-api-client underneath)."""

    def __init__(self, url: str, timeout_s: float = 5.0):
        self.url = url
        self.client = PrometheusConnect(url=url, disable_ssl=True, timeout=timeout_s)

    def read(self, query: str, now: float, lookback_s: float = 300.0, step_s: float = 1.0,
             stale_after_s: float = 60.0, max_gap_s: float = 5.0) -> Reading:
        start = _dt.datetime.fromtimestamp(now - lookback_s, _dt.UTC)
        end = _dt.datetime.fromtimestamp(now, _dt.UTC)
        try:
            result = self.client.custom_query_range(query, start_time=start, end_time=end, step=f"{step_s:g}")
        except requests.exceptions.RequestException as exc:
            return Reading("error", f"Prometheus at {self.url} unreachable: {type(exc).__name__}")
        except PrometheusApiClientException as exc:
            return Reading("error", f"Prometheus refused {_short(query)}: {str(exc)[:300]}")
        try:
            samples = parse_prometheus_range({"status": "success", "data": {"resultType": "matrix", "result": result}})
        except TraceError as exc:
            return Reading("error", str(exc))
        if not samples:
            return Reading("missing", f"{_short(query)} matched no series in the last {lookback_s:.0f} s")
        if len(samples) > 1:
            return Reading("error", f"{_short(query)} returned {len(samples)} series; "
                                    "aggregate it to one (e.g. sum(...))")
        times, values = samples[0].times, samples[0].values
        finite = np.isfinite(values)
        if not finite.any():
            return Reading("missing", f"{_short(query)} returned only NaN in the last {lookback_s:.0f} s")
        age = now - float(times[finite].max())
        if age > stale_after_s:
            reason = f"newest sample of {_short(query)} is {age:.0f} s old (stale after {stale_after_s:.0f} s)"
            return Reading("stale", reason, newest_age_s=age)
        segments = resample(times, values, step=step_s, max_gap_s=max_gap_s, min_length=1)
        # The segment that ends with the newest sample: older data before a long gap is history.
        return Reading("ok", "", segments[-1], newest_age_s=age)

    def read_by(self, query: str, labels: tuple[str, ...]) -> tuple[dict[tuple[str, ...], float], str]:
        """An instant vector keyed by the values of ``labels``: ``({key: value}, "")`` or
        ``({}, reason)``. NaN and samples missing a label are left out, never read as zero."""
        try:
            result = self.client.custom_query(query)
        except requests.exceptions.RequestException as exc:
            return {}, f"Prometheus at {self.url} unreachable: {type(exc).__name__}"
        except PrometheusApiClientException as exc:
            return {}, f"Prometheus refused {_short(query)}: {str(exc)[:300]}"
        out: dict[tuple[str, ...], float] = {}
        for sample in result:
            metric = sample.get("metric", {})
            key = tuple(metric.get(label, "") for label in labels)
            try:
                value = float(sample["value"][1])
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            if all(key) and np.isfinite(value):
                out[key] = value
        return out, ""


def node_matcher(label: str, nodes: list[str]) -> str:
    """The ``$selector`` replacement: a label matcher for exactly these nodes."""
    if not nodes:
        return f'{label}="__no_governed_nodes__"'
    # Node names are DNS subdomains ([a-z0-9.-]): only the dot is special in a regex. PromQL strings
    # take backslashes doubled.
    escaped = "|".join(re.sub(r"([.\\^$*+?()\[\]{}|])", r"\\\\\1", n) for n in sorted(nodes))
    return f'{label}=~"{escaped}"'

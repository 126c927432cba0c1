"""Read a power signal from Prometheus as a clean series, and say plainly when it cannot be
trusted. A reading is ``ok``, ``stale`` (newest sample older than ``stale_after_s``),
``missing`` (the query matched no series) or ``error`` (Prometheus unreachable or the query
refused). Anything but ``ok`` carries a reason and no value: stale or missing data is never
turned into zero watts. A refusal is reported by its HTTP status and, when the answer is a
Prometheus API error, Prometheus's own message: never the body of whatever else answered (a
policy's URL may point anywhere it is allowed to, and reasons end up in status).
"""

from __future__ import annotations

import ast
import datetime as _dt
import hashlib
import json
import math
import re
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import numpy as np
import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException

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


@dataclass(frozen=True)
class Access:
    """TLS and credentials for one Prometheus. Verification is on unless ``verify`` is False; the CA
    bundle, when given, replaces the system's trust store."""

    verify: bool = True
    ca_pem: bytes | None = None
    token: str | None = None
    basic: tuple[str, str] | None = None
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def fingerprint(self) -> str:
        """A digest that changes whenever any of it does (readers are cached by it; it holds no secret)."""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:16]


# A range read again re-reads this much before its last point: a step evaluated before every
# target's latest scrape had landed may read differently now.
REREAD_S = 30.0
MAX_RANGES = 64  # queries whose points a reader keeps (the least recently read are dropped)


@dataclass(frozen=True)
class _Range:
    times: np.ndarray
    values: np.ndarray


def _utc(t: float) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(t, _dt.UTC)


class PrometheusReader:
    """PromQL in, evenly spaced watts out (prometheus-api-client underneath). Thread-safe: the
    operator's policies share a reader per Prometheus."""

    def __init__(self, url: str, timeout_s: float = 5.0, access: Access | None = None):
        self.url = url
        access = access or Access()
        session = requests.Session()
        self._files = tempfile.TemporaryDirectory(prefix="gridshift-prometheus-")  # PEM for requests, mode 0700
        session.verify = self._pem("ca.crt", access.ca_pem) if access.ca_pem else access.verify
        if access.client_cert_pem and access.client_key_pem:
            session.cert = (self._pem("tls.crt", access.client_cert_pem), self._pem("tls.key", access.client_key_pem))
        headers = dict(access.headers)
        if access.token:
            headers["Authorization"] = f"Bearer {access.token}"
        self.client = PrometheusConnect(url=url, timeout=timeout_s, session=session, headers=headers or None,
                                        auth=access.basic)
        self._ranges: dict[tuple[str, float], _Range] = {}
        self._lock = threading.Lock()

    def _pem(self, name: str, data: bytes) -> str:
        path = Path(self._files.name) / name
        path.write_bytes(data)
        path.chmod(0o600)
        return str(path)

    def read(self, query: str, now: float, lookback_s: float = 300.0, step_s: float = 1.0,
             stale_after_s: float = 60.0, max_gap_s: float = 5.0, incremental: bool = False) -> Reading:
        """``query`` (one series) over the last ``lookback_s`` seconds at ``step_s``, judged ok, stale,
        missing or error; the points are at ``now - lookback_s + k * step_s``. ``incremental`` (a
        series read again every period): the points are on the grid of whole multiples of
        ``step_s`` (the newest up to one step before ``now``), those already read for the same query
        and step are kept, and only the last ``REREAD_S`` seconds before them are read again."""
        key = (query, step_s)
        known = None
        if incremental:
            start = math.ceil((now - lookback_s) / step_s) * step_s  # on the step grid: reads line up
            with self._lock:
                known = self._ranges.get(key)
        else:
            start = now - lookback_s
        since = start
        if known is not None and known.times.size and known.times[-1] >= start:
            since = max(start, math.floor((known.times[-1] - REREAD_S) / step_s) * step_s)
        try:
            result = self.client.custom_query_range(query, start_time=_utc(since), end_time=_utc(now),
                                                    step=f"{step_s:g}")
        except requests.exceptions.RequestException as exc:
            return Reading("error", unreachable(self.url, exc))
        except PrometheusApiClientException as exc:
            return Reading("error", f"Prometheus refused {_short(query)}: {refusal(exc)}")
        except (KeyError, TypeError, ValueError):  # a 200 that is not a Prometheus API answer
            return Reading("error", f"{self.url} did not answer as a Prometheus HTTP API")
        try:
            samples = parse_prometheus_range({"status": "success", "data": {"resultType": "matrix", "result": result}})
        except TraceError as exc:
            return Reading("error", str(exc))
        if len(samples) > 1:
            self._forget(key)
            return Reading("error", f"{_short(query)} returned {len(samples)} series; "
                                    "aggregate it to one (e.g. sum(...))")
        times = samples[0].times if samples else np.empty(0)
        values = samples[0].values if samples else np.empty(0)
        if since > start and known is not None:  # the points read before, up to where this read began
            kept = (known.times >= start) & (known.times < since)
            times, values = np.concatenate([known.times[kept], times]), np.concatenate([known.values[kept], values])
        if not times.size:
            self._forget(key)
            return Reading("missing", f"{_short(query)} matched no series in the last {lookback_s:.0f} s")
        if incremental:
            self._remember(key, _Range(times, values))
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

    def _remember(self, key: tuple[str, float], points: _Range) -> None:
        with self._lock:
            self._ranges.pop(key, None)
            self._ranges[key] = points  # the most recently read last
            while len(self._ranges) > MAX_RANGES:
                self._ranges.pop(next(iter(self._ranges)))

    def _forget(self, key: tuple[str, float]) -> None:
        with self._lock:
            self._ranges.pop(key, None)

    def read_by(self, query: str, labels: tuple[str, ...]) -> tuple[dict[tuple[str, ...], float], str]:
        """An instant vector keyed by the values of ``labels``: ``({key: value}, "")`` or
        ``({}, reason)``. NaN and samples missing a label are left out, never read as zero."""
        try:
            result = self.client.custom_query(query)
        except requests.exceptions.RequestException as exc:
            return {}, unreachable(self.url, exc)
        except PrometheusApiClientException as exc:
            return {}, f"Prometheus refused {_short(query)}: {refusal(exc)}"
        except (KeyError, TypeError, ValueError):
            return {}, f"{self.url} did not answer as a Prometheus HTTP API"
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


_STATUS = re.compile(r"HTTP Status Code (\d+) \((b['\"].*['\"])\)", re.DOTALL)


def unreachable(url: str, exc: requests.exceptions.RequestException) -> str:
    """Why ``url`` could not be queried, in words that say what to fix."""
    if isinstance(exc, requests.exceptions.SSLError):
        return (f"TLS with Prometheus at {url} failed: its certificate is not trusted or does not match "
                "(spec.telemetry.auth: ca.crt in the Secret, or insecureSkipVerify)")
    return f"Prometheus at {url} unreachable: {type(exc).__name__}"


def refusal(exc: Exception) -> str:
    """Why Prometheus refused a query: the HTTP status and Prometheus's own error message, if the
    body is a Prometheus API error; the body itself is never repeated."""
    match = _STATUS.search(str(exc))
    if match is None:
        return "the query was refused"
    status = f"HTTP {match.group(1)}"
    if match.group(1) in ("401", "403"):
        return f"{status}: the credentials were refused (spec.telemetry.auth)"
    try:
        body = json.loads(ast.literal_eval(match.group(2)))
    except (ValueError, SyntaxError):
        return status
    if isinstance(body, dict) and body.get("status") == "error" and isinstance(body.get("error"), str):
        return f"{status}: {body.get('errorType', 'error')}: {body['error'][:300]}"
    return status


def url_allowed(url: str, allowed: Iterable[str]) -> bool:
    """Whether ``url`` lies under one of the ``allowed`` base URLs: same scheme, host and port, and
    a path at or below the allowed one."""
    def parts(u: str) -> tuple[str, str, int | None, str]:
        s = urlsplit(u.strip())
        port = s.port or {"http": 80, "https": 443}.get(s.scheme.lower())
        return s.scheme.lower(), (s.hostname or "").lower(), port, s.path.rstrip("/") + "/"

    try:
        scheme, host, port, path = parts(url)
        return any((scheme, host, port) == (a[0], a[1], a[2]) and path.startswith(a[3])
                   for a in map(parts, allowed))
    except ValueError:  # a port out of range
        return False

"""Kubernetes timestamps (RFC 3339 in UTC, whole seconds, as metav1.Time writes them) to and from epoch seconds."""

from __future__ import annotations

import datetime as dt

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def rfc3339(epoch: float) -> str:
    """``epoch`` seconds as a Kubernetes timestamp, e.g. ``2026-12-01T11:30:00Z``."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime(FORMAT)


def parse_rfc3339(text: str | None) -> float | None:
    """Epoch seconds of a Kubernetes timestamp; None for none or one that is not in that form."""
    if not text:
        return None
    try:
        return dt.datetime.strptime(text, FORMAT).replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        return None

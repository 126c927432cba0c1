"""Watch caches: the cluster objects the control periods read, kept in memory by one list-and-watch
stream per kind (a reflector, as client-go's informers do), shared by every policy.

Each ``Reflector`` lists its kind once, then watches from the list's resourceVersion (with
bookmarks, so a quiet stream's version stays fresh); an expired version (410 Gone) or a broken
stream lists again, after a short backoff when the API server is unreachable. Events are read as
plain JSON and the cache keeps only what the inventory reads of each object
(``objects.kept``). ``WatchCache.snapshot`` is a consistent copy for one period, or None until
every kind has been listed once (the caller then lists for itself).

Kopf's own indexes would do the same job, but Kopf runs a task per watched object, which did not
hold at thousands of pods and workloads (tried: its start-up alone kept a core busy for over a
minute).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.watch.watch import iter_resp_lines

from gridshift.operator import metrics
from gridshift.operator.objects import Obj, Snapshot, absent, kept, list_calls

log = logging.getLogger(__name__)

WATCH_TIMEOUT_S = 300      # the API server ends a watch after this; the reflector resumes from its version
READ_TIMEOUT_S = 330.0     # a silent connection (no event, no bookmark) is given up after this
BACKOFF_S = (0.5, 1.0, 2.0, 5.0)
ABSENT_RETRY_S = 60.0  # a workload kind the API server does not serve is looked for again after this


class Reflector:
    """One kind's objects (``kept``), listed then watched by ``list_call`` (a client list method)."""

    def __init__(self, kind: str, list_call: Callable[..., Any], **selectors: str):
        self.kind = kind
        self.list_call = list_call
        self.selectors = selectors  # e.g. field_selector="status.phase=Running"
        self.items: dict[str, Obj] = {}
        self.lock = threading.Lock()
        self.synced = threading.Event()
        self.stopped = threading.Event()
        self.relists = 0

    def objects(self) -> tuple[Obj, ...]:
        with self.lock:
            return tuple(self.items.values())

    def run(self) -> None:
        failures = 0
        while not self.stopped.is_set():
            try:
                version = self._list()
                failures = 0
                self._watch(version)
            except client.ApiException as exc:
                if not absent(self.kind, exc):
                    failures = self._failed(exc, failures)
                    continue
                # A workload kind whose CRD is not installed, or that RBAC does not grant: none of it,
                # and a look again a while later (installing KubeRay or JobSet needs no restart).
                self._absent()
                self.stopped.wait(ABSENT_RETRY_S)
            except Exception as exc:  # transport error, a malformed line: list again
                failures = self._failed(exc, failures)

    def _failed(self, exc: Exception, failures: int) -> int:
        delay = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
        log.warning(f"watch of {self.kind} failed ({type(exc).__name__}: {exc}); listing again in {delay} s")
        self.stopped.wait(delay)
        return failures + 1

    def _absent(self) -> None:
        with self.lock:
            self.items = {}
        self.synced.set()
        metrics.CACHED_OBJECTS.labels(self.kind).set(0)

    def _list(self) -> str:
        response = self.list_call(_preload_content=False, **self.selectors)
        listed = json.loads(response.data)
        items = {o["metadata"]["uid"]: kept(self.kind, o) for o in listed.get("items") or []}
        with self.lock:
            self.items = items
        self.relists += 1
        self.synced.set()
        metrics.CACHED_OBJECTS.labels(self.kind).set(len(items))
        return str(listed["metadata"]["resourceVersion"])

    def _watch(self, version: str) -> None:
        """Apply events from ``version`` on until the version expires (returns: list again) or stop."""
        while not self.stopped.is_set():
            response = self.list_call(watch=True, resource_version=version, allow_watch_bookmarks=True,
                                      timeout_seconds=WATCH_TIMEOUT_S, _request_timeout=READ_TIMEOUT_S,
                                      _preload_content=False, **self.selectors)
            try:
                for line in iter_resp_lines(response):
                    if not line:
                        continue
                    event = json.loads(line)
                    kind, obj = event["type"], event["object"]
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            return  # too old a version: list again
                        raise client.ApiException(status=obj.get("code"), reason=obj.get("message"))
                    version = obj["metadata"]["resourceVersion"]
                    if kind == "BOOKMARK":
                        continue
                    uid = obj["metadata"]["uid"]
                    with self.lock:
                        if kind == "DELETED":
                            self.items.pop(uid, None)
                        else:
                            self.items[uid] = kept(self.kind, obj)
                    if self.stopped.is_set():
                        return
            finally:
                response.close()
                response.release_conn()
            metrics.CACHED_OBJECTS.labels(self.kind).set(len(self.items))


class WatchCache:
    """A reflector per kind of ``objects.KINDS`` (listed as ``objects.list_calls`` says), each on a
    daemon thread of its own."""

    def __init__(self, api: client.ApiClient):
        self.reflectors = {kind: Reflector(kind, call, **selectors)
                           for kind, (call, selectors) in list_calls(api).items()}

    def start(self) -> WatchCache:
        for kind, reflector in self.reflectors.items():
            threading.Thread(target=reflector.run, name=f"gridshift-watch-{kind}", daemon=True).start()
        return self

    def stop(self) -> None:
        for reflector in self.reflectors.values():
            reflector.stopped.set()

    @property
    def synced(self) -> bool:
        return all(r.synced.is_set() for r in self.reflectors.values())

    def wait_synced(self, timeout_s: float) -> bool:
        """Whether every kind was listed (each given up to ``timeout_s``)."""
        return all(reflector.synced.wait(timeout_s) for reflector in self.reflectors.values())

    def snapshot(self) -> Snapshot | None:
        """The objects as the streams hold them now, or None while a kind has not been listed yet."""
        if not self.synced:
            return None
        return Snapshot.of({kind: r.objects() for kind, r in self.reflectors.items()})

"""Kopf handlers: the only module that knows about Kopf.

A daemon per PowerPolicy runs one control period every ``spec.safety.periodSeconds`` (the spec
is a live view, so edits apply at the next period), writes the status through the status
subresource and posts one Event per action. Deleting a policy releases everything it changed.
Peering keeps two replicas from acting at once: only the highest-priority live peer runs
daemons, the others stand by.

The daemons are async: between periods they wait on the event loop, and a period's blocking work
(Kubernetes and Prometheus calls, the forecast, a Modbus poll) runs in a thread pool of its own
(``PeriodPool``). A sync daemon holds one thread of Kopf's executor (min(32, cores + 4) threads) for as
long as its object lives, so on a small node the policies past that number were never controlled
and a deletion's release handler queued behind them. A period and the release of the same policy
never overlap (``PeriodPool.policy_lock``), and no period runs for a policy once it is released. Transport
errors (an API server or network blip) are caught like API errors: the loop retries at its next
period instead of leaving the daemon to Kopf's one-minute backoff.

Periods read the cluster from the watch caches (``gridshift.operator.watching``: nodes, namespaces,
running pods, PriorityClasses, HPAs and workloads), never from list calls: at a thousand nodes a
period that listed every pod and workload spent seconds doing it, once per policy. Until every kind
has been listed once a period lists for itself.

The operator's flags (``OperatorConfig``), the policy controller, the Modbus driver, the watch
caches and the period pool live in Kopf's memo (``kopf.run(memo=config.memo())``; the startup
handler builds the rest): the module holds no state of its own.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import kopf
from kubernetes import client, config
from pydantic import ValidationError

from gridshift.actuators.kubernetes import KubernetesActuator
from gridshift.actuators.migration import JobMigrator
from gridshift.api import energystorage as es
from gridshift.api.annotations import is_paused
from gridshift.api.powerpolicy import API_GROUP, API_VERSION, PLURAL, PowerPolicySpec
from gridshift.api.times import rfc3339
from gridshift.operator import metrics
from gridshift.operator.access import AccessResolver
from gridshift.operator.control import TRANSPORT_ERRORS, PeriodResult, PolicyController
from gridshift.operator.events import Event
from gridshift.operator.status import condition
from gridshift.operator.storage import ModbusStorageController
from gridshift.operator.watching import WatchCache
from gridshift.planner import Action


@dataclass(frozen=True)
class OperatorConfig:
    """The operator's flags (``gridshift operator run``), carried in Kopf's memo as ``memo.config``;
    the startup handler adds the shared ``memo.controller``, ``memo.storage``, ``memo.cache`` and ``memo.periods``."""

    prometheus_url: str | None = None
    force_dry_run: bool = False
    peered: bool = False
    allowed_prometheus_urls: tuple[str, ...] | None = None
    peering_lifetime_s: int = 8
    prometheus_ca_file: str | None = None
    prometheus_token_file: str | None = None
    started: float = field(default_factory=time.monotonic)

    def memo(self) -> kopf.Memo:
        """The global memo to pass to ``kopf.run`` (every object's memo is a shallow copy of it)."""
        return kopf.Memo(config=self)

# Peered replicas learn of each other through watch events on the ClusterKopfPeering, which may arrive
# after a new policy's. A replica that has just started therefore waits until this long after its start
# before a policy's first period; if a higher-priority peer shows up meanwhile, Kopf pauses it and the
# wait is cancelled with the daemon. A standby that takes over later knows its peers: it starts at once.
PEERING_SETTLE_S = 10.0
# Threads for the periods' blocking work. A period holds one only while it runs (well under a second),
# so this bounds how many periods run at once, not how many policies and batteries there can be.
PERIOD_THREADS = 16

_T = TypeVar("_T")


class PeriodPool:
    """The threads the periods' and polls' blocking work runs in, and what keeps a policy's period and
    its release apart: one lock per policy, and the policies already released (no period runs for them)."""

    def __init__(self, threads: int = PERIOD_THREADS):
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gridshift-period")
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.released: set[str] = set()  # uids of deleted policies

    def policy_lock(self, uid: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(uid, threading.Lock())

    def forget(self, uid: str) -> None:
        """Drop a released policy's lock (its uid stays in ``released``)."""
        with self._guard:
            self._locks.pop(uid, None)

    async def run(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` in the pool, in this task's context (Kopf posts Events through context variables)."""
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self._executor, context.run, fn, *args)


REQUEST_TIMEOUT_S = (5.0, 30.0)
"""Connect and read timeouts of every API call that names none (the watches name theirs): with etcd
down the API server holds a request for its own minute, and a period must not wait that long."""


class _TimedApiClient(client.ApiClient):
    """An API client whose calls time out (``REQUEST_TIMEOUT_S``) unless the caller gives a timeout."""

    def call_api(self, method: Any, url: Any, header_params: Any = None, body: Any = None, post_params: Any = None,
                 _request_timeout: Any = None) -> Any:
        return super().call_api(method, url, header_params, body, post_params,
                                _request_timeout=REQUEST_TIMEOUT_S if _request_timeout is None else _request_timeout)


def kubernetes_client() -> client.ApiClient:
    """In-cluster credentials when running in a pod, else $KUBECONFIG (or ~/.kube/config); every call
    times out (``REQUEST_TIMEOUT_S``) unless it says otherwise."""
    configuration = client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)
    else:
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration)
    return _TimedApiClient(configuration)


def _settle(memo: kopf.Memo, **_: Any) -> float:
    config: OperatorConfig = memo.config
    if not config.peered:
        return 0.0
    return max(0.0, PEERING_SETTLE_S - (time.monotonic() - config.started))


def build_controller(config: OperatorConfig) -> PolicyController:
    api = kubernetes_client()
    return PolicyController(api, config.prometheus_url, force_dry_run=config.force_dry_run,
                            allowed_prometheus_urls=config.allowed_prometheus_urls,
                            access=AccessResolver(api, config.prometheus_ca_file, config.prometheus_token_file))


def _invalid(exc: ValidationError, body: kopf.Body) -> tuple[str, dict[str, Any]]:
    """Every problem of an invalid spec, each naming its field, and the Ready condition that says so."""
    fields = "; ".join(f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    prev = (body.get("status") or {}).get("conditions", [])
    return fields, condition(prev, "Ready", "False", "InvalidSpec", fields, time.time(),
                             body.get("metadata", {}).get("generation"))


@kopf.on.startup()
def _startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.level = logging.INFO
    # Kopf keeps its bookkeeping in annotations: the status belongs to the PowerPolicy schema.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="kopf.gridshift.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="kopf.gridshift.io")
    settings.persistence.finalizer = "gridshift.io/release"
    # A standby takes over when the active replica's keep-alive is this old (Kopf sends one every
    # lifetime minus 5-10 s, at least every second): Kopf's default of 60 s left a site uncontrolled
    # for most of a minute after the active replica died.
    config: OperatorConfig = memo.config
    settings.peering.lifetime = config.peering_lifetime_s
    memo.controller = build_controller(config)
    memo.storage = ModbusStorageController(memo.controller.api)
    # Every replica keeps the caches, a standby too: it takes over with them warm.
    memo.cache = WatchCache(memo.controller.api).start()
    memo.periods = PeriodPool()
    threading.Thread(target=_count_policies, args=(memo.controller,), name="gridshift-policy-count",
                     daemon=True).start()


POLICY_COUNT_INTERVAL_S = 15.0


def _count_policies(ctl: PolicyController) -> None:
    """Every replica, active or standby, exports how many PowerPolicies exist (``gridshift_policies``)
    beside how many it controls: with policies and no replica controlling any, the
    GridshiftNoActiveReplica alert fires. Outside Kopf, whose handlers a standby pauses."""
    api = client.CustomObjectsApi(ctl.api)
    while True:
        try:
            listed = api.list_cluster_custom_object(API_GROUP, API_VERSION, PLURAL, limit=500)
            count = len(listed.get("items", []))
            while listed.get("metadata", {}).get("continue"):
                listed = api.list_cluster_custom_object(API_GROUP, API_VERSION, PLURAL, limit=500,
                                                        _continue=listed["metadata"]["continue"])
                count += len(listed.get("items", []))
            metrics.POLICIES.set(count)
        except TRANSPORT_ERRORS as exc:
            logging.getLogger(__name__).warning(f"could not count PowerPolicies: {_why(exc)}")
        time.sleep(POLICY_COUNT_INTERVAL_S)


def _write(ctl: PolicyController, name: str, body: kopf.Body, result: PeriodResult, logger: kopf.Logger) -> None:
    api = client.CustomObjectsApi(ctl.api)
    try:
        api.patch_cluster_custom_object_status(API_GROUP, API_VERSION, PLURAL, name, {"status": result.status})
    except TRANSPORT_ERRORS as exc:
        logger.warning(f"status of {name} not written: {_why(exc)}")
    for event in result.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
        if event.target is not None:
            kopf.event(cast(kopf.Body, event.target), type=event.type, reason=event.reason,
                       message=f"PowerPolicy {name}: {event.message}")


def _why(exc: BaseException) -> str:
    return f"{exc.status} {exc.reason}" if isinstance(exc, client.ApiException) else f"{type(exc).__name__}: {exc}"


def _control_period(ctl: PolicyController, cache: WatchCache, periods: PeriodPool, name: str, body: kopf.Body,
                    logger: kopf.Logger) -> float:
    """One control period of ``name`` (in the period pool); returns the seconds until the next."""
    uid = body.get("metadata", {}).get("uid", name)
    period = 15.0
    with periods.policy_lock(uid):
        if uid in periods.released:
            return period
        try:
            spec = PowerPolicySpec.model_validate(dict(body.get("spec") or {}))
        except ValidationError as exc:
            fields, ready = _invalid(exc, body)
            status = dict(body.get("status") or {})
            status.update({"phase": "Degraded", "conditions": [ready]})
            result = PeriodResult(status, [])
            logger.error(f"invalid spec: {fields}")
        else:
            period = float(spec.safety.period_seconds)
            try:
                result = ctl.run_once(name, spec, dict(body.get("status") or {}),
                                      generation=body.get("metadata", {}).get("generation"),
                                      cluster=cache.snapshot(),
                                      paused=is_paused(body.get("metadata", {}).get("annotations")))
            except Exception as exc:  # one bad period must not stop the policy's control
                logger.exception("control period failed")
                metrics.ERRORS.labels(name, "period").inc()
                status = dict(body.get("status") or {})
                status["phase"] = "Degraded"
                kopf.warn(body, reason="PeriodFailed", message=f"{type(exc).__name__}: {exc}"[:1000])
                result = PeriodResult(status, [])
        result.status["lastPeriodTime"] = rfc3339(time.time())
        _write(ctl, name, body, result, logger)
    return period


@kopf.daemon(API_GROUP, API_VERSION, PLURAL, cancellation_timeout=10.0, initial_delay=_settle)
async def control(name: str, body: kopf.Body, stopped: kopf.DaemonStopped, logger: kopf.Logger,
                  memo: kopf.Memo, **_: Any) -> None:
    """One control period, then wait until the next; exits when the policy is deleted, or when peering
    pauses this replica (a standby then stops exporting the policy's gauges)."""
    metrics.CONTROLLED.inc()
    try:
        while not stopped:
            started = time.monotonic()
            period = await memo.periods.run(_control_period, memo.controller, memo.cache, memo.periods, name,
                                          body, logger)
            await stopped.wait(max(0.05, period - (time.monotonic() - started)))
    finally:
        metrics.CONTROLLED.dec()
        metrics.forget(name)


@kopf.on.delete(API_GROUP, API_VERSION, PLURAL)
def release(name: str, spec: kopf.Spec, meta: kopf.Meta, logger: kopf.Logger, memo: kopf.Memo, **_: Any) -> None:
    """Give back everything the deleted policy changed: original replicas, resumed Jobs, moves in flight
    rolled back, idle battery."""
    uid = meta.get("uid", name)
    periods: PeriodPool = memo.periods
    with periods.policy_lock(uid):  # waits for a period in flight; none runs after this one
        periods.released.add(uid)
        _release(memo.controller, name, spec, logger)
    periods.forget(uid)


def _release(ctl: PolicyController, name: str, spec: kopf.Spec, logger: kopf.Logger) -> None:
    try:
        parsed = PowerPolicySpec.model_validate(dict(spec))
    except ValidationError:
        logger.warning("spec invalid at deletion; nothing it could have changed")
        return
    nodes = ctl.inventory.nodes(parsed.scope.node_selector)
    inventory = ctl.inventory.read(name, parsed, nodes)
    actuator = KubernetesActuator(ctl.api, name, dry_run=False)
    now = time.time()
    for w in inventory.workloads:
        if w.managed_by != name:
            continue
        if w.suspendable:
            action = Action("suspend", "resume", w.key, 0.0, "policy deleted")
        else:
            action = Action("scaleDown", "scaleUp", w.key, 0.0, "policy deleted",
                            replicas=w.original_replicas or w.replicas)
        logger.info(actuator.apply(action, now).message)
    migrator = JobMigrator(ctl.api, name)
    for job in inventory.movable:
        if job.moving and job.managed_by == name:
            logger.info(migrator.rollback(job.namespace, job.name, now, "policy deleted").message)
    battery = inventory.battery
    if battery is not None and battery.managed_by == name:
        logger.info(actuator.apply(Action("battery", "idle", battery.key, 0.0, "policy deleted", setpoint_w=0.0),
                                   now).message)
    ctl.forget(name)


def _drives(spec: kopf.Spec, **_: Any) -> bool:
    return spec.get("driver") == "modbus"


def _battery_poll(ctl: PolicyController, driver: ModbusStorageController, name: str, body: kopf.Body,
                  logger: kopf.Logger) -> float:
    """One poll of a Modbus EnergyStorage (in the period pool); returns the seconds until the next."""
    poll = 5.0
    try:
        spec = es.EnergyStorageSpec.model_validate(dict(body.get("spec") or {}))
    except ValidationError as exc:
        fields, ready = _invalid(exc, body)
        status: dict[str, Any] = {"conditions": [ready]}
        events: list[Event] = []
        logger.error(f"invalid spec: {fields}")
    else:
        assert spec.modbus is not None
        poll = spec.modbus.poll_seconds
        try:
            status, events = driver.run_once(name, spec, dict(body.get("status") or {}),
                                                generation=body.get("metadata", {}).get("generation"))
        except Exception:  # one bad poll must not stop the device's driver; the revert timeout covers it
            logger.exception("battery poll failed")
            return poll
    try:
        client.CustomObjectsApi(ctl.api).patch_cluster_custom_object_status(
            API_GROUP, API_VERSION, es.PLURAL, name, {"status": status})
    except TRANSPORT_ERRORS as exc:
        logger.warning(f"status of EnergyStorage {name} not written: {_why(exc)}")
    for event in events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
    return poll


@kopf.daemon(API_GROUP, API_VERSION, es.PLURAL, when=_drives, cancellation_timeout=10.0, initial_delay=_settle)
async def drive_battery(name: str, body: kopf.Body, stopped: kopf.DaemonStopped, logger: kopf.Logger,
                        memo: kopf.Memo, **_: Any) -> None:
    """An EnergyStorage with driver modbus: poll the device, apply the setpoint with its revert timeout,
    report the device's state. On exit (deleted, driver changed, operator stopping) the battery idles."""
    try:
        while not stopped:
            poll = await memo.periods.run(_battery_poll, memo.controller, memo.storage, name, body, logger)
            await stopped.wait(poll)
    finally:
        await memo.periods.run(memo.storage.release, name)

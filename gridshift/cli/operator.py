"""``gridshift operator run``: the operator itself (what the chart's Deployment runs). Every option
can also be set by an environment variable (shown in ``--help``)."""

from __future__ import annotations

import logging
import os
import secrets
from typing import Any

import click

from gridshift.cli.common import PORT, Failed


@click.group()
def operator() -> None:
    """Run the gridshift operator."""


@operator.command()
@click.option("--prometheus-url", envvar="GRIDSHIFT_PROMETHEUS_URL", show_envvar=True,
              help="Prometheus for policies that set no spec.telemetry.prometheusUrl.")
@click.option("--prometheus-ca-file", metavar="FILE", envvar="GRIDSHIFT_PROMETHEUS_CA_FILE", show_envvar=True,
              type=click.Path(exists=True, dir_okay=False),
              help="CA bundle to verify Prometheus's certificate with, for policies without "
                   "spec.telemetry.auth.secretRef (default: the system's trust store).")
@click.option("--prometheus-token-file", metavar="FILE", envvar="GRIDSHIFT_PROMETHEUS_TOKEN_FILE", show_envvar=True,
              type=click.Path(dir_okay=False),
              help="Bearer token for Prometheus, re-read as it rotates (e.g. the pod's projected ServiceAccount "
                   "token for OpenShift's thanos-querier), for policies without a secretRef.")
@click.option("--allow-prometheus-url", "allowed", multiple=True, metavar="BASE_URL",
              envvar="GRIDSHIFT_ALLOWED_PROMETHEUS_URLS", show_envvar=True,
              help="A base URL a policy's spec.telemetry.prometheusUrl may name (repeat for more; the variable "
                   "takes them space-separated); with none given any URL is allowed. The --prometheus-url is "
                   "always allowed.")
@click.option("--kubeconfig", envvar="KUBECONFIG", show_envvar=True, type=click.Path(dir_okay=False),
              help="Kubeconfig file (default: in-cluster credentials or ~/.kube/config).")
@click.option("--metrics-port", type=PORT, default=8080, show_default=True, envvar="GRIDSHIFT_METRICS_PORT",
              show_envvar=True, help="Port of /metrics.")
@click.option("--health-port", type=PORT, default=8081, show_default=True, envvar="GRIDSHIFT_HEALTH_PORT",
              show_envvar=True, help="Port of the /healthz liveness probe.")
@click.option("--bind", default="0.0.0.0", show_default=True, envvar="GRIDSHIFT_BIND", show_envvar=True,
              help="Address for /metrics and /healthz.")
@click.option("--peering", default="gridshift", show_default=True, envvar="GRIDSHIFT_PEERING", show_envvar=True,
              help="ClusterKopfPeering shared by the replicas.")
@click.option("--priority", type=int, envvar="GRIDSHIFT_PRIORITY", show_envvar=True,
              help="Peering priority; the highest live replica acts, the others stand by (default: random, "
                   "because Kopf pauses every replica when two share a priority).")
@click.option("--standalone", is_flag=True, envvar="GRIDSHIFT_STANDALONE", show_envvar=True,
              help="No peering: for a single replica.")
@click.option("--peering-lifetime", type=click.IntRange(min=3), default=8, show_default=True, metavar="SECONDS",
              envvar="GRIDSHIFT_PEERING_LIFETIME", show_envvar=True,
              help="How long a replica counts as alive after its last keep-alive (it sends one every 1-3 s); a "
                   "standby takes over this long after the active replica dies.")
@click.option("--dry-run", is_flag=True, envvar="GRIDSHIFT_DRY_RUN", show_envvar=True,
              help="Report every policy's actions without writing, whatever its spec.safety.dryRun says.")
@click.option("--verbose", is_flag=True, envvar="GRIDSHIFT_VERBOSE", show_envvar=True, help="Debug logging.")
def run(prometheus_url: str | None, prometheus_ca_file: str | None, prometheus_token_file: str | None,
        allowed: tuple[str, ...], kubeconfig: str | None, metrics_port: int, health_port: int, bind: str,
        peering: str, priority: int | None, standalone: bool, peering_lifetime: int, dry_run: bool,
        verbose: bool) -> None:
    """Watch PowerPolicies cluster-wide and keep each under its budget."""
    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig
    import kopf
    from kubernetes import client
    from prometheus_client import start_http_server

    from gridshift.operator import handlers
    from gridshift.operator.metrics import REGISTRY

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = handlers.OperatorConfig(
        prometheus_url, force_dry_run=dry_run, peered=not standalone,
        allowed_prometheus_urls=allowed or None, peering_lifetime_s=peering_lifetime,
        prometheus_ca_file=prometheus_ca_file, prometheus_token_file=prometheus_token_file)
    if not standalone:
        _ensure_peering(client.CustomObjectsApi(handlers.kubernetes_client()), peering)
    start_http_server(metrics_port, addr=bind, registry=REGISTRY)
    kopf.run(clusterwide=True, standalone=standalone, peering_name=None if standalone else peering,
             liveness_endpoint=f"http://{bind}:{health_port}/healthz",
             priority=priority if priority is not None else 1 + secrets.randbelow(1_000_000_000),
             memo=config.memo())


def _ensure_peering(api: Any, name: str) -> None:
    """Kopf's ClusterKopfPeering object for the replicas to meet in (the CRD ships in crds/; the Helm
    chart creates the object, so the operator only needs to read it there)."""
    from kubernetes import client

    try:
        api.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", name)
        return
    except client.ApiException as exc:
        if exc.status != 404:
            raise Failed(f"cannot read ClusterKopfPeering {name!r}: {exc.status} {exc.reason}") from exc
    try:
        api.create_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings",
                                         {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering",
                                          "metadata": {"name": name}})
    except client.ApiException as exc:
        if exc.status != 409:
            raise Failed(f"cannot create ClusterKopfPeering {name!r}: {exc.status} {exc.reason} "
                         "(apply crds/ first, or pass --standalone)") from exc

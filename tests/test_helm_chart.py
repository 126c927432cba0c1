"""The Helm chart, offline: lint and template with default and all-options values, the values
schema naming bad fields, the ClusterRole staying least-privilege, and manifests/ in sync."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from gridshift.devcluster.binaries import ensure_binaries

pytestmark = pytest.mark.go

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "gridshift"
URL = ["--set", "prometheusUrl=http://prometheus:9090"]
# `helm template` and `helm lint` assume Kubernetes 1.20 unless told: the chart needs 1.28 (kubeVersion).
KUBE = ["--kube-version", "1.33.0"]


@pytest.fixture(scope="module")
def helm() -> Path:
    return ensure_binaries().path("helm")


def run(helm: Path, *args: str) -> subprocess.CompletedProcess:
    if args and args[0] in ("template", "lint") and "--kube-version" not in args:
        args = (*args, *KUBE)
    return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=120)


def render(helm: Path, *args: str) -> list[dict]:
    out = run(helm, "template", "gs", str(CHART), "--namespace", "gridshift-system", *args)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.mark.parametrize("values", [URL, ["-f", str(CHART / "ci" / "all-options-values.yaml")]],
                         ids=["defaults", "all-options"])
def test_lint_and_template_pass(helm: Path, values: list[str]) -> None:
    lint = run(helm, "lint", "--strict", str(CHART), *values)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    kinds = {d["kind"] for d in render(helm, *values)}
    assert {"Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service",
            "PodDisruptionBudget", "ClusterKopfPeering"} <= kinds
    if "-f" in values:
        assert {"ServiceMonitor", "PrometheusRule", "ConfigMap"} <= kinds


def test_defaults_are_safe(helm: Path) -> None:
    docs = render(helm, *URL)
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert "--dry-run" in container["args"], "dry-run must be the default"
    assert deploy["spec"]["replicas"] == 2 and "--peering=gridshift" in container["args"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["limits"]["memory"]


@pytest.mark.parametrize(("args", "message"), [
    ([], "prometheusUrl is required"),
    ([*URL, "--set", "replicaCount=0"], "/replicaCount"),
    ([*URL, "--set", "image.pullPolicy=Sometimes"], "/image/pullPolicy"),
    ([*URL, "--set", "metricsPort=80"], "/metricsPort"),
    ([*URL, "--set", "dryRun=maybe"], "/dryRun"),
    ([*URL, "--set", "serviceMonitor.interval=soon"], "/serviceMonitor/interval"),
    ([*URL, "--set", "replicas=2"], "additional properties 'replicas' not allowed"),
    (["--set", "prometheusUrl=prometheus:9090"], "/prometheusUrl"),
    ([*URL, "--set", "extraArgs[0]=verbose"], "/extraArgs/0"),
])
def test_bad_values_fail_with_the_field_named(helm: Path, args: list[str], message: str) -> None:
    out = run(helm, "template", "gs", str(CHART), *args)
    assert out.returncode != 0
    assert message in out.stderr, out.stderr


def test_cluster_role_is_least_privilege(helm: Path) -> None:
    role = next(d for d in render(helm, *URL) if d["kind"] == "ClusterRole")
    granted = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
               for v in rule["verbs"]}
    assert not any("*" in item for item in granted), "no wildcards"
    assert not any(r == "secrets" for _, r, _ in granted), "reads no Secrets yet"
    assert not any(v in ("delete", "deletecollection", "create", "update", "escalate", "bind", "impersonate")
                   for g, r, v in granted if (g, r) != ("", "events")), "only Events are created; nothing deleted"
    assert ("apps", "deployments/scale", "patch") in granted and ("batch", "jobs", "patch") in granted
    assert ("autoscaling", "horizontalpodautoscalers", "patch") in granted, "an HPA's maximum holds a scale-down"
    assert ("keda.sh", "scaledobjects", "patch") in granted, "a KEDA target is paused through its ScaledObject"
    assert not any(r == "configmaps" for _, r, _ in granted), "ConfigMaps are read per namespace, not cluster-wide"
    assert not any(r == "jobs/status" for _, r, _ in granted), "migration is opt-in, and so is its permission"
    migrating = next(d for d in render(helm, *URL, "--set", "rbac.migration=true") if d["kind"] == "ClusterRole")
    assert any(r["resources"] == ["jobs/status"] and r["verbs"] == ["patch"] for r in migrating["rules"])
    roles = [d for d in render(helm, *URL) if d["kind"] == "Role"]
    assert [(r["metadata"]["namespace"], [x["resources"] for x in r["rules"]]) for r in roles] == [
        ("gridshift-system", [["configmaps"]])], "model ConfigMaps in the release's namespace only, by default"


def test_manifests_are_the_rendered_chart(helm: Path) -> None:
    """manifests/install.yaml is `make manifests`: the chart with its defaults."""
    out = run(helm, "template", "gridshift", str(CHART), "--namespace", "gridshift-system",
              "--set", "prometheusUrl=http://prometheus-operated.monitoring.svc:9090",
              "--api-versions", "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy")
    assert out.returncode == 0, out.stderr
    assert (ROOT / "manifests" / "install.yaml").read_text() == out.stdout, "manifests/ is stale: run `make manifests`"
    assert "kind: ValidatingAdmissionPolicy\n" in out.stdout, "the rendered install narrows what the token may patch"
    listed = yaml.safe_load((ROOT / "crds" / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in (ROOT / "crds").glob("*.yaml") if p.name != "kustomization.yaml")
    assert (CHART / "crds").resolve() == (ROOT / "crds").resolve(), "the chart's crds/ must be the repository's"


def test_the_chart_renders_as_a_dependency_of_an_umbrella_chart(helm: Path, tmp_path: Path) -> None:
    """An umbrella chart passes `global` to every subchart: the values schema accepts it, and the
    chart's kubeVersion holds for the Kubernetes it renders against."""
    umbrella = tmp_path / "platform"
    (umbrella / "charts").mkdir(parents=True)
    (umbrella / "Chart.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v2", "name": "platform", "version": "1.0.0",
        "dependencies": [{"name": "gridshift", "version": "0.1.0", "repository": f"file://{CHART}"}]}))
    (umbrella / "values.yaml").write_text(yaml.safe_dump({
        "global": {"imageRegistry": "registry.example.com"},
        "gridshift": {"prometheusUrl": "http://prometheus:9090"}}))
    built = run(helm, "dependency", "build", str(umbrella))
    assert built.returncode == 0, built.stdout + built.stderr
    out = run(helm, "template", "platform", str(umbrella), "--namespace", "gridshift-system")
    assert out.returncode == 0, out.stderr
    assert any(d and d["kind"] == "Deployment" for d in yaml.safe_load_all(out.stdout))


def test_kubernetes_before_1_28_is_refused_by_name(helm: Path) -> None:
    old = run(helm, "template", "gs", str(CHART), *URL, "--kube-version", "1.27.0")
    assert old.returncode != 0 and "kubeVersion: >=1.28" in old.stderr, old.stderr

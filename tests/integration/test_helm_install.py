"""`helm install` on the real control plane; the operator then runs with the chart's ServiceAccount
token (not admin) and completes a scale-down and a restore, so the ClusterRole is sufficient; the
same token is refused outside the role, so it is least privilege; upgrade and uninstall work."""

from __future__ import annotations

import itertools
import os
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from gridshift.devcluster.binaries import ensure_binaries
from gridshift.devcluster.cluster import api_client_for
from gridshift.devcluster.lab import OperatorProcess, delete_site, inference, new_site, policy, training
from tests.conftest import Kube, eventually
from tests.integration.conftest import Lab

pytestmark = pytest.mark.cluster
CHART = Path(__file__).resolve().parents[2] / "helm" / "gridshift"


def _helm(kube: Kube, *args: str) -> subprocess.CompletedProcess:
    helm = ensure_binaries().path("helm")
    out = subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=180,
                         env={**os.environ, "KUBECONFIG": str(kube.kubeconfig)})
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def _token_kubeconfig(admin: Path, token: str, out: Path) -> Path:
    doc = yaml.safe_load(admin.read_text())
    doc["users"] = [{"name": "gridshift-sa", "user": {"token": token}}]
    for ctx in doc["contexts"]:
        ctx["context"]["user"] = "gridshift-sa"
    out.write_text(yaml.safe_dump(doc))
    return out


def _refused(call) -> bool:  # type: ignore[no-untyped-def]
    """Whether the API server refuses ``call`` as forbidden (RBAC or the admission policy)."""
    try:
        call()
    except client.ApiException as exc:
        assert exc.status in (403, 422), exc
        return True
    return False


def _admission_diagnosis(kube: Kube, release_ns: str, sa: client.ApiClient) -> str:
    """What the cluster holds of the chart's admission policy, and who the token is, for a failure
    message: whether helm rendered the policy, whether the API server has it and its binding, and
    the user name its match condition compares."""
    adm = client.AdmissionregistrationV1Api(kube.api)
    kinds = [line for line in _helm(kube, "get", "manifest", "gridshift", "--namespace", release_ns)
             .stdout.splitlines() if line.startswith("kind:")]
    policies = {p.metadata.name: (p.spec.match_conditions, p.status)
                for p in adm.list_validating_admission_policy().items}
    bindings = {b.metadata.name: b.spec.policy_name for b in adm.list_validating_admission_policy_binding().items}
    review = client.AuthenticationV1Api(sa).create_self_subject_review({
        "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    return (f"helm manifest kinds: {kinds}\npolicies: {policies}\nbindings: {bindings}\n"
            f"token user: {review.status.user_info.username}")


def test_helm_install_least_privilege_upgrade_uninstall(lab: Lab, namespace: str, tmp_path: Path) -> None:
    kube = lab.kube
    release_ns = f"gs-{uuid.uuid4().hex[:6]}"
    _helm(kube, "install", "gridshift", str(CHART), "--namespace", release_ns, "--create-namespace",
          "--set", f"prometheusUrl={lab.prometheus_url}", "--set", "dryRun=false", "--wait", "--timeout", "120s")
    site = new_site(kube.api, count=1)
    operator = None
    policy_name = f"pp-{namespace}"
    try:
        deploy = kube.apps.read_namespaced_deployment("gridshift", release_ns)
        assert deploy.spec.replicas == 2 and deploy.spec.template.spec.service_account_name == "gridshift"

        token = kube.core.create_namespaced_service_account_token(
            "gridshift", release_ns, {"spec": {"expirationSeconds": 3600}}).status.token
        sa_config = _token_kubeconfig(kube.kubeconfig, token, tmp_path / "sa.kubeconfig")
        sa = api_client_for(sa_config)

        # Least privilege: outside the role, the chart's identity is refused.
        with pytest.raises(client.ApiException) as denied:
            client.CoreV1Api(sa).list_namespaced_secret("kube-system")
        assert denied.value.status == 403
        kube.apps.create_namespaced_deployment(namespace, inference("chat", site.name, 4, 300, min_replicas=1))
        with pytest.raises(client.ApiException) as denied:
            client.AppsV1Api(sa).delete_namespaced_deployment("chat", namespace)
        assert denied.value.status == 403
        with pytest.raises(client.ApiException) as denied:
            client.CoreV1Api(sa).create_namespaced_pod(namespace, {"metadata": {"name": "x"}, "spec": {
                "containers": [{"name": "x", "image": "x"}]}})
        assert denied.value.status == 403
        # ConfigMaps only in the release's namespace (a model there), nowhere else.
        with pytest.raises(client.ApiException) as denied:
            client.CoreV1Api(sa).read_namespaced_config_map("kube-root-ca.crt", "kube-system")
        assert denied.value.status == 403
        assert client.CoreV1Api(sa).read_namespaced_config_map("kube-root-ca.crt", release_ns).data
        # The patch it holds on workloads changes only what gridshift changes (the admission policy).
        # The API server loads a new policy asynchronously: probe on a throwaway Deployment, each try
        # a new image (a patch accepted before the policy was loaded would make the next identical
        # one a no-op, which the policy lets through), then check the real one.
        apps_sa = client.AppsV1Api(sa)
        kube.apps.create_namespaced_deployment(namespace, inference("probe", site.name, 0, 300))
        tries = itertools.count()
        try:
            eventually(lambda: _refused(lambda: apps_sa.patch_namespaced_deployment("probe", namespace, {"spec": {
                "template": {"spec": {"containers": [{"name": "main", "image": f"evil:{next(tries)}"}]}}}})), 90,
                       what="the admission policy in force")
        except BaseException:
            try:
                print(_admission_diagnosis(kube, release_ns, sa))
            except Exception as exc:  # the diagnosis must not hide the failure
                print(f"no diagnosis: {exc!r}")
            raise
        assert _refused(lambda: apps_sa.patch_namespaced_deployment("chat", namespace, {"spec": {
            "template": {"spec": {"containers": [{"name": "main", "image": "evil:latest"}]}}}}))
        assert _refused(lambda: apps_sa.patch_namespaced_deployment("chat", namespace, {"spec": {"template": {
            "spec": {"serviceAccountName": "default"}}}}))
        assert _refused(lambda: apps_sa.patch_namespaced_deployment("chat", namespace, {"metadata": {
            "annotations": {"deployment.kubernetes.io/revision": "9"}}}))
        for value in ("1", None):  # its own annotations it may set and clear
            apps_sa.patch_namespaced_deployment("chat", namespace, {"metadata": {"annotations": {
                "gridshift.io/probe": value}}})
        chat = kube.apps.read_namespaced_deployment("chat", namespace)
        assert chat.spec.template.spec.containers[0].image != "evil:latest"
        assert chat.spec.template.spec.service_account_name != "default"

        # Sufficient: the operator under that token shaves a burst and restores afterwards.
        operator = OperatorProcess(sa_config, lab.prometheus_url, tmp_path / "operator.log",
                                   peering_priority=1).start()
        kube.custom.create_cluster_custom_object("gridshift.io", "v1alpha1", "powerpolicies", policy(
            policy_name, site.name, namespace, lab.prometheus_url, cap=2_800, trigger=2_500, dry_run=False,
            ladder=["scaleDown"]))
        eventually(lambda: len(kube.core.list_namespaced_pod(namespace, field_selector="status.phase=Running")
                               .items) == 4, 60, what="chat running")
        kube.batch.create_namespaced_job(namespace, training("burst", site.name, 1, 4, 600))
        eventually(lambda: kube.apps.read_namespaced_deployment("chat", namespace).spec.replicas < 4, 60,
                   what=f"scale-down under the chart's ServiceAccount\n{operator.tail()}")
        kube.batch.delete_namespaced_job("burst", namespace, propagation_policy="Background")

        def restored() -> bool:
            dep = kube.apps.read_namespaced_deployment("chat", namespace)
            return dep.spec.replicas == 4 and "gridshift.io/managed-by" not in (dep.metadata.annotations or {})

        eventually(restored, 60, what=f"restore under the chart's ServiceAccount\n{operator.tail()}")
        assert "403" not in operator.tail(100_000), "the operator hit a permission it lacks"
        kube.custom.delete_cluster_custom_object("gridshift.io", "v1alpha1", "powerpolicies", policy_name)
        eventually(lambda: policy_name not in {p["metadata"]["name"] for p in kube.custom.list_cluster_custom_object(
            "gridshift.io", "v1alpha1", "powerpolicies")["items"]}, 30, what="finalizer handled by the SA")
    finally:
        if operator is not None:
            operator.stop()
            print(operator.tail(20000))
        delete_site(kube.api, site)

    _helm(kube, "upgrade", "gridshift", str(CHART), "--namespace", release_ns, "--reuse-values",
          "--set", "replicaCount=1")
    upgraded = kube.apps.read_namespaced_deployment("gridshift", release_ns)
    assert upgraded.spec.replicas == 1 and "--standalone" in upgraded.spec.template.spec.containers[0].args

    _helm(kube, "uninstall", "gridshift", "--namespace", release_ns, "--wait")
    rbac = client.RbacAuthorizationV1Api(kube.api)
    assert "gridshift" not in {r.metadata.name for r in rbac.list_cluster_role().items}
    assert "gridshift" not in {b.metadata.name for b in rbac.list_cluster_role_binding().items}
    assert not kube.apps.list_namespaced_deployment(release_ns).items
    assert not [s for s in kube.core.list_namespaced_service_account(release_ns).items
                if s.metadata.name == "gridshift"]
    assert not kube.core.list_namespaced_service(release_ns).items
    peerings = kube.custom.list_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings")["items"]
    assert "gridshift" not in {p["metadata"]["name"] for p in peerings}
    ext = client.ApiextensionsV1Api(kube.api)
    assert "powerpolicies.gridshift.io" in {c.metadata.name for c in ext.list_custom_resource_definition().items}, \
        "CRDs stay, as Helm keeps them"
    kube.core.delete_namespace(release_ns)

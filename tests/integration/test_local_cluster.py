"""The local control plane behaves like a cluster: real controllers, scheduler, RBAC and kwok
GPU nodes, so later tests can rely on Deployments and Jobs really getting pods."""

from __future__ import annotations

import pytest
from kubernetes import client

from gridshift.api.resources import GPU_RESOURCE
from gridshift.devcluster.controlplane import RUN_DURATION_ANNOTATION, SITE_LABEL
from tests.conftest import TEST_POOLS, Kube, eventually

pytestmark = pytest.mark.cluster


def gpu_container(gpus: int) -> dict:
    return {
        "name": "train",
        "image": "registry.invalid/trainer:1",
        "resources": {"limits": {GPU_RESOURCE: str(gpus)}, "requests": {GPU_RESOURCE: str(gpus)}},
    }


def pods(kube: Kube, namespace: str, selector: str) -> list[client.V1Pod]:
    return kube.core.list_namespaced_pod(namespace, label_selector=selector).items


def running(kube: Kube, namespace: str, selector: str) -> list[client.V1Pod]:
    return [p for p in pods(kube, namespace, selector) if p.status.phase == "Running"]


def test_server_reports_kubernetes_1_33(kube: Kube):
    if kube.cluster is None:
        pytest.skip("version check applies to the local control plane only")
    info = client.VersionApi(kube.api).get_code()
    assert info.major == "1" and info.minor == "33", info
    assert info.git_version.startswith("v1.33.")


def test_gpu_nodes_are_ready_with_capacity_and_site_labels(kube: Kube):
    if kube.cluster is None:
        pytest.skip("node layout applies to the local control plane only")
    nodes = kube.core.list_node(label_selector="type=kwok").items
    assert len(nodes) == sum(p.count for p in TEST_POOLS)
    for node in nodes:
        assert node.status.allocatable[GPU_RESOURCE] == "8"
        assert node.metadata.labels[SITE_LABEL] in {"site-a", "site-b"}
        assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)


def test_gpu_deployment_gets_running_pods_on_gpu_nodes(kube: Kube, namespace: str):
    kube.apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": "infer"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "infer"}},
            "template": {
                "metadata": {"labels": {"app": "infer"}},
                "spec": {"nodeSelector": {SITE_LABEL: "site-a"}, "containers": [gpu_container(2)]},
            },
        },
    })
    got = eventually(lambda: len(running(kube, namespace, "app=infer")) == 3 and running(kube, namespace, "app=infer"),
                     what="3 Running inference pods")
    node_names = {n.metadata.name for n in kube.core.list_node(label_selector=f"{SITE_LABEL}=site-a").items}
    for pod in got:
        assert pod.spec.node_name in node_names


def test_scheduler_honours_gpu_capacity(kube: Kube, namespace: str):
    """A pod asking for more GPUs than any node has stays Pending as Unschedulable."""
    kube.core.create_namespaced_pod(namespace, {
        "metadata": {"name": "too-big", "labels": {"app": "too-big"}},
        "spec": {"containers": [gpu_container(9)]},
    })

    def unschedulable():
        pod = kube.core.read_namespaced_pod("too-big", namespace)
        return any(c.type == "PodScheduled" and c.reason == "Unschedulable" for c in (pod.status.conditions or []))

    eventually(unschedulable, what="the 9-GPU pod to be marked Unschedulable")
    assert kube.core.read_namespaced_pod("too-big", namespace).spec.node_name is None


def test_suspending_a_job_removes_its_pods_and_resuming_brings_them_back(kube: Kube, namespace: str):
    kube.batch.create_namespaced_job(namespace, {
        "metadata": {"name": "train"},
        "spec": {
            "parallelism": 2,
            "completions": 2,
            "template": {
                "metadata": {"labels": {"job": "train"}},
                "spec": {"restartPolicy": "Never", "containers": [gpu_container(4)]},
            },
        },
    })
    eventually(lambda: len(running(kube, namespace, "job=train")) == 2, what="2 Running training pods")

    kube.batch.patch_namespaced_job("train", namespace, {"spec": {"suspend": True}})
    eventually(lambda: pods(kube, namespace, "job=train") == [], what="the suspended Job's pods to be deleted")
    job = kube.batch.read_namespaced_job("train", namespace)
    assert any(c.type == "Suspended" and c.status == "True" for c in job.status.conditions)

    kube.batch.patch_namespaced_job("train", namespace, {"spec": {"suspend": False}})
    eventually(lambda: len(running(kube, namespace, "job=train")) == 2, what="pods to return after resume")


def test_rbac_is_enforced_for_service_account_tokens(kube: Kube, namespace: str):
    """A ServiceAccount token authenticates, and is refused what no Role grants it."""
    kube.core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    rbac = client.RbacAuthorizationV1Api(kube.api)
    rbac.create_namespaced_role(namespace, {
        "metadata": {"name": "pod-reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
    })
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
    })
    token = kube.core.create_namespaced_service_account_token(
        "reader", namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token

    cfg = client.Configuration()
    cfg.host = kube.api.configuration.host
    cfg.ssl_ca_cert = kube.api.configuration.ssl_ca_cert
    cfg.verify_ssl = kube.api.configuration.verify_ssl
    cfg.api_key = {"authorization": f"Bearer {token}"}
    as_reader = client.CoreV1Api(client.ApiClient(cfg))

    def can_list() -> bool:
        try:
            as_reader.list_namespaced_pod(namespace)
            return True
        except client.ApiException as exc:
            assert exc.status == 403, exc  # RBAC caches may lag a moment; never 401
            return False

    eventually(can_list, timeout=20, what="the Role to take effect")
    with pytest.raises(client.ApiException) as info:
        as_reader.list_namespaced_secret(namespace)
    assert info.value.status == 403
    with pytest.raises(client.ApiException) as info:
        as_reader.list_namespaced_pod("kube-system")
    assert info.value.status == 403


def test_job_pods_run_until_their_declared_duration_then_succeed(kube: Kube, namespace: str):
    """Training pods keep running (no instant completion) unless gridshift.io/run-duration says otherwise."""
    for name, pod_annotations in (("finite", {RUN_DURATION_ANNOTATION: "4s"}), ("endless", {})):
        kube.batch.create_namespaced_job(namespace, {
            "metadata": {"name": name},
            "spec": {
                "template": {
                    "metadata": {"labels": {"job": name}, "annotations": pod_annotations},
                    "spec": {"restartPolicy": "Never", "containers": [gpu_container(1)]},
                },
            },
        })

    def complete(name: str) -> bool:
        conds = kube.batch.read_namespaced_job(name, namespace).status.conditions or []
        return any(c.type == "Complete" and c.status == "True" for c in conds)

    eventually(lambda: complete("finite"), timeout=60, what="the 4s Job to complete")
    assert len(running(kube, namespace, "job=endless")) == 1
    assert not complete("endless")

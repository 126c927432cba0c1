"""A secured Prometheus, as production runs it: TLS on its API with a private CA and basic auth
(Prometheus's own --web.config.file). Policies read it with the credentials in the Secret they
name; a wrong CA, a wrong password and a missing Secret each give a condition naming the cause."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from gridshift.api.powerpolicy import PowerPolicySpec
from gridshift.devcluster.binaries import find_prometheus
from gridshift.devcluster.controlplane import free_port
from gridshift.devcluster.pki import issue, new_ca
from gridshift.devcluster.prometheus import LocalPrometheus
from gridshift.operator.control import PolicyController
from gridshift.telemetry.prometheus import Access, PrometheusReader
from tests.conftest import Kube, eventually

bcrypt = pytest.importorskip("bcrypt")  # the dev extra installs it
pytestmark = [pytest.mark.prometheus, pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")]
if find_prometheus() is None:
    pytest.skip("prometheus is not installed (apt-get install prometheus); CI installs it", allow_module_level=True)

USER, PASSWORD = "gridshift", "s3cret-pw"
QUERY = "sum(DCGM_FI_DEV_POWER_USAGE)"


@dataclass
class Secured:
    url: str
    ca_pem: bytes


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    tmp = tmp_path_factory.mktemp("secured-prometheus")
    ca_cert, ca_key = new_ca("prometheus-ca")
    cert, key = issue(ca_cert, ca_key, "prometheus", server=True, ips=("127.0.0.1",))
    (tmp / "tls.crt").write_bytes(cert)
    (tmp / "tls.key").write_bytes(key)
    registry = CollectorRegistry()
    Gauge("DCGM_FI_DEV_POWER_USAGE", "GPU power (W)", ["gpu"], registry=registry).labels(gpu="0").set(650.0)
    port = free_port()
    server, _ = start_http_server(port, addr="127.0.0.1", registry=registry)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    prom = LocalPrometheus(tmp / "prometheus", [f"127.0.0.1:{port}"], web_config={
        "tls_server_config": {"cert_file": str(tmp / "tls.crt"), "key_file": str(tmp / "tls.key")},
        "basic_auth_users": {USER: hashed}}).start()
    try:
        yield Secured(prom.url, ca_cert)
    finally:
        prom.stop()
        server.shutdown()


def _read(url: str, access: Access):  # type: ignore[no-untyped-def]
    return PrometheusReader(url, timeout_s=3, access=access).read(QUERY, now=time.time(), lookback_s=30)


def test_the_right_ca_and_password_read_power(secured: Secured) -> None:
    right = Access(ca_pem=secured.ca_pem, basic=(USER, PASSWORD))
    reading = eventually(lambda: (lambda r: r if r.status == "ok" else None)(_read(secured.url, right)), 30,
                         what="a reading through TLS and basic auth")
    assert reading.latest_watts == pytest.approx(650.0)


def test_a_wrong_ca_or_password_says_which(secured: Secured) -> None:
    other_ca, _ = new_ca("someone-else")
    wrong_ca = _read(secured.url, Access(ca_pem=other_ca, basic=(USER, PASSWORD)))
    assert wrong_ca.status == "error" and "certificate is not trusted" in wrong_ca.reason, wrong_ca.reason
    system_store = _read(secured.url, Access(basic=(USER, PASSWORD)))
    assert system_store.status == "error" and "TLS" in system_store.reason, "verification is on by default"
    wrong_pw = _read(secured.url, Access(ca_pem=secured.ca_pem, basic=(USER, "guess")))
    assert wrong_pw.status == "error" and "credentials were refused" in wrong_pw.reason, wrong_pw.reason
    skipped = _read(secured.url, Access(verify=False, basic=(USER, PASSWORD)))
    assert skipped.status == "ok", "insecureSkipVerify reads without the CA"


def _secret(kube: Kube, namespace: str, name: str, data: dict[str, bytes]) -> None:
    kube.core.create_namespaced_secret(namespace, {"metadata": {"name": name}, "data": {
        k: base64.b64encode(v).decode() for k, v in data.items()}})


def _degraded(kube: Kube, namespace: str, url: str, secret: str) -> dict:
    spec = PowerPolicySpec.model_validate({
        "budget": {"capWatts": 10_000},
        "telemetry": {"prometheusUrl": url, "auth": {"secretRef": {"namespace": namespace, "name": secret}}}})
    result = PolicyController(kube.api).run_once(f"pp-{namespace}", spec, {}, now=time.time())
    return next(c for c in result.status["conditions"] if c["type"] == "Degraded")


@pytest.mark.cluster
def test_a_policy_reads_with_the_secret_it_names(kube: Kube, namespace: str, secured: Secured) -> None:
    missing = _degraded(kube, namespace, secured.url, "prom-creds")
    assert missing["reason"] == "PrometheusAuthFailed" and f"Secret {namespace}/prom-creds" in missing["message"]
    assert "not found" in missing["message"]
    _secret(kube, namespace, "prom-wrong", {"ca.crt": secured.ca_pem, "username": USER.encode(),
                                             "password": b"guess"})
    wrong = _degraded(kube, namespace, secured.url, "prom-wrong")
    assert wrong["reason"] == "TelemetryError" and "credentials were refused" in wrong["message"], wrong
    _secret(kube, namespace, "prom-creds", {"ca.crt": secured.ca_pem, "username": USER.encode(),
                                            "password": PASSWORD.encode()})
    right = _degraded(kube, namespace, secured.url, "prom-creds")
    # Through: the policy's scope matches no nodes here, so its query finds no series, said as such.
    assert right["reason"] == "TelemetryMissing", right
    half = {"ca.crt": secured.ca_pem, "username": USER.encode()}
    _secret(kube, namespace, "prom-half", half)
    assert "username with password" in _degraded(kube, namespace, secured.url, "prom-half")["message"]

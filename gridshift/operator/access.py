"""TLS and credentials for the Prometheus a policy reads (``spec.telemetry.auth``), from the
Secret it names or from the operator's own files (``--prometheus-ca-file``,
``--prometheus-token-file``: a projected ServiceAccount token, re-read as it rotates)."""

from __future__ import annotations

import base64
import time
from pathlib import Path

from kubernetes import client

from gridshift.api.powerpolicy import PowerPolicySpec
from gridshift.telemetry.prometheus import Access

SECRET_TTL_S = 30.0  # a Secret is read again after this long (rotated credentials are picked up)


class AccessResolver:
    def __init__(self, api: client.ApiClient, ca_file: str | None = None, token_file: str | None = None):
        self.core = client.CoreV1Api(api)
        self.ca_file = ca_file
        self.token_file = token_file
        self._secrets: dict[tuple[str, str], tuple[float, dict[str, bytes]]] = {}

    def for_policy(self, spec: PowerPolicySpec, now: float | None = None) -> Access | str:
        """The policy's access, or why it cannot be had (a condition message naming the cause)."""
        auth = spec.telemetry.auth
        headers = tuple(sorted((h.name, h.value) for h in auth.headers))
        if auth.secret_ref is None:
            try:
                ca = Path(self.ca_file).read_bytes() if self.ca_file else None
                token = Path(self.token_file).read_text().strip() if self.token_file else None
            except OSError as exc:
                return f"the operator's Prometheus credentials could not be read: {exc}"
            return Access(verify=not auth.insecure_skip_verify, ca_pem=ca, token=token or None, headers=headers)
        ref = auth.secret_ref
        data = self._secret(ref.namespace, ref.name, time.monotonic() if now is None else now)
        if isinstance(data, str):
            return data
        where = f"Secret {ref.namespace}/{ref.name} (spec.telemetry.auth.secretRef)"
        if ("username" in data) != ("password" in data) or ("tls.crt" in data) != ("tls.key" in data):
            return f"{where} must hold username with password, and tls.crt with tls.key"
        try:
            basic = (data["username"].decode(), data["password"].decode()) if "username" in data else None
            token = data["token"].decode().strip() if "token" in data else None
        except UnicodeDecodeError:
            return f"{where}: username, password and token must be UTF-8 text"
        return Access(verify=not auth.insecure_skip_verify, ca_pem=data.get("ca.crt"), token=token or None,
                      basic=basic, client_cert_pem=data.get("tls.crt"), client_key_pem=data.get("tls.key"),
                      headers=headers)

    def _secret(self, namespace: str, name: str, now: float) -> dict[str, bytes] | str:
        cached = self._secrets.get((namespace, name))
        if cached is not None and now - cached[0] < SECRET_TTL_S:
            return cached[1]
        try:
            secret = self.core.read_namespaced_secret(name, namespace)
        except client.ApiException as exc:
            why = {404: "not found", 403: "forbidden to the operator (the chart's rbac.readPrometheusSecrets and "
                                          "rbac.secretNamespaces)"}.get(exc.status, f"{exc.status} {exc.reason}")
            return f"Secret {namespace}/{name} (spec.telemetry.auth.secretRef): {why}"
        data = {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}
        self._secrets[(namespace, name)] = (now, data)
        return data

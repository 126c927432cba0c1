"""A real Prometheus (``binaries.find_prometheus``: Debian's package, any on PATH, or one built from
its Go module) on loopback, scraping the given targets every second. Used by the test suite and the
demo."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import yaml

from gridshift.devcluster.binaries import find_prometheus
from gridshift.devcluster.controlplane import ClusterError, free_port, http_ok


class LocalPrometheus:
    """``web_config``: Prometheus's --web.config.file (TLS and basic auth on its own API), as a secured
    production Prometheus has it; None: plain HTTP, open."""

    def __init__(self, directory: Path, targets: list[str], scrape_interval_s: int = 1, binary: str | None = None,
                 web_config: dict | None = None):
        self.dir = directory
        self.web_config = web_config
        self.targets = targets
        self.interval = scrape_interval_s
        found = binary or find_prometheus()
        if found is None:
            raise ClusterError("prometheus not found on PATH: run `gridshift dev cluster build --prometheus` "
                               "(builds it from its Go module), install Debian's `prometheus` package, "
                               "or set GRIDSHIFT_PROMETHEUS to its path")
        self.binary = found
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.web_config and "tls_server_config" in self.web_config else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def _listening(self) -> bool:
        if self.web_config is None:
            return http_ok(f"{self.url}/-/ready")
        try:  # secured: any HTTP answer (401 included) means it serves
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def start(self, timeout: float = 60.0) -> LocalPrometheus:
        self.dir.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": f"{self.interval}s", "evaluation_interval": f"{self.interval}s"},
            "scrape_configs": [{"job_name": "gridshift", "static_configs": [{"targets": self.targets}]}],
        }
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        web = []
        if self.web_config is not None:
            (self.dir / "web.yml").write_text(yaml.safe_dump(self.web_config))
            web = [f"--web.config.file={self.dir / 'web.yml'}"]
        log = open(self.dir / "prometheus.log", "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={self.dir / 'prometheus.yml'}", f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn", *web],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = (self.dir / "prometheus.log").read_text(errors="replace")[-2000:]
                raise ClusterError(f"prometheus exited with code {self.proc.returncode}:\n{tail}")
            if self._listening():
                return self
            time.sleep(0.2)
        self.stop()
        raise ClusterError(f"prometheus not ready after {timeout:.0f}s; log in {self.dir / 'prometheus.log'}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

"""`inventory serve` as a child process on a free loopback port: the one helper
that the chaos tool, the benchmarks and the tests use to run the real server."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ApiProcess:
    """One server process; keeps its port across kill and restart.

    `defaults` (a class attribute, for subclasses) and then `env` are laid over
    the current environment; `ready_path` is polled until it answers 200."""

    defaults: dict[str, str] = {"INVENTORY_SEED_DEMO": "0", "INVENTORY_LOG_LEVEL": "WARNING"}
    extra_args: tuple[str, ...] = ()  # more `serve` options, e.g. ("--workers", "2")
    ready_path = "/healthz"

    def __init__(self, database_url: str, log_path: Path, env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {**os.environ, "INVENTORY_DATABASE_URL": database_url,
                    **self.defaults, **(env or {})}
        self.process: subprocess.Popen | None = None

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text()[-3000:]
        except OSError:
            return f"(no log at {self.log_path})"

    def start(self, timeout: float = 60) -> "ApiProcess":
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "inventory.cli", "serve", "--port", str(self.port),
                 *self.extra_args],
                env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"API exited early:\n{self._log_tail()}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"API not ready in {timeout}s:\n{self._log_tail()}")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

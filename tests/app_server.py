"""`python app.py` in a subprocess on its own data folder and port, for tests that need the real app
(the browser suite, the file-serving and host tests): start, stop (SIGTERM, then SIGKILL), kill, restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT = 60.0


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on at `host` (an IPv4 or IPv6 address) right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class AppServer:
    """`python app.py` on a data dir; start, stop (SIGTERM, then SIGKILL) and restart on the same dir and port."""

    def __init__(self, root: Path, *, sim_latency: float | None = None, port: int | None = None,
                 host: str = "127.0.0.1", env: dict[str, str] | None = None) -> None:
        self.root = root
        self.extra_env = dict(env or {})  # e.g. COLLABVR_BACKENDS: backends registered for a test
        self.data_dir = root / "data"
        self.sim_latency = sim_latency
        self.host = host
        self.port = port or free_port(host)
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{name}:{self.port}/"

    def start(self) -> "AppServer":
        assert self.proc is None, "already running"
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "TMPDIR": str(tmp),
               "GRADIO_TEMP_DIR": str(self.root / "gradio"), "PYTHONUNBUFFERED": "1"}
        env.pop("COLLABVR_AUTH", None)
        env.pop("COLLABVR_DATA_DIR", None)
        env.update(self.extra_env)
        cmd = [sys.executable, "app.py", "--host", self.host, "--port", str(self.port),
               "--data-dir", str(self.data_dir)]
        if self.sim_latency is not None:
            cmd += ["--sim-latency", str(self.sim_latency)]
        self.starts += 1
        self.log = self.root / f"app-{self.starts}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"app.py did not answer on {self.url} within {START_TIMEOUT:.0f} s:\n{self.log_text()}")

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def kill(self) -> None:
        """Die at once, as a crash or a power cut would: no clean shutdown of anything in flight."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def restart(self) -> "AppServer":
        self.stop()
        return self.start()

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

"""A real Triton Inference Server for a bundle on x86 (``jetseg serve``), from NVIDIA's PyTriton wheel.

``nvidia-pytriton`` ships the ``tritonserver`` binary, the Python backend and one backend stub per Python
version. :func:`write_serving_repository` writes a model repository whose model is
:mod:`~jetseg.jetson.serving.triton_model` (a jetseg runner behind Triton's dynamic batching);
:class:`TritonServer` lays out the backend folder with this interpreter's stub, starts the binary bound to
``host`` (localhost by default) and waits until it is ready. The stub loads the libpython of the interpreter
that runs it, so this interpreter's ``LIBDIR`` goes first on ``LD_LIBRARY_PATH`` (a pyenv Python otherwise
gets Debian's older libpython and fails) and its ``bin`` first on ``PATH``.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional

from jetseg.bundle import Bundle
from jetseg.errors import JetsegError
from jetseg.models.triton import DEFAULT_QUEUE_DELAY_US, model_config
from jetseg.optional import require

log = logging.getLogger("jetseg.serve")

MODEL_PY = "from jetseg.jetson.serving.triton_model import TritonPythonModel  # noqa: F401\n"


def write_serving_repository(repo: Path, bundle: Bundle, name: str = "", backend: str = "onnxrt",
                             backend_options: Optional[Dict[str, Any]] = None, max_batch_size: int = 8,
                             queue_delay_us: int = DEFAULT_QUEUE_DELAY_US, instances: int = 1) -> Path:
    """``REPO/<name>/{config.pbtxt, 1/model.py}`` serving ``bundle`` through jetseg's ``backend`` runner."""
    folder = Path(repo) / (name or bundle.name)
    (folder / "1").mkdir(parents=True, exist_ok=True)
    (folder / "1" / "model.py").write_text(MODEL_PY)
    params = {"bundle": str(Path(bundle.path).resolve()), "backend": backend,
              "backend_options": json.dumps(backend_options or {})}
    (folder / "config.pbtxt").write_text(model_config(
        bundle.spec, folder.name, backend="python", max_batch_size=max_batch_size, queue_delay_us=queue_delay_us,
        kind="KIND_CPU", instances=instances, parameters=params))
    return folder


def distribution() -> Path:
    """The ``tritonserver`` folder of the installed PyTriton wheel (bin/, backends/, python_backend_stubs/).

    Found, not imported: ``import pytriton`` needs its Python dependencies (gevent, ...), which setup.sh leaves
    out (``--no-deps``: it pins numpy<2), and jetseg uses only the binary, the backend and the stubs."""
    import importlib.util

    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        require("pytriton", "jetseg serve (pip install 'jetseg[serve]', x86 only)")  # raises: not installed
    assert spec is not None and spec.submodule_search_locations is not None
    return Path(list(spec.submodule_search_locations)[0]) / "tritonserver"


def prepare_backends(work: Path) -> Path:
    """``WORK/backends`` with Triton's Python backend and this interpreter's stub; returns it."""
    dist = distribution()
    version = "%d.%d" % sys.version_info[:2]
    stub = dist / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        found = sorted(p.name for p in (dist / "python_backend_stubs").iterdir())
        raise JetsegError("PyTriton has no Python backend stub for Python %s (it has %s); run jetseg serve with "
                          "one of those" % (version, ", ".join(found)))
    python = Path(work) / "backends" / "python"
    python.mkdir(parents=True, exist_ok=True)
    for item in [p for p in (dist / "backends" / "python").iterdir() if p.is_file()] + [stub]:
        target = python / item.name
        if not target.is_file() or target.stat().st_size != item.stat().st_size:  # a running stub is busy
            shutil.copy(item, target)
    return python.parent


def server_environment() -> Dict[str, str]:
    """The environment of the server process: this Python's libpython and PyTriton's libraries found first."""
    env = dict(os.environ)
    libs = [str(sysconfig.get_config_var("LIBDIR") or ""), str(distribution().parent.parent / "nvidia_pytriton.libs")]
    env["LD_LIBRARY_PATH"] = ":".join([p for p in libs if p] + ([env["LD_LIBRARY_PATH"]] if env.get("LD_LIBRARY_PATH")
                                                               else []))
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


class TritonServer:
    """One ``tritonserver`` process for a model repository, bound to ``host``.

    Args:
        repo: the model repository.
        work: a folder for the backends and the server's log.
        host: address to bind (``127.0.0.1`` by default; ``0.0.0.0`` serves the network).
        http_port, grpc_port, metrics_port: Triton's three endpoints (health ``/v2/health/ready`` on HTTP,
            Prometheus metrics on ``metrics_port``).
    """

    def __init__(self, repo: Path, work: Path, host: str = "127.0.0.1", http_port: int = 8000,
                 grpc_port: int = 8001, metrics_port: int = 8002) -> None:
        self.repo, self.work, self.host = Path(repo), Path(work), host
        self.http_port, self.grpc_port, self.metrics_port = http_port, grpc_port, metrics_port
        self.process: Optional[subprocess.Popen] = None
        self.log_path = self.work / "tritonserver.log"

    def command(self, backends: Path) -> List[str]:
        return [str(distribution() / "bin" / "tritonserver"), "--model-repository", str(self.repo),
                "--backend-directory", str(backends), "--http-address", self.host, "--http-port",
                str(self.http_port), "--grpc-address", self.host, "--grpc-port", str(self.grpc_port),
                "--metrics-address", self.host, "--metrics-port", str(self.metrics_port),
                "--allow-gpu-metrics", "false", "--exit-on-error", "true"]

    def start(self, timeout_s: float = 60.0) -> TritonServer:
        """Start the server and wait until it says ready; a server that exits or stays unready is a JetsegError
        with the last lines of its log."""
        backends = prepare_backends(self.work)
        with open(self.log_path, "wb") as logfile:
            self.process = subprocess.Popen(self.command(backends), stdout=logfile, stderr=subprocess.STDOUT,
                                            env=server_environment())
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise JetsegError("tritonserver exited with code %d while starting: %s"
                                  % (self.process.returncode, self.log_tail()))
            if self.ready():
                return self
            time.sleep(0.2)
        self.stop()
        raise JetsegError("tritonserver not ready after %gs: %s" % (timeout_s, self.log_tail()))

    def ready(self) -> bool:
        """True when ``/v2/health/ready`` answers 200."""
        url = "http://%s:%d/v2/health/ready" % (self.host if self.host != "0.0.0.0" else "127.0.0.1", self.http_port)
        try:
            with urllib.request.urlopen(url, timeout=1.0) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def log_tail(self, lines: int = 5) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.is_file() else ""
        tail = [line for line in text.splitlines() if line.strip()][-lines:]
        return " | ".join(tail) or "(no output; see %s)" % self.log_path

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout_s``)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> TritonServer:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

"""``jetseg bench --triton`` (or ``--triton-url``): rows for a Triton Inference Server, against the local runner
in the same run.

The server serves the reference bundle (FP32) through the same runner the local row runs (``onnxrt``):

- ``--triton`` starts ``jetseg serve``'s server (PyTriton's ``tritonserver``, :mod:`jetseg.jetson.serving.server`)
  on free loopback ports with two models: ``<name>-b1`` (``max_batch_size 1``: every request runs alone) and
  ``<name>-dyn`` (Triton's dynamic batching, ``max_batch_size`` and queue delay as asked); it is stopped after.
- ``--triton-url grpc://HOST:PORT`` measures the model ``--triton-model`` of a server already running (its
  batching is what its config.pbtxt says, read from the server).

A client is a thread with its own ``triton`` runner (its own gRPC connection) sending preprocessed frames
(``NCHW float32``, batch 1 per request) back to back; the row's ``fps`` is all clients' frames over the wall
time, its latency the per-request time. The local row is one client calling the local runner the same way.
Each row gets ``seconds`` in ``ROUNDS`` rounds, the rows taking turns in every round, so load that comes and
goes on a shared machine hits them alike. For a server it started, the row also says how many frames Triton
ran per model execution (``mean_batch``, from its metrics ``nv_inference_request_success`` /
``nv_inference_exec_count``). Before timing, every client sends the same frames at once and its masks (``Spec.decode``) are
compared with the local runner's: ``masks_identical`` and ``max_abs_logit_diff`` say how they compare.
"""
from __future__ import annotations

import socket
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Dict, List, Optional, Sequence, Tuple

import numpy as np

from jetseg.benchmarks.timing import summarize
from jetseg.bundle import Bundle
from jetseg.errors import JetsegError
from jetseg.jetson.runners import open_runner
from jetseg.jetson.runners.base import Runner

KIND = "clients"  # the rows' kind: measured by concurrent client loops
ROUNDS = 3  # every row is timed in this many rounds, the rows interleaved


@dataclass
class TritonSettings:
    """What the Triton rows measure (``jetseg bench --triton ...``)."""

    clients: int = 4
    url: Optional[str] = None  # an existing server; None: start one on loopback
    model: Optional[str] = None  # its model (default: the bundle's name)
    max_batch: int = 8  # the started server's dynamic batching
    queue_delay_us: int = 2000
    seconds: float = 5.0  # timed seconds per row
    check_frames: int = 8  # frames every client sends for the mask check

    def check(self) -> None:
        if self.clients < 1 or self.seconds <= 0 or self.max_batch < 1 or self.check_frames < 1:
            raise JetsegError("--triton-clients %d, --triton-seconds %s; expected at least 1 client and a positive "
                              "time" % (self.clients, self.seconds))

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


Client = Callable[[], ContextManager[Any]]  # a runner to use in a with-block (activated on entry)


def _client_loops(open_client: Client, inputs: Sequence[np.ndarray], clients: int,
                  seconds: float) -> Tuple[int, float, List[float]]:
    """``clients`` threads, each with its own runner, calling ``infer`` back to back for ``seconds`` after a
    common start; returns ``(frames, wall seconds, per-request ms)``. A client's error is raised here."""
    counts = [0] * clients
    samples: List[List[float]] = [[] for _ in range(clients)]
    errors: List[BaseException] = []
    deadline: List[float] = []  # set once, when every client is ready
    ready = threading.Barrier(clients + 1, action=lambda: deadline.append(time.perf_counter() + seconds))

    def loop(i: int) -> None:
        try:
            with open_client() as runner:
                for x in inputs[:2]:  # warm-up: connection and the server's first calls
                    runner.infer(x)
                ready.wait()
                j = i
                while time.perf_counter() < deadline[0]:
                    start = time.perf_counter()
                    runner.infer(inputs[j % len(inputs)])
                    samples[i].append((time.perf_counter() - start) * 1e3)
                    counts[i] += 1
                    j += 1
        except threading.BrokenBarrierError:
            pass
        except BaseException as exc:  # re-raised in the caller
            errors.append(exc)
            ready.abort()

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    try:
        ready.wait()
    except threading.BrokenBarrierError:
        pass
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return sum(counts), time.perf_counter() - (deadline[0] - seconds), [v for s in samples for v in s]


def _masks(bundle: Bundle, open_client: Client, inputs: Sequence[np.ndarray], clients: int,
           local: List[np.ndarray]) -> Tuple[bool, float]:
    """Every client sends ``inputs`` at once (rotated, so the server can batch different frames); returns
    whether every mask equals the local runner's, and the largest logit difference."""
    spec = bundle.spec
    results: List[Optional[List[np.ndarray]]] = [None] * clients
    errors: List[BaseException] = []

    def client(i: int) -> None:
        try:
            with open_client() as runner:
                order = [(i + k) % len(inputs) for k in range(len(inputs))]
                outs = {k: runner.infer(inputs[k]) for k in order}
            results[i] = [outs[k] for k in range(len(inputs))]
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    identical, diff = True, 0.0
    for outs in results:
        assert outs is not None
        for got, want in zip(outs, local):
            identical = identical and bool(np.array_equal(spec.decode(got), spec.decode(want)))
            diff = max(diff, float(np.max(np.abs(got - want))))
    return identical, diff


def _base(bundle: Bundle, name: str, backend: str, clients: int, extra: Dict[str, Any]) -> Dict[str, Any]:
    row: Dict[str, Any] = {"bundle": name, "bundle_path": str(bundle.path), "backend": backend,
                           "precision": bundle.precision, "kind": KIND, "role": "triton", "batch": 1,
                           "clients": clients}
    row.update(extra)
    return row


def _row(done: Dict[str, Any], samples: List[float]) -> Dict[str, Any]:
    """A row's timing fields: frames, seconds, fps (all clients' frames over the wall time), latency."""
    stats = summarize(samples) if samples else None
    wall = done["seconds"]
    return {"frames": done["frames"], "seconds": round(wall, 3), "runs": done["frames"],
            "fps": round(done["frames"] / wall, 3) if wall > 0 else None,
            "latency_ms": stats.latency_ms() if stats else {}}


def _started(bundle: Bundle, settings: TritonSettings, backend: str, options: Dict[str, Any], work: Path) -> Any:
    from jetseg.jetson.serving.server import TritonServer, write_serving_repository

    for suffix, size in (("-b1", 1), ("-dyn", settings.max_batch)):
        write_serving_repository(work / "repo", bundle, name=bundle.name + suffix, backend=backend,
                                 backend_options=options, max_batch_size=size, queue_delay_us=settings.queue_delay_us)
    server = TritonServer(work / "repo", work, http_port=free_port(), grpc_port=free_port(),
                          metrics_port=free_port())
    return server.start(timeout_s=120)


def _server_batching(url: str, model: str) -> Dict[str, Any]:
    """What the server's config says about batching (max_batch_size, dynamic batching's queue delay)."""
    from jetseg.jetson.runners.triton import grpc_target
    from jetseg.optional import require

    grpc = require("tritonclient.grpc", "--triton-url (pip install 'jetseg[serve]')")
    client = grpc.InferenceServerClient(grpc_target(url))
    try:
        config = client.get_model_config(model, as_json=True)["config"]
    finally:
        client.close()
    dynamic = config.get("dynamic_batching")
    return {"max_batch_size": int(config.get("max_batch_size", 0)),
            "queue_delay_us": int(dynamic.get("max_queue_delay_microseconds", 0)) if dynamic is not None else None}


def _executions(server: Any, model: str) -> Optional[Tuple[float, float]]:
    """``(requests, executions)`` of ``model`` so far, from the started server's Prometheus metrics
    (``nv_inference_request_success``, ``nv_inference_exec_count``); None when they cannot be read."""
    import urllib.request

    totals = {"nv_inference_request_success": 0.0, "nv_inference_exec_count": 0.0}
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % server.metrics_port, timeout=5) as answer:
            text = answer.read().decode("utf-8", "replace")
    except OSError:
        return None
    for line in text.splitlines():
        name, _, rest = line.partition("{")
        if name in totals and 'model="%s"' % model in rest:
            totals[name] += float(rest.rsplit(" ", 1)[-1])
    return totals["nv_inference_request_success"], totals["nv_inference_exec_count"]


def _mean_batch(before: Optional[Tuple[float, float]], after: Optional[Tuple[float, float]]) -> Optional[float]:
    """Frames per model execution between two :func:`_executions` readings (the batches Triton formed)."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round((after[0] - before[0]) / (after[1] - before[1]), 3)


def triton_rows(bundle: Bundle, inputs: List[np.ndarray], settings: TritonSettings, backend: str = "onnxrt",
                threads: int = 0, name: str = "") -> Tuple[List[Dict[str, Any]], Dict[str, List[float]]]:
    """The local row and the Triton rows (see the module docstring) of ``bundle`` (``name`` in the report);
    returns ``(rows, latency samples by plot label)``."""
    name = name or bundle.name
    settings.check()
    options = {"threads": threads} if threads else {}
    checked = inputs[:settings.check_frames]
    server = None
    work = tempfile.TemporaryDirectory(prefix="jetseg-bench-triton-")
    try:
        with open_runner(backend, bundle, **options) as local:
            expected = [local.infer(x) for x in checked]
            if settings.url is None:
                server = _started(bundle, settings, backend, options, Path(work.name))
                url = "grpc://127.0.0.1:%d" % server.grpc_port
                plan = [(bundle.name + "-b1", 1), (bundle.name + "-b1", settings.clients),
                        (bundle.name + "-dyn", settings.clients)]
                where = "jetseg serve's tritonserver (PyTriton) on 127.0.0.1, %s runner inside" % backend
            else:
                url, model = settings.url, settings.model or bundle.name
                plan = [(model, 1), (model, settings.clients)] if settings.clients > 1 else [(model, 1)]
                where = "an existing server (--triton-url)"
            rows = [_base(bundle, name, backend, 1, {"runner": local.describe(), "server": None})]
            for model, clients in plan:
                identical, diff = _masks(bundle, _client(bundle, url, model), checked, clients, expected)
                rows.append(_base(bundle, name, "triton", clients, {
                    "server": {"url": url, "model": model, "where": where, "batching": _server_batching(url, model),
                               "mean_batch": None},
                    "masks_identical": identical, "max_abs_logit_diff": diff,
                    "runner": {"backend": "triton", "url": url, "model": model}}))
            clients_of: List[Client] = [lambda: _Borrowed(local)] + [_client(bundle, url, m) for m, _ in plan]
            latencies = _interleaved(rows, clients_of, inputs, settings, server)
    finally:
        if server is not None:
            server.stop()
        work.cleanup()
    base = rows[0]["fps"]
    for row in rows[1:]:
        row["vs_local_batch1"] = round(row["fps"] / base, 4) if base and row["fps"] else None
    return rows, latencies


def _client(bundle: Bundle, url: str, model: str) -> Client:
    return lambda: open_runner("triton", bundle, url=url, model=model)


def _interleaved(rows: List[Dict[str, Any]], clients_of: List[Client], inputs: Sequence[np.ndarray],
                 settings: TritonSettings, server: Any) -> Dict[str, List[float]]:
    """Time the rows in ``ROUNDS`` rounds of ``seconds / ROUNDS`` each, one row after the other in every round
    (load that comes and goes on a shared machine then hits every row alike); fills each row's frames, seconds,
    fps, latency and the batches the started server formed; returns the latency samples by plot label."""
    frames, walls = [0] * len(rows), [0.0] * len(rows)
    samples: List[List[float]] = [[] for _ in rows]
    runs: List[List[Tuple[float, float]]] = [[] for _ in rows]  # (requests, executions) per round
    for _ in range(ROUNDS):
        for i, (row, client) in enumerate(zip(rows, clients_of)):
            model = (row["server"] or {}).get("model")
            before = _executions(server, model) if server is not None and model else None
            count, wall, times = _client_loops(client, inputs, row["clients"], settings.seconds / ROUNDS)
            after = _executions(server, model) if server is not None and model else None
            if before is not None and after is not None:
                runs[i].append((after[0] - before[0], after[1] - before[1]))
            frames[i] += count
            walls[i] += wall
            samples[i] += times
    out = {}
    for i, row in enumerate(rows):
        done = _row({"frames": frames[i], "seconds": walls[i]}, samples[i])
        row.update(done)
        if runs[i]:
            row["server"]["mean_batch"] = _mean_batch((0.0, 0.0), (sum(r[0] for r in runs[i]),
                                                                   sum(r[1] for r in runs[i])))
        out[triton_label(row)] = samples[i]
    return out


def triton_label(row: Dict[str, Any]) -> str:
    """``bundle / backend, N client(s)[, model]``: the rows' name in plots."""
    server = row.get("server") or {}
    return "%s / %s, %d client(s)%s" % (row["bundle"], row["backend"], row["clients"],
                                        ", %s" % server["model"] if server else "")


def triton_note(row: Dict[str, Any]) -> str:
    """The notes cell of a Triton row in report.md."""
    server = row.get("server")
    if not server:
        return "local runner, %d client: the Triton rows' baseline" % row["clients"]
    batching = server.get("batching") or {}
    how = ("dynamic batching, max %d, %s us" % (batching["max_batch_size"], batching.get("queue_delay_us"))
           if batching.get("max_batch_size", 0) > 1 and batching.get("queue_delay_us") is not None
           else "no batching (max_batch_size %s)" % batching.get("max_batch_size"))
    if server.get("mean_batch") is not None:
        how += "; %s frames per model run" % server["mean_batch"]
    return ("%d client(s) to model %s (%s); masks identical to local: %s (max logit diff %.2g); %sx local batch 1"
            % (row["clients"], server["model"], how, "yes" if row.get("masks_identical") else "NO",
               row.get("max_abs_logit_diff") or 0.0, row.get("vs_local_batch1")))


class _Borrowed:
    """An active runner lent to a client loop: entering and leaving leave it active."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def __enter__(self) -> Runner:
        return self.runner

    def __exit__(self, *exc: Any) -> None:
        return None

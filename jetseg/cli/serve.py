"""`jetseg serve`: a real Triton Inference Server for a bundle on x86 (NVIDIA's PyTriton wheel)."""
from __future__ import annotations

import argparse

HELP = "serve a bundle with Triton Inference Server (x86; pip install 'jetseg[serve]'): gRPC, HTTP, metrics"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", metavar="BUNDLE", help="the bundle to serve")
    parser.add_argument("--name", default=None, help="model name clients ask for (default: the bundle's name)")
    parser.add_argument("--backend", default="onnxrt", help="the jetseg runner the server runs (default onnxrt)")
    parser.add_argument("--backend-option", metavar="K=V", action="append", default=[],
                        help="an option of that runner (repeatable), e.g. threads=2")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1; 0.0.0.0 serves the network)")
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--http-port", type=int, default=8000, help="HTTP, with health at /v2/health/ready")
    parser.add_argument("--metrics-port", type=int, default=8002, help="Prometheus metrics at /metrics")
    parser.add_argument("--max-batch", type=int, default=8, help="Triton's dynamic batching: largest batch")
    parser.add_argument("--queue-delay-us", type=int, default=2000, help="dynamic batching: longest wait to fill a batch")
    parser.add_argument("--instances", type=int, default=1, help="model instances (each one runner)")
    parser.add_argument("--workdir", default=None, metavar="DIR",
                        help="folder for the model repository, backends and the server log (default: a temporary one)")


def run(args: argparse.Namespace) -> int:
    import tempfile
    import time
    from pathlib import Path

    from jetseg.bundle import Bundle
    from jetseg.errors import JetsegError
    from jetseg.jetson.runners import RUNNERS
    from jetseg.jetson.serving.server import TritonServer, write_serving_repository
    from jetseg.options import parse_assignments

    if args.max_batch < 1:
        raise JetsegError("--max-batch %d: expected 1 or more (the Python backend batches any model)" % args.max_batch)
    RUNNERS.get(args.backend)  # an unknown name fails here, with the known ones
    bundle = Bundle(args.bundle)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="jetseg-serve-"))
    folder = write_serving_repository(work / "repo", bundle, name=args.name or "", backend=args.backend,
                                      backend_options=parse_assignments(args.backend_option, "--backend-option"),
                                      max_batch_size=args.max_batch, queue_delay_us=args.queue_delay_us,
                                      instances=args.instances)
    server = TritonServer(work / "repo", work, host=args.host, http_port=args.http_port, grpc_port=args.grpc_port,
                          metrics_port=args.metrics_port)
    with server:
        print("serving %s as model %r: grpc://%s:%d (jetseg run --backend triton --backend-option url=grpc://%s:%d "
              "--backend-option model=%s), health http://%s:%d/v2/health/ready, metrics http://%s:%d/metrics; "
              "log %s; Ctrl-C stops" % (bundle.path, folder.name, args.host, args.grpc_port, args.host,
                                          args.grpc_port, folder.name, args.host, args.http_port, args.host,
                                          args.metrics_port, server.log_path), flush=True)
        while server.process is not None and server.process.poll() is None:
            time.sleep(0.5)
        raise JetsegError("tritonserver exited with code %s: %s" % (server.process and server.process.returncode,
                                                                     server.log_tail()))

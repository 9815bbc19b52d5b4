"""``python -m jupyter_modelhub.modelserver REF --hub PATH [options]``: serve one model version.

Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT), 2 for bad arguments, 3 when the model
cannot be loaded, 4 when the server cannot listen. See ``process.py`` for the READY/FAILED lines.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import Any

from .process import serve


def _admin_port(value: str) -> int | None:
    if value.lower() in ("off", "none"):
        return None
    port = int(value)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError("a port from 0 to 65535, or 'off'")
    return port


def _fraction(value: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError("a number from 0 to 1")
    return number


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        number = kind(value)
        if number <= 0:
            raise argparse.ArgumentTypeError("must be positive")
        return number

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jupyter_modelhub.modelserver",
        description="Serve one registered model version over the Open Inference Protocol v2, "
        "MLflow scoring and Prometheus metrics.",
    )
    parser.add_argument("ref", help="the version to serve: NAME, NAME@vX.Y.Z or NAME#STAGE")
    parser.add_argument("--hub", help="the hub's folder (default: $MODELHUB_HUB or ~/modelhub)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind (0 = any free one)")
    parser.add_argument(
        "--fd",
        type=int,
        help="serve on this inherited, already-listening socket instead of --host/--port",
    )
    parser.add_argument(
        "--admin-port",
        type=_admin_port,
        default=0,
        help="also serve on 127.0.0.1:PORT for probes (0 = a free port, 'off' = none)",
    )
    parser.add_argument("--deployment", default="", help="deployment name (metrics label)")
    parser.add_argument("--variant", help="variant name (metrics label, prediction log)")
    parser.add_argument("--log-dir", help="folder for the prediction log (off when not given)")
    parser.add_argument(
        "--runtime",
        choices=("auto", "onnx", "sklearn"),
        default="auto",
        help="auto prefers the version's ONNX file when it has one",
    )
    parser.add_argument(
        "--max-batch-size",
        type=_positive(int),
        help="rows per model call when coalescing concurrent requests; 1 turns batching off "
        "(default: 32 for scikit-learn, 1 for ONNX, where it was measured not to help)",
    )
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=1.0,
        help="longest wait for a batch to fill under concurrency (default 1)",
    )
    parser.add_argument(
        "--model-thread",
        action="store_true",
        help="run the model in a worker thread instead of on the event loop",
    )
    parser.add_argument(
        "--sample-rate", type=_fraction, default=1.0, help="share of requests logged (default 1)"
    )
    parser.add_argument(
        "--log-rows-per-second",
        type=_positive(float),
        default=1000.0,
        help="at most this many rows logged per second (default 1000)",
    )
    parser.add_argument(
        "--log-flush-rows", type=_positive(int), default=10_000, help="rows per log file"
    )
    parser.add_argument(
        "--log-flush-seconds",
        type=_positive(float),
        default=10.0,
        help="write buffered log rows at least this often",
    )
    parser.add_argument(
        "--max-body-mb",
        type=_positive(float),
        default=10.0,
        help="largest request body accepted, in MB (default 10)",
    )
    parser.add_argument(
        "--drain-seconds",
        type=_positive(float),
        default=5.0,
        help="longest wait for in-flight requests on SIGTERM (default 5)",
    )
    parser.add_argument(
        "--lifeline",
        type=int,
        help="an inherited pipe's read end: drain and exit when it reaches EOF (its writer, "
        "the supervisor, is gone)",
    )
    parser.add_argument(
        "--traffic",
        help="a traffic policy as JSON (what a deployment's YAML holds under traffic:): also "
        "serve its challengers and route requests between them",
    )
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=("debug", "info", "warning", "error"),
        help="server log level (stderr); debug includes an access log",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return serve(
        args.ref,
        args.hub,
        host=args.host,
        port=args.port,
        fd=args.fd,
        admin_port=args.admin_port,
        deployment=args.deployment,
        variant=args.variant,
        log_dir=args.log_dir,
        runtime=args.runtime,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        model_thread=args.model_thread,
        sample_rate=args.sample_rate,
        log_rows_per_second=args.log_rows_per_second,
        log_flush_rows=args.log_flush_rows,
        log_flush_seconds=args.log_flush_seconds,
        max_body_mb=args.max_body_mb,
        drain_seconds=args.drain_seconds,
        lifeline=args.lifeline,
        traffic=args.traffic,
    )


if __name__ == "__main__":
    sys.exit(main())

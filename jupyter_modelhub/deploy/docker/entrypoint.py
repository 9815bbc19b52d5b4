"""The entrypoint of model containers: ``python -m jupyter_modelhub.deploy.docker.entrypoint
REF [--host H] [--port P] [model server options]``.

Every container of a deployment runs with the host's network and serves the deployment's one
port: this entrypoint binds it with ``SO_REUSEPORT`` (so the kernel spreads connections over
the containers, and a new container can join the port before an old one leaves) and hands the
listening socket to the model server with ``--fd``, running the server's program in this
process as ``python -m`` would. It first loads the model (and any challenger of
``--traffic``), so a version that cannot load never joins the port: it writes the server's
``MODELHUB-FAILED <reason>`` line and exits 3 without taking a connection. The admin port
(probes, ``/metrics``) is a free port of its own, kept in ``ADMIN_PORT_FILE`` for the image's
``HEALTHCHECK`` (``--healthcheck``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import runpy
import socket
import sys
from pathlib import Path

from ...serving.contract import EXIT_LOAD_FAILED, FAILED, SERVER_MODULE, server_command

ADMIN_PORT_FILE = Path("/tmp/modelhub-admin-port")
LISTEN_FD = 3


def healthcheck() -> int:
    """0 when the server answers ready on its admin port, else 1 (Docker's HEALTHCHECK)."""
    try:
        port = int(ADMIN_PORT_FILE.read_text())
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/v2/health/ready")
        return 0 if connection.getresponse().status == 200 else 1
    except (OSError, ValueError):
        return 1


def preflight(ref: str, hub: str | None, runtime: str, traffic: str | None) -> str | None:
    """Load (and self-test) the model and its challengers; the reason if one cannot load."""
    from ...errors import ModelHubError
    from ...experiments.policy import TrafficPolicy
    from ...registry.registry import ModelRegistry
    from ...serving.loading import load_served_model

    try:
        registry = ModelRegistry(Path(hub or os.environ.get("MODELHUB_HUB", ".")))
        served = load_served_model(registry, ref, runtime)
        if traffic:
            policy = TrafficPolicy.from_dict(json.loads(traffic))
            if policy.running:
                for version in sorted(policy.challengers.values()):
                    load_served_model(registry, f"{served.name}@{version}", runtime)
    except Exception as exc:
        text = str(exc) if isinstance(exc, ModelHubError) else f"{type(exc).__name__}: {exc}"
        return " ".join(text.split()) or type(exc).__name__
    return None


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    return sock


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--healthcheck"]:
        return healthcheck()
    parser = argparse.ArgumentParser(prog="modelhub-container", add_help=False)
    parser.add_argument("ref")
    parser.add_argument("--hub")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--runtime", default="auto")
    parser.add_argument("--traffic")
    args, rest = parser.parse_known_args(argv)
    reason = preflight(args.ref, args.hub, args.runtime, args.traffic)
    if reason is not None:
        print(f"{FAILED} {reason}", flush=True)
        return EXIT_LOAD_FAILED
    try:
        sock = listen(args.host, args.port)
    except OSError as exc:
        print(f"{FAILED} cannot listen on {args.host}:{args.port}: {exc}", flush=True)
        return 4
    if sock.fileno() != LISTEN_FD:
        os.dup2(sock.fileno(), LISTEN_FD)
        sock.close()
    os.set_inheritable(LISTEN_FD, True)
    admin_port = free_port()
    ADMIN_PORT_FILE.write_text(str(admin_port))
    options = {"fd": LISTEN_FD, "admin_port": admin_port, "runtime": args.runtime}
    if args.traffic:
        options["traffic"] = args.traffic
    command = server_command(args.ref, args.hub or os.environ.get("MODELHUB_HUB", "."), **options)
    # ``python -m jupyter_modelhub.modelserver ARGS`` in this process: the same program and
    # contract as an exec, without importing numpy, scikit-learn… a second time
    sys.argv = [SERVER_MODULE, *command[3:], *rest]
    runpy.run_module(SERVER_MODULE, run_name="__main__", alter_sys=True)
    return 0  # the server exits through SystemExit with its own code


if __name__ == "__main__":
    sys.exit(main())

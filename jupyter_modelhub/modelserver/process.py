"""One model server process: load, listen, announce, serve, drain.

The contract with whoever starts the process (the deployment supervisor, ``modelhub serve``;
``jupyter_modelhub.serving.contract`` builds the command and reads the lines without tornado):

- after the model is loaded and a self-test prediction succeeded, exactly one line
  ``MODELHUB-READY {"port": P, "admin_port": A, "pid": PID, "version": "vX.Y.Z"}`` is written
  to stdout (and flushed), then stdout is closed (it becomes stderr, so the reader sees EOF);
  only then does the server accept on its main socket;
- if the model cannot be loaded, one line ``MODELHUB-FAILED <reason>`` and exit code 3;
  if the server cannot listen (port taken, bad ``fd``), ``MODELHUB-FAILED <reason>`` and 4;
- on SIGTERM (or SIGINT): stop accepting, answer in-flight requests (keep-alive connections
  get ``Connection: close``), flush the prediction log, exit 0 within ``drain_seconds``.

With ``fd`` the server accepts on an inherited listening socket (the supervisor owns it and
hands it to every replica); with ``admin_port`` it also listens on 127.0.0.1 for probes.
With ``lifeline`` (the read end of a pipe that only the supervisor writes to) it drains and
exits as on SIGTERM once that pipe reaches EOF, which is when the supervisor is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from prometheus_client import disable_created_metrics
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from ..errors import ModelHubError
from ..experiments.policy import CHAMPION, TrafficPolicy
from ..hub import Hub
from ..serving.contract import (
    EXIT_LISTEN_FAILED,
    EXIT_LOAD_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    FAILED,
    READY,
)
from ..serving.loading import RUNTIMES, ServedModel, load_served_model
from ..serving.service import ModelService, ServingOptions
from ..serving.traffic import TrafficRouter
from .app import make_admin_app, make_app
from .handlers import ServerState

__all__ = [
    "EXIT_LISTEN_FAILED",
    "EXIT_LOAD_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "FAILED",
    "READY",
    "ModelServer",
    "open_listeners",
    "serve",
]

log = logging.getLogger("jupyter_modelhub.modelserver")


class ModelServer:
    """The HTTP side of one process: listeners on the main and admin sockets, and draining."""

    def __init__(
        self,
        service: ModelService | TrafficRouter,
        *,
        max_body_bytes: int = 10 * 1024 * 1024,
        drain_seconds: float = 5.0,
        linger_seconds: float = 0.25,
    ) -> None:
        self.service = service
        self.app = make_app(service, max_body_bytes)
        self.state: ServerState = self.app.settings["modelhub_state"]
        self.drain_seconds = drain_seconds
        self.linger_seconds = linger_seconds
        self.main: HTTPServer | None = None
        self.admin: HTTPServer | None = None

    def _http_server(self, app: Any = None) -> HTTPServer:
        return HTTPServer(
            app or self.app,
            max_body_size=self.state.hard_body_limit,
            decompress_request=True,
            idle_connection_timeout=300,
        )

    def start(
        self,
        main_sockets: list[socket.socket],
        admin_sockets: list[socket.socket],
        announce: Callable[[], None] | None = None,
    ) -> None:
        """Serve the admin sockets, ``announce`` readiness, then accept on the main sockets."""
        if admin_sockets:
            self.admin = self._http_server(make_admin_app(self.state))
            self.admin.add_sockets(admin_sockets)
        if announce is not None:
            announce()
        self.main = self._http_server()
        self.main.add_sockets(main_sockets)

    async def drain(self) -> None:
        """Stop accepting, let in-flight requests finish, close connections, flush the log."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.drain_seconds
        self.state.draining = True
        if self.main is not None:
            self.main.stop()
        while self.state.in_flight > 0 and loop.time() < deadline:
            await asyncio.sleep(0.005)
        # A keep-alive client may be sending its next request right now: give it a moment to
        # get its answer (with Connection: close) before idle connections are closed.
        linger = min(deadline, loop.time() + self.linger_seconds)
        while loop.time() < linger and (self._open_connections() or self.state.in_flight):
            await asyncio.sleep(0.005)
        for server in (self.main, self.admin):
            if server is not None:
                server.stop()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        server.close_all_connections(), max(0.1, deadline - loop.time())
                    )
        await loop.run_in_executor(None, self.close)

    def close(self) -> None:
        """Stop every variant's batcher and flush the prediction and feedback logs."""
        self.state.router.close()
        if self.state.feedback is not None:
            self.state.feedback.close()

    def _open_connections(self) -> int:
        return sum(
            len(getattr(server, "_connections", ()))
            for server in (self.main,)
            if server is not None
        )


def open_listeners(
    host: str, port: int, fd: int | None, admin_port: int | None
) -> tuple[list[socket.socket], list[socket.socket]]:
    """The main sockets (inherited ``fd``, or bound to host:port) and the admin sockets."""
    if fd is not None:
        sock = socket.socket(fileno=fd)
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 0:
            sock.detach()
            raise ValueError(f"file descriptor {fd} is not a listening socket")
        sock.setblocking(False)
        main = [sock]
    else:
        main = bind_sockets(port, host)
    try:
        admin = bind_sockets(admin_port, "127.0.0.1") if admin_port is not None else []
    except OSError:
        for s in main:
            s.close()
        raise
    return main, admin


def serve(
    ref: str,
    hub: Hub | str | os.PathLike[str] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    fd: int | None = None,
    admin_port: int | None = 0,
    deployment: str = "",
    variant: str | None = None,
    log_dir: str | os.PathLike[str] | None = None,
    runtime: str = "auto",
    max_batch_size: int | None = None,
    max_wait_ms: float = 1.0,
    model_thread: bool = False,
    sample_rate: float = 1.0,
    log_rows_per_second: float = 1000.0,
    log_flush_rows: int = 10_000,
    log_flush_seconds: float = 10.0,
    max_body_mb: float = 10.0,
    drain_seconds: float = 5.0,
    lifeline: int | None = None,
    traffic: str | TrafficPolicy | None = None,
    stdout: IO[str] | None = None,
) -> int:
    """Serve ``ref`` from ``hub`` until SIGTERM/SIGINT; return the process's exit code.

    Blocks. Writes the ``MODELHUB-READY``/``MODELHUB-FAILED`` line to ``stdout`` (the real
    stdout by default); everything else goes to logging (stderr). Returns 0 after a clean
    drain, 2 for an invalid option, 3 if the model could not be loaded, 4 if the server could
    not listen. ``traffic`` (a ``TrafficPolicy`` or its JSON) also loads the policy's
    challengers, each a version of the same model, and routes requests between them.
    """
    problem = _invalid_option(
        runtime=runtime, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms,
        sample_rate=sample_rate, log_rows_per_second=log_rows_per_second,
        log_flush_rows=log_flush_rows, log_flush_seconds=log_flush_seconds,
        max_body_mb=max_body_mb, drain_seconds=drain_seconds,
    )  # fmt: skip
    policy = None
    if problem is None and traffic is not None:
        try:
            policy = (
                traffic
                if isinstance(traffic, TrafficPolicy)
                else TrafficPolicy.from_dict(json.loads(traffic))
            )
        except (ValueError, ModelHubError) as exc:
            problem = f"--traffic: {_one_line(exc)}"
    if problem:
        _say(stdout or sys.stdout, f"{FAILED} invalid option: {problem}")
        return EXIT_USAGE
    stop = _StopFlag()
    if lifeline is not None:
        _watch_lifeline(lifeline)
    try:
        return _serve(
            ref, hub, stop, stdout or sys.stdout, host=host, port=port, fd=fd,
            admin_port=admin_port, drain_seconds=drain_seconds,
            max_body_bytes=int(max_body_mb * 1024 * 1024), runtime=runtime, policy=policy,
            options=ServingOptions(
                deployment=deployment,
                variant=variant,
                max_batch_size=max_batch_size,
                max_wait_ms=max_wait_ms,
                model_thread=model_thread,
                log_dir=Path(log_dir) if log_dir is not None else None,
                sample_rate=sample_rate,
                log_rows_per_second=log_rows_per_second,
                log_flush_rows=log_flush_rows,
                log_flush_seconds=log_flush_seconds,
            ),
        )  # fmt: skip
    finally:
        stop.restore()


def _load_variants(
    hub: Hub,
    champion: ServedModel,
    runtime: str,
    options: ServingOptions,
    policy: TrafficPolicy | None,
) -> ModelService | TrafficRouter:
    """The champion's service alone, or a router over it and the policy's challengers."""
    if policy is None or not policy.running:
        return ModelService(champion, options)
    first = ModelService(champion, dataclasses.replace(options, variant=CHAMPION))
    services = {CHAMPION: first}
    try:
        for name, version in sorted(policy.challengers.items()):
            served = load_served_model(hub.registry, f"{champion.name}@{version}", runtime)
            services[name] = ModelService(
                served, dataclasses.replace(options, variant=name), first.metrics.families
            )
        return TrafficRouter(services, policy)
    except BaseException:
        for made in services.values():
            made.close()
        raise


def _serve(
    ref: str,
    hub: Hub | str | os.PathLike[str] | None,
    stop: _StopFlag,
    out: IO[str],
    *,
    host: str,
    port: int,
    fd: int | None,
    admin_port: int | None,
    drain_seconds: float,
    max_body_bytes: int,
    runtime: str,
    options: ServingOptions,
    policy: TrafficPolicy | None = None,
) -> int:
    disable_created_metrics()  # this process's own registry: no ``*_created`` series
    try:
        with contextlib.redirect_stdout(sys.stderr):  # nothing but the contract on stdout
            opened = hub if isinstance(hub, Hub) else Hub(hub)
            served = load_served_model(opened.registry, ref, runtime)
            service: ModelService | TrafficRouter = _load_variants(
                opened, served, runtime, options, policy
            )
    except Exception as exc:
        _say(out, f"{FAILED} {_one_line(exc)}")
        return EXIT_LOAD_FAILED
    try:
        main_sockets, admin_sockets = open_listeners(host, port, fd, admin_port)
    except (OSError, ValueError) as exc:
        service.close()
        _say(out, f"{FAILED} cannot listen: {_one_line(exc)}")
        return EXIT_LISTEN_FAILED
    if stop.requested:
        service.close()
        return EXIT_OK
    gc.collect()
    gc.freeze()  # the model's objects need no more garbage-collector scans
    server = ModelServer(service, max_body_bytes=max_body_bytes, drain_seconds=drain_seconds)
    ready = {
        "port": main_sockets[0].getsockname()[1],
        "admin_port": admin_sockets[0].getsockname()[1] if admin_sockets else None,
        "pid": os.getpid(),
        "version": served.version_id,
    }
    if isinstance(service, TrafficRouter):  # serving an experiment: which variants it loaded
        ready["variants"] = sorted(service.services)
    return asyncio.run(_run(server, main_sockets, admin_sockets, ready, out, stop))


async def _run(
    server: ModelServer,
    main_sockets: list[socket.socket],
    admin_sockets: list[socket.socket],
    ready: dict[str, Any],
    out: IO[str],
    stop: _StopFlag,
) -> int:
    done = asyncio.Event()
    stop.attach(asyncio.get_running_loop(), done)

    def announce() -> None:
        _say(out, f"{READY} {json.dumps(ready)}")
        if out is sys.__stdout__:
            _close_stdout()

    server.start(main_sockets, admin_sockets, announce)
    await done.wait()
    log.info("Draining: no new connections; finishing %d requests", server.state.in_flight)
    await server.drain()
    return EXIT_OK


class _StopFlag:
    """SIGTERM/SIGINT handling from the first moment: a flag while loading, then an event."""

    def __init__(self) -> None:
        self.requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._installed = threading.current_thread() is threading.main_thread()
        self._previous: dict[int, Any] = {}
        if self._installed:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.requested = True
        if self._loop is not None and self._event is not None:
            self._loop.call_soon_threadsafe(self._event.set)

    def restore(self) -> None:
        """Put back the signal handlers that were there before ``serve``."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def attach(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        self._loop, self._event = loop, event
        if self.requested:
            event.set()
        if self._installed:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._on_signal, sig, None)


def _watch_lifeline(fd: int) -> None:
    """Send ourselves SIGTERM (drain, then exit 0) once the pipe ``fd`` reaches EOF."""

    def watch() -> None:
        try:
            while os.read(fd, 64):
                pass
        except OSError as exc:  # not a pipe we inherited: a mistake, not a dead supervisor
            log.error("Cannot watch the lifeline (fd %d): %s", fd, exc)
            return
        log.warning("The supervisor is gone (lifeline closed): draining and exiting")
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="lifeline", daemon=True).start()


def _say(out: IO[str], line: str) -> None:
    try:
        out.write(line + "\n")
        out.flush()
    except (OSError, ValueError):  # nobody reads our stdout any more: serve on regardless
        log.warning("Could not write %r to stdout", line)


def _invalid_option(**options: Any) -> str | None:
    """What is wrong with the options (the command line checks the same), or None."""
    if options["runtime"] not in RUNTIMES:
        return f"runtime must be one of {', '.join(RUNTIMES)}, not {options['runtime']!r}"
    if options["max_batch_size"] is not None and options["max_batch_size"] < 1:
        return "max_batch_size must be at least 1"
    if not 0.0 <= options["sample_rate"] <= 1.0:
        return "sample_rate must be between 0 and 1"
    if options["max_wait_ms"] < 0:
        return "max_wait_ms cannot be negative"
    for name in (
        "log_rows_per_second", "log_flush_rows", "log_flush_seconds", "max_body_mb",
        "drain_seconds",
    ):  # fmt: skip
        if options[name] <= 0:
            return f"{name} must be positive"
    return None


def _close_stdout() -> None:
    """After the READY line, stdout is closed (it becomes stderr): the supervisor sees EOF, and
    a model that prints cannot block the server on a pipe that nobody reads any more."""
    try:
        sys.stdout.flush()
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    except (OSError, ValueError):
        log.debug("stdout was not redirected to stderr", exc_info=True)


def _one_line(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, ModelHubError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split()) or type(exc).__name__

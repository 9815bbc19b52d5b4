"""Liveness probes of replicas: is the process answering at all?

A replica can be alive and still serve nobody (stopped by SIGSTOP, deadlocked, stuck in a
model call that never returns). The supervisor probes each ready replica's admin port,
``GET /v2/health/live``, every ``interval`` seconds with a ``timeout``; after ``failures``
failed probes in a row it kills the replica (SIGKILL: a hung process may not handle SIGTERM)
and starts another, with the reason in ``status``.

The settings come from the supervisor's environment (which is the deployer's):
``MODELHUB_PROBE_INTERVAL`` (seconds, default 2), ``MODELHUB_PROBE_TIMEOUT`` (seconds,
default 2) and ``MODELHUB_PROBE_FAILURES`` (default 3; 0 turns probing off). With the
defaults a hung replica is replaced within about 12 s. The admin port is served by the
replica's event loop, so a model call that holds the loop (the default, without
``model_thread``) for longer than ``timeout`` fails a probe too: keep ``timeout * failures``
well above the slowest request.
"""

from __future__ import annotations

import http.client
import os
from dataclasses import dataclass

INTERVAL_ENV = "MODELHUB_PROBE_INTERVAL"
TIMEOUT_ENV = "MODELHUB_PROBE_TIMEOUT"
FAILURES_ENV = "MODELHUB_PROBE_FAILURES"
LIVE_PATH = "/v2/health/live"


@dataclass(frozen=True)
class ProbeSettings:
    """How often and how patiently the supervisor probes its replicas."""

    interval: float = 2.0
    timeout: float = 2.0
    failures: int = 3

    @property
    def enabled(self) -> bool:
        return self.failures > 0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ProbeSettings:
        """The settings from ``MODELHUB_PROBE_*``; unset or invalid values keep the default
        (a supervisor must not die of a typo in a variable)."""
        env = os.environ if environ is None else environ
        default = cls()

        def number(name: str, fallback: float, minimum: float) -> float:
            try:
                value = float(env.get(name, ""))
            except ValueError:
                return fallback
            return value if value >= minimum else fallback

        return cls(
            interval=number(INTERVAL_ENV, default.interval, 0.05),
            timeout=number(TIMEOUT_ENV, default.timeout, 0.05),
            failures=int(number(FAILURES_ENV, default.failures, 0)),
        )

    def describe(self) -> str:
        if not self.enabled:
            return "health probes off"
        return (
            f"health probes every {self.interval:g} s, timeout {self.timeout:g} s, "
            f"{self.failures} failures in a row to restart"
        )


def probe_live(port: int, timeout: float) -> str | None:
    """``None`` if 127.0.0.1:``port`` answers ``GET /v2/health/live`` with 200 within
    ``timeout`` seconds, else what went wrong."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", LIVE_PATH)
        status = connection.getresponse().status
        return None if status == 200 else f"{LIVE_PATH} answered {status}"
    except TimeoutError:
        return f"no answer to {LIVE_PATH} within {timeout:g} s"
    except OSError as exc:
        return f"{LIVE_PATH} failed: {exc.strerror or exc}"
    finally:
        connection.close()

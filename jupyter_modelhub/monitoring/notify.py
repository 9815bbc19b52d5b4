"""Built-in alerting for users without Prometheus: threshold rules, webhook and e-mail notices.

:class:`AlertEvaluator` checks :class:`AlertRule` thresholds against the health computed from
scrapes of the servers' ``/metrics`` (:mod:`.scrape`) and against drift reports. An alert is
identified by its rule and labels (deployment, variant or feature). It is sent once when it
starts firing (after ``for_evaluations`` consecutive breaches) and once when it resolves, never
again while it stays firing. A notice that a notifier failed to deliver stays queued for that
notifier and is retried at the next evaluation; the others are not sent twice.

Notifiers: :class:`WebhookNotifier` POSTs an Alertmanager-style JSON body; :class:`EmailNotifier`
sends one e-mail per batch through :mod:`smtplib` with :class:`SmtpSettings`, whose password
never appears in a log line, a ``repr`` or an exception message.
:class:`AlertLoop` runs scrape -> evaluate -> notify periodically in a thread.
"""

from __future__ import annotations

import abc
import base64
import datetime as dt
import json
import logging
import math
import os
import smtplib
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Literal

from jupyter_modelhub.errors import BackendError, InvalidArgument
from jupyter_modelhub.monitoring.alerts import AlertThresholds
from jupyter_modelhub.monitoring.records import DriftReport
from jupyter_modelhub.monitoring.scrape import HealthPoint, Scrape, health_between

log = logging.getLogger(__name__)

HEALTH_SIGNALS = ("error_rate", "p50_latency", "p99_latency", "requests_per_second", "batch_size")
DRIFT_SIGNALS = ("drift_share", "drifted_features")
SIGNALS = HEALTH_SIGNALS + DRIFT_SIGNALS
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": lambda v, t: v > t,
    ">=": lambda v, t: v >= t,
    "<": lambda v, t: v < t,
    "<=": lambda v, t: v <= t,
}
Status = Literal["firing", "resolved"]


@dataclass(frozen=True)
class AlertRule:
    """Fire when ``signal`` ``op`` ``threshold`` holds for ``for_evaluations`` checks in a row.

    ``signal``: a health signal per deployment variant (``error_rate``, ``p50_latency``,
    ``p99_latency`` in seconds, ``requests_per_second``, ``batch_size``) or a drift signal per
    deployment (``drift_share``, ``drifted_features``). ``deployments`` limits the rule (empty:
    all). A health signal with no data (no request in the interval) does not breach.
    """

    name: str
    signal: str
    threshold: float
    op: str = ">"
    for_evaluations: int = 1
    severity: str = "warning"
    deployments: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.signal not in SIGNALS:
            raise InvalidArgument(
                f"Unknown alert signal {self.signal!r}.", hint=f"Use one of: {', '.join(SIGNALS)}."
            )
        if self.op not in OPERATORS:
            raise InvalidArgument(f"Unknown operator {self.op!r}.", hint="Use >, >=, < or <=.")
        if not math.isfinite(self.threshold):
            raise InvalidArgument(f"The threshold of {self.name!r} is {self.threshold!r}.")
        if self.for_evaluations < 1:
            raise InvalidArgument(
                f"for_evaluations of {self.name!r} is {self.for_evaluations}.",
                hint="Use 1 or more.",
            )

    def applies_to(self, deployment: str) -> bool:
        return not self.deployments or deployment in self.deployments


def default_rules(
    thresholds: AlertThresholds | None = None, deployments: Sequence[str] = ()
) -> list[AlertRule]:
    """The rules of :func:`~.alerts.alert_rules` (same names and thresholds), built in."""
    t = thresholds or AlertThresholds()
    scope = tuple(deployments)
    return [
        AlertRule("ModelhubHighErrorRate", "error_rate", t.error_rate, ">", 1, t.severity, scope),
        AlertRule(
            "ModelhubHighLatencyP99",
            "p99_latency",
            t.p99_latency_seconds,
            ">",
            1,
            t.severity,
            scope,
        ),
        AlertRule("ModelhubDataDrift", "drift_share", t.drift_share, ">=", 1, t.severity, scope),
    ]


@dataclass(frozen=True)
class Alert:
    """One notice: an alert started firing, or resolved."""

    rule: str
    status: Status
    labels: Mapping[str, str]
    value: float
    threshold: float
    op: str
    signal: str
    severity: str
    starts_at: float
    ends_at: float | None = None

    @property
    def summary(self) -> str:
        where = " ".join(f"{k}={v}" for k, v in self.labels.items())
        if self.status == "resolved":
            return f"RESOLVED {self.rule} [{where}]: {self.signal} is {self.value:.4g}"
        return (
            f"FIRING {self.rule} [{where}]: {self.signal} is {self.value:.4g} "
            f"({self.op} {self.threshold:g})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Alertmanager's alert shape (``labels``, ``annotations``, RFC 3339 times) plus values."""
        return {
            "status": self.status,
            "labels": {"alertname": self.rule, "severity": self.severity, **self.labels},
            "annotations": {"summary": self.summary},
            "startsAt": _rfc3339(self.starts_at),
            "endsAt": _rfc3339(self.ends_at) if self.ends_at is not None else None,
            "signal": self.signal,
            "value": self.value,
            "threshold": self.threshold,
            "op": self.op,
        }


def _rfc3339(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat()


# -- notifiers -----------------------------------------------------------------------------------------
class Notifier(abc.ABC):
    """Delivers a batch of notices; raises :class:`BackendError` when it could not."""

    name = "notifier"

    @abc.abstractmethod
    def send(self, alerts: Sequence[Alert]) -> None: ...


class WebhookNotifier(Notifier):
    """POSTs ``{"version": "4", "status", "receiver", "alerts": [...]}`` (Alertmanager's webhook
    body) as JSON to ``url``; a non-2xx answer is a failure."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
        receiver: str = "modelhub",
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgument(f"{_safe_url(url)} is not an http(s) URL.")
        self.url = url
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.receiver = receiver

    def __repr__(self) -> str:
        return f"WebhookNotifier({_safe_url(self.url)!r})"

    def send(self, alerts: Sequence[Alert]) -> None:
        body = {
            "version": "4",
            "receiver": self.receiver,
            "status": "firing" if any(a.status == "firing" for a in alerts) else "resolved",
            "alerts": [a.to_dict() for a in alerts],
        }
        request = urllib.request.Request(
            self.url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **self.headers},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise BackendError(f"The webhook {_safe_url(self.url)} answered {exc.code}.") from None
        except OSError as exc:
            raise BackendError(
                f"Could not reach the webhook {_safe_url(self.url)}: {exc}"
            ) from None
        log.info("Sent %d alert notice(s) to the webhook %s", len(alerts), _safe_url(self.url))


def _safe_url(url: str) -> str:
    """The URL without credentials, query or fragment (tokens often live there)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass(frozen=True)
class SmtpSettings:
    """How to send e-mail. ``security``: ``"starttls"`` (default), ``"ssl"`` or ``"none"``.

    The password is kept out of ``repr``; :meth:`from_mapping` reads it from an environment
    variable (``password_env``) so config files need not hold it.
    """

    host: str
    sender: str
    recipients: tuple[str, ...]
    port: int = 587
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    timeout: float = 10.0
    subject_prefix: str = "[modelhub]"

    def __post_init__(self) -> None:
        if not self.recipients:
            raise InvalidArgument("No e-mail recipient.", hint="Give at least one address.")
        if self.security not in ("starttls", "ssl", "none"):
            raise InvalidArgument(
                f"Unknown SMTP security {self.security!r}.", hint="Use starttls, ssl or none."
            )

    @classmethod
    def from_mapping(
        cls, config: Mapping[str, Any], env: Mapping[str, str] | None = None
    ) -> SmtpSettings:
        """Settings from a config section: ``host``, ``port``, ``sender``, ``recipients`` (a list
        or a comma-separated text), ``username``, ``password_env`` (or ``password``),
        ``security``, ``timeout``.

        Raises:
            InvalidArgument: a missing key, or ``password_env`` names an unset variable.
        """
        env = os.environ if env is None else env
        missing = [k for k in ("host", "sender", "recipients") if not config.get(k)]
        if missing:
            raise InvalidArgument(
                f"The SMTP settings lack {', '.join(missing)}.",
                hint="Set host, sender and recipients (and port, username, password_env).",
            )
        recipients = config["recipients"]
        if isinstance(recipients, str):
            recipients = [r.strip() for r in recipients.split(",") if r.strip()]
        password = config.get("password")
        if config.get("password_env"):
            name = str(config["password_env"])
            if name not in env:
                raise InvalidArgument(
                    f"The SMTP password variable {name} is not set.",
                    hint=f"Export {name} in the environment that runs the alerts.",
                )
            password = env[name]
        return cls(
            host=str(config["host"]),
            sender=str(config["sender"]),
            recipients=tuple(str(r) for r in recipients),
            port=int(config.get("port", 587)),
            username=config.get("username"),
            password=password,
            security=config.get("security", "starttls"),
            timeout=float(config.get("timeout", 10.0)),
            subject_prefix=str(config.get("subject_prefix", "[modelhub]")),
        )


class EmailNotifier(Notifier):
    """Sends one e-mail per batch of notices (subject: the first, and how many more)."""

    name = "email"

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def __repr__(self) -> str:
        return f"EmailNotifier({self.settings!r})"

    def message(self, alerts: Sequence[Alert]) -> EmailMessage:
        s = self.settings
        firing = sum(a.status == "firing" for a in alerts)
        head = alerts[0].summary
        more = f" (+{len(alerts) - 1} more)" if len(alerts) > 1 else ""
        message = EmailMessage()
        message["Subject"] = f"{s.subject_prefix} {head}{more}"
        message["From"] = s.sender
        message["To"] = ", ".join(s.recipients)
        lines = [f"{firing} firing, {len(alerts) - firing} resolved.", ""]
        for alert in alerts:
            lines.append(alert.summary)
            lines.append(f"    since {_rfc3339(alert.starts_at)}")
        message.set_content("\n".join(lines) + "\n")
        return message

    def send(self, alerts: Sequence[Alert]) -> None:
        s = self.settings
        try:
            if s.security == "ssl":
                context = ssl.create_default_context()
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout, context=context
                )
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            with client:
                if s.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if s.username:
                    client.login(s.username, s.password or "")
                client.send_message(self.message(alerts))
        except (smtplib.SMTPException, OSError) as exc:
            reason = _scrub(f"{type(exc).__name__}: {exc}", s.username, s.password)
            raise BackendError(
                f"Could not send the alert e-mail through {s.host}:{s.port}: {reason}"
            ) from None
        log.info(
            "Sent %d alert notice(s) by e-mail to %s through %s:%d",
            len(alerts),
            ", ".join(s.recipients),
            s.host,
            s.port,
        )


def _scrub(text: str, username: str | None, password: str | None) -> str:
    """``text`` without the password, in clear or in the base64 forms SMTP AUTH sends."""
    if not password:
        return text
    forms = {password, base64.b64encode(password.encode()).decode()}
    if username:
        forms.add(base64.b64encode(f"\0{username}\0{password}".encode()).decode())
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "***")
    return text


# -- evaluation -----------------------------------------------------------------------------------------
@dataclass
class _State:
    breaches: int = 0
    firing: bool = False
    since: float = 0.0
    value: float = math.nan


class AlertEvaluator:
    """Checks rules and sends new and resolved alerts, each once (see the module docstring)."""

    def __init__(
        self,
        rules: Sequence[AlertRule],
        notifiers: Sequence[Notifier] = (),
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise InvalidArgument("Two alert rules share a name.", hint="Name each rule once.")
        self.rules = list(rules)
        self.notifiers = list(notifiers)
        self.clock = clock
        self._states: dict[tuple[str, tuple[tuple[str, str], ...]], _State] = {}
        self._outbox: list[list[Alert]] = [[] for _ in self.notifiers]
        self._lock = threading.Lock()

    @property
    def firing(self) -> list[tuple[str, dict[str, str]]]:
        """The alerts firing now: (rule name, labels)."""
        return [(rule, dict(labels)) for (rule, labels), s in self._states.items() if s.firing]

    def evaluate(
        self,
        health: Sequence[HealthPoint] | None = None,
        drift: Mapping[str, DriftReport] | None = None,
    ) -> list[Alert]:
        """Check the rules whose source is given and notify; returns the new notices.

        ``health``: the latest health points (health rules are re-checked for every deployment
        variant; one that is no longer reported resolves). ``drift``: ``{deployment: report}``
        (drift rules are re-checked for those deployments only).
        """
        with self._lock:
            now = self.clock()
            notices: list[Alert] = []
            for rule in self.rules:
                values = self._values(rule, health, drift)
                if values is None:
                    continue
                scope = None if rule.signal in HEALTH_SIGNALS else set(drift or {})
                notices.extend(self._update(rule, values, scope, now))
            for queue in self._outbox:
                queue.extend(notices)
            self._deliver()
            return notices

    def _values(
        self,
        rule: AlertRule,
        health: Sequence[HealthPoint] | None,
        drift: Mapping[str, DriftReport] | None,
    ) -> dict[tuple[tuple[str, str], ...], float | None] | None:
        if rule.signal in HEALTH_SIGNALS:
            if health is None:
                return None
            return {
                (("deployment", p.deployment), ("variant", p.variant)): getattr(p, rule.signal)
                for p in health
                if rule.applies_to(p.deployment)
            }
        if drift is None:
            return None
        out: dict[tuple[tuple[str, str], ...], float | None] = {}
        for deployment, report in drift.items():
            if rule.applies_to(deployment):
                value = report.drift_share if rule.signal == "drift_share" else report.n_drifted
                out[(("deployment", deployment),)] = float(value)
        return out

    def _update(
        self,
        rule: AlertRule,
        values: Mapping[tuple[tuple[str, str], ...], float | None],
        scope: set[str] | None,
        now: float,
    ) -> list[Alert]:
        notices = []
        breach = OPERATORS[rule.op]
        for labels, value in values.items():
            key = (rule.name, labels)
            state = self._states.get(key)
            if value is not None and math.isfinite(value) and breach(value, rule.threshold):
                if state is None:
                    state = self._states[key] = _State(since=now)
                state.breaches += 1
                state.value = value
                if not state.firing and state.breaches >= rule.for_evaluations:
                    state.firing = True
                    state.since = now
                    notices.append(self._alert(rule, labels, "firing", value, now, None))
            elif state is not None:
                notices.extend(self._clear(rule, key, value, now))
        for key in [k for k in self._states if k[0] == rule.name and k[1] not in values]:
            deployment = dict(key[1]).get("deployment", "")
            if scope is None or deployment in scope:
                notices.extend(self._clear(rule, key, None, now))
        return notices

    def _clear(
        self,
        rule: AlertRule,
        key: tuple[str, tuple[tuple[str, str], ...]],
        value: float | None,
        now: float,
    ) -> list[Alert]:
        state = self._states.pop(key)
        if not state.firing:
            return []
        shown = state.value if value is None else value
        return [self._alert(rule, key[1], "resolved", shown, state.since, now)]

    @staticmethod
    def _alert(
        rule: AlertRule,
        labels: tuple[tuple[str, str], ...],
        status: Status,
        value: float,
        since: float,
        ended: float | None,
    ) -> Alert:
        return Alert(
            rule=rule.name,
            status=status,
            labels=dict(labels),
            value=value,
            threshold=rule.threshold,
            op=rule.op,
            signal=rule.signal,
            severity=rule.severity,
            starts_at=since,
            ends_at=ended,
        )

    def _deliver(self) -> None:
        for notifier, queue in zip(self.notifiers, self._outbox, strict=True):
            if not queue:
                continue
            try:
                notifier.send(list(queue))
            except BackendError as exc:
                log.warning(
                    "Alert notices not delivered by %s (retried next time): %s", notifier.name, exc
                )
                continue
            queue.clear()


class AlertLoop:
    """Every ``interval`` seconds: scrape, compute health since the last scrape, get drift
    reports (optional), evaluate. ``tick()`` runs one round (for tests and cron jobs)."""

    def __init__(
        self,
        evaluator: AlertEvaluator,
        scrape: Callable[[], Scrape],
        *,
        drift: Callable[[], Mapping[str, DriftReport]] | None = None,
        interval: float = 60.0,
    ) -> None:
        if not interval > 0:
            raise InvalidArgument(f"interval is {interval!r}.", hint="Use a positive number.")
        self.evaluator = evaluator
        self.scrape = scrape
        self.drift = drift
        self.interval = interval
        self.ticks = 0
        self._last: Scrape | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> list[Alert]:
        health: list[HealthPoint] | None = None
        try:
            scrape = self.scrape()
        except BackendError as exc:
            log.warning("Metrics not scraped (alerts keep their state): %s", exc)
        else:
            if self._last is not None:
                health = health_between(self._last, scrape)
            self._last = scrape
        reports = None
        if self.drift is not None:
            try:
                reports = self.drift()
            except (BackendError, InvalidArgument) as exc:
                log.warning("Drift not computed (drift alerts keep their state): %s", exc)
        notices = self.evaluator.evaluate(health, reports)
        self.ticks += 1
        return notices

    def start(self) -> None:
        """Run ``tick`` every ``interval`` seconds in a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="modelhub-alerts", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the loop must outlive one bad round
                log.exception("Alert evaluation failed")
            self._stop.wait(self.interval)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

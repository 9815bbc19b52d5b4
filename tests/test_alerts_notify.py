"""Built-in alerting against a local webhook receiver and a local SMTP server (127.0.0.1 only).

Both servers run in threads of the test process; a notifier's ``send`` returns only after the
server answered, so what the server recorded can be asserted right after ``evaluate``.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from jupyter_modelhub.errors import BackendError, InvalidArgument
from jupyter_modelhub.monitoring import build_profile, compute_drift
from jupyter_modelhub.monitoring.alerts import AlertThresholds
from jupyter_modelhub.monitoring.notify import (
    AlertEvaluator,
    AlertLoop,
    AlertRule,
    EmailNotifier,
    SmtpSettings,
    WebhookNotifier,
    default_rules,
)
from jupyter_modelhub.monitoring.scrape import HealthPoint, parse_metrics

SECRET = "s3cr3t-Pa55word!"


# -- a webhook receiver -------------------------------------------------------------------------------
class Receiver:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.paths.append(self.path)
                if receiver.status == 200:
                    receiver.bodies.append(json.loads(self.rfile.read(length)))
                else:
                    self.rfile.read(length)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts?token=abc"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


# -- an SMTP server -------------------------------------------------------------------------------------
class SmtpServer:
    """A minimal ESMTP server (EHLO, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, QUIT) on asyncio."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.logins: list[tuple[str, str]] = []
        self.accept_password = SECRET
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self.thread.start()
        assert started.wait(10), "the SMTP server did not start"

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._session, "127.0.0.1", 0)
        )
        self.port = self.server.sockets[0].getsockname()[1]
        started.set()
        self.loop.run_forever()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def reply(text: str) -> None:
            writer.write(text.encode() + b"\r\n")
            await writer.drain()

        async def line() -> str:
            return (await reader.readline()).decode().rstrip("\r\n")

        sender, recipients = "", []
        await reply("220 localhost ESMTP test")
        while True:
            command = await line()
            verb, _, rest = command.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                await reply("250-localhost\r\n250-AUTH PLAIN LOGIN\r\n250 OK")
            elif verb == "HELO" or verb in ("NOOP", "RSET"):
                await reply("250 OK")
            elif verb == "AUTH":
                method, _, initial = rest.partition(" ")
                if method.upper() == "PLAIN":
                    if not initial:
                        await reply("334 ")
                        initial = await line()
                    _, user, password = base64.b64decode(initial).decode().split("\0")
                else:
                    await reply("334 VXNlcm5hbWU6")
                    user = base64.b64decode(await line()).decode()
                    await reply("334 UGFzc3dvcmQ6")
                    password = base64.b64decode(await line()).decode()
                self.logins.append((user, password))
                if password == self.accept_password:
                    await reply("235 2.7.0 Authentication successful")
                else:
                    await reply("535 5.7.8 Authentication credentials invalid")
            elif verb == "MAIL":
                sender = rest.split(":", 1)[1].strip().strip("<>")
                await reply("250 OK")
            elif verb == "RCPT":
                recipients.append(rest.split(":", 1)[1].strip().strip("<>"))
                await reply("250 OK")
            elif verb == "DATA":
                await reply("354 End data with <CR><LF>.<CR><LF>")
                data = bytearray()
                while (chunk := await reader.readline()) != b".\r\n":
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                self.messages.append(
                    email.message_from_bytes(bytes(data), policy=email.policy.default)  # type: ignore[arg-type]
                )
                self.envelopes.append((sender, recipients))
                recipients = []
                await reply("250 OK queued")
            elif verb == "QUIT" or not command:
                await reply("221 Bye")
                break
            else:
                await reply("502 Command not implemented")
        writer.close()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    server.close()


def _settings(smtp: SmtpServer, **extra: Any) -> SmtpSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": smtp.port,
        "sender": "modelhub@example.org",
        "recipients": ("ops@example.org", "ds@example.org"),
        "username": "alerts",
        "password": SECRET,
        "security": "none",
        "timeout": 10.0,
    }
    values.update(extra)
    return SmtpSettings(**values)


# -- helpers ------------------------------------------------------------------------------------------
def point(
    error_rate: float | None, *, deployment: str = "fraud", variant: str = "blue"
) -> HealthPoint:
    return HealthPoint(
        deployment=deployment,
        variant=variant,
        start=0.0,
        end=60.0,
        requests=100.0,
        requests_per_second=100 / 60,
        error_rate=error_rate,
        p50_latency=0.01,
        p99_latency=0.05,
        batch_size=1.0,
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 60
        return self.now


ERRORS = AlertRule("HighErrors", "error_rate", 0.05)


# -- webhook ------------------------------------------------------------------------------------------------
def test_webhook_gets_firing_once_then_resolved(receiver: Receiver) -> None:
    evaluator = AlertEvaluator([ERRORS], [WebhookNotifier(receiver.url)], clock=Clock())
    assert evaluator.evaluate([point(0.01)]) == [] and receiver.bodies == []
    fired = evaluator.evaluate([point(0.2), point(0.0, variant="green")])
    assert [a.status for a in fired] == ["firing"]
    assert len(receiver.bodies) == 1
    body = receiver.bodies[0]
    assert body["status"] == "firing" and body["version"] == "4"
    [alert] = body["alerts"]
    assert alert["labels"] == {
        "alertname": "HighErrors",
        "severity": "warning",
        "deployment": "fraud",
        "variant": "blue",
    }
    assert alert["value"] == 0.2 and alert["threshold"] == 0.05
    assert "FIRING HighErrors [deployment=fraud variant=blue]" in alert["annotations"]["summary"]
    assert receiver.paths == ["/hooks/alerts?token=abc"]

    for _ in range(3):  # still firing: nothing is re-sent
        assert evaluator.evaluate([point(0.3)]) == []
    assert len(receiver.bodies) == 1
    assert evaluator.firing == [("HighErrors", {"deployment": "fraud", "variant": "blue"})]

    resolved = evaluator.evaluate([point(0.0)])
    assert [a.status for a in resolved] == ["resolved"]
    assert receiver.bodies[1]["status"] == "resolved"
    assert receiver.bodies[1]["alerts"][0]["endsAt"] is not None
    assert evaluator.firing == []


def test_a_failed_delivery_is_retried_once_and_other_notifiers_not_repeated(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    second = Receiver()
    try:
        receiver.status = 500
        evaluator = AlertEvaluator(
            [ERRORS], [WebhookNotifier(receiver.url), WebhookNotifier(second.url)], clock=Clock()
        )
        with caplog.at_level(logging.WARNING):
            evaluator.evaluate([point(0.2)])
        assert receiver.bodies == [] and len(second.bodies) == 1
        assert "answered 500" in caplog.text and "token=abc" not in caplog.text
        receiver.status = 200
        evaluator.evaluate([point(0.2)])  # still firing: only the queued notice goes out
        assert len(receiver.bodies) == 1 and len(second.bodies) == 1
        assert receiver.bodies[0]["alerts"][0]["status"] == "firing"
    finally:
        second.close()


def test_for_evaluations_waits_for_consecutive_breaches(receiver: Receiver) -> None:
    rule = AlertRule("HighErrors", "error_rate", 0.05, for_evaluations=3)
    evaluator = AlertEvaluator([rule], [WebhookNotifier(receiver.url)], clock=Clock())
    evaluator.evaluate([point(0.2)])
    evaluator.evaluate([point(0.2)])
    evaluator.evaluate([point(0.0)])  # the streak breaks: pending, never fired, nothing sent
    evaluator.evaluate([point(0.2)])
    evaluator.evaluate([point(0.2)])
    assert receiver.bodies == []
    evaluator.evaluate([point(0.2)])
    assert len(receiver.bodies) == 1


def test_no_requests_is_not_a_breach_and_a_vanished_variant_resolves(receiver: Receiver) -> None:
    evaluator = AlertEvaluator([ERRORS], [WebhookNotifier(receiver.url)], clock=Clock())
    evaluator.evaluate([point(None)])
    assert receiver.bodies == []
    evaluator.evaluate([point(0.5, variant="green")])
    evaluator.evaluate(None, {})  # no health this round: health alerts keep their state
    assert len(receiver.bodies) == 1
    evaluator.evaluate([point(0.0)])  # green is gone (its experiment ended)
    assert [b["status"] for b in receiver.bodies] == ["firing", "resolved"]


def test_drift_rules_fire_per_deployment(receiver: Receiver) -> None:
    rng = np.random.default_rng(0)
    profile = build_profile({c: rng.normal(size=2000) for c in "abcd"})
    calm = compute_drift(profile, {c: rng.normal(size=2000) for c in "abcd"})
    moved = compute_drift(profile, {c: rng.normal(size=2000) + (c in "abc") for c in "abcd"})
    rules = default_rules(AlertThresholds(drift_share=0.5))
    evaluator = AlertEvaluator(rules, [WebhookNotifier(receiver.url)], clock=Clock())
    evaluator.evaluate(drift={"fraud": moved, "churn": calm})
    [alert] = receiver.bodies[0]["alerts"]
    assert alert["labels"]["alertname"] == "ModelhubDataDrift"
    assert alert["labels"]["deployment"] == "fraud" and alert["value"] == 0.75
    evaluator.evaluate(drift={"churn": calm})  # fraud not re-checked: stays firing, no notice
    assert len(receiver.bodies) == 1
    evaluator.evaluate(drift={"fraud": calm})
    assert receiver.bodies[1]["alerts"][0]["status"] == "resolved"


def test_rules_are_checked() -> None:
    with pytest.raises(InvalidArgument, match="Unknown alert signal"):
        AlertRule("x", "cpu", 1)
    with pytest.raises(InvalidArgument, match="operator"):
        AlertRule("x", "error_rate", 1, op="!=")
    with pytest.raises(InvalidArgument, match="share a name"):
        AlertEvaluator([ERRORS, ERRORS])
    with pytest.raises(InvalidArgument, match="not an http"):
        WebhookNotifier("ftp://example.org/x")


# -- e-mail ---------------------------------------------------------------------------------------------------
def test_email_is_sent_once_per_change_and_the_password_is_never_logged(
    smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(smtp)
    evaluator = AlertEvaluator([ERRORS], [EmailNotifier(settings)], clock=Clock())
    with caplog.at_level(logging.DEBUG):
        evaluator.evaluate([point(0.2), point(0.3, deployment="churn")])
        evaluator.evaluate([point(0.2), point(0.3, deployment="churn")])
        evaluator.evaluate([point(0.0), point(0.3, deployment="churn")])
    assert smtp.logins == [("alerts", SECRET)] * 2
    assert len(smtp.messages) == 2
    first, second = smtp.messages
    assert first["Subject"].startswith("[modelhub] FIRING HighErrors [deployment=fraud")
    assert first["Subject"].endswith("(+1 more)")
    assert first["To"] == "ops@example.org, ds@example.org"
    body = first.get_body().get_content()  # type: ignore[union-attr]
    assert "2 firing, 0 resolved." in body
    assert "FIRING HighErrors [deployment=fraud variant=blue]: error_rate is 0.2 (> 0.05)" in body
    assert second["Subject"] == (
        "[modelhub] RESOLVED HighErrors [deployment=fraud variant=blue]: error_rate is 0"
    )
    assert smtp.envelopes[0] == ("modelhub@example.org", ["ops@example.org", "ds@example.org"])
    assert "by e-mail" in caplog.text
    assert SECRET not in caplog.text
    assert base64.b64encode(SECRET.encode()).decode() not in caplog.text


def test_a_rejected_login_hides_the_password_and_is_retried(
    smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    smtp.accept_password = "something else"
    notifier = EmailNotifier(_settings(smtp))
    evaluator = AlertEvaluator([ERRORS], [notifier], clock=Clock())
    with caplog.at_level(logging.DEBUG):
        evaluator.evaluate([point(0.2)])
    assert smtp.messages == [] and "Could not send the alert e-mail" in caplog.text
    assert SECRET not in caplog.text
    with pytest.raises(BackendError) as info:
        notifier.send([])
    assert SECRET not in str(info.value) and "535" in str(info.value)
    assert SECRET not in repr(notifier) and SECRET not in repr(notifier.settings)
    smtp.accept_password = SECRET
    with caplog.at_level(logging.DEBUG):
        evaluator.evaluate([point(0.2)])
    assert len(smtp.messages) == 1 and SECRET not in caplog.text


def test_smtp_settings_from_config_read_the_password_from_the_environment() -> None:
    config = {
        "host": "smtp.example.org",
        "port": 465,
        "sender": "a@example.org",
        "recipients": "b@example.org, c@example.org",
        "username": "a",
        "password_env": "MODELHUB_SMTP_PASSWORD",
        "security": "ssl",
    }
    settings = SmtpSettings.from_mapping(config, env={"MODELHUB_SMTP_PASSWORD": SECRET})
    assert settings.password == SECRET and settings.recipients == ("b@example.org", "c@example.org")
    assert SECRET not in repr(settings) and settings.port == 465
    with pytest.raises(InvalidArgument, match="MODELHUB_SMTP_PASSWORD is not set"):
        SmtpSettings.from_mapping(config, env={})
    with pytest.raises(InvalidArgument, match="lack host"):
        SmtpSettings.from_mapping({"sender": "a", "recipients": ["b"]})


# -- the loop ---------------------------------------------------------------------------------------------
def _exposition(ok: int, failed: int) -> str:
    labels = 'model="m",version="v1",deployment="fraud",variant="blue",endpoint="v2_infer"'
    return (
        f'modelhub_requests_total{{{labels},code="2xx"}} {ok}\n'
        f'modelhub_requests_total{{{labels},code="5xx"}} {failed}\n'
    )


def test_the_loop_scrapes_and_alerts(receiver: Receiver) -> None:
    pages = iter(
        [(0.0, _exposition(0, 0)), (60.0, _exposition(90, 10)), (120.0, _exposition(190, 10))]
    )

    def scrape():
        at, text = next(pages)
        return parse_metrics(text, at)

    evaluator = AlertEvaluator([ERRORS], [WebhookNotifier(receiver.url)], clock=Clock())
    loop = AlertLoop(evaluator, scrape, interval=3600)
    assert loop.tick() == []  # the first scrape has nothing to compare with
    [fired] = loop.tick()
    assert fired.status == "firing" and fired.value == pytest.approx(0.1)
    [resolved] = loop.tick()
    assert resolved.status == "resolved" and resolved.value == 0.0


def test_the_loop_runs_in_a_thread_until_stopped() -> None:
    scrapes: list[float] = []

    def scrape():
        scrapes.append(time.monotonic())
        return parse_metrics(_exposition(len(scrapes), 0), float(len(scrapes)))

    loop = AlertLoop(AlertEvaluator([ERRORS]), scrape, interval=0.01)
    loop.start()
    try:
        _poll(lambda: loop.ticks >= 3, "three ticks")
    finally:
        loop.stop()
    ticks = loop.ticks
    assert loop._thread is None and loop.ticks == ticks


def _poll(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)

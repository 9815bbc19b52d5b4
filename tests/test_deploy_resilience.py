"""Local deployments that look after themselves: fast starts from the zygote, hung replicas
replaced, no replica left serving when its supervisor dies.

Every test deploys real replica processes on 127.0.0.1 and stops them in its teardown; waits
poll with a deadline; load comes from the bounded client of ``test_deploy``.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest
from test_deploy import (
    ROW,
    Load,
    _alive,
    infer,
    register_corrupt_version,
    register_two_versions,
    report,
    stop_every_deployment,
    use_model_server,
    wait_for,
)

from jupyter_modelhub import Hub
from jupyter_modelhub.deploy.probes import ProbeSettings
from jupyter_modelhub.deploy.runtime import RuntimeFolder


@pytest.fixture(autouse=True)
def model_server(monkeypatch: pytest.MonkeyPatch) -> None:
    use_model_server(monkeypatch)
    monkeypatch.delenv("MODELHUB_ZYGOTE", raising=False)


@pytest.fixture
def deployed(hub: Hub, classifier, training_data) -> Iterator[Hub]:
    yield register_two_versions(hub, classifier, training_data)
    stop_every_deployment(hub)


@pytest.fixture
def sklearn_only(hub: Hub, classifier, training_data) -> Iterator[Hub]:
    """fraud v0.0.1 without an ONNX copy: served by scikit-learn, the slow import."""
    X, _ = training_data
    hub.register(classifier, "fraud", sample=X[:5])
    yield hub
    stop_every_deployment(hub)


def state(hub: Hub, name: str) -> dict:
    return RuntimeFolder(hub.path, name).read_state()


# -- start-up ----------------------------------------------------------------------------------
def test_replicas_are_forked_from_one_warm_zygote(sklearn_only: Hub) -> None:
    started = time.monotonic()
    status = sklearn_only.deploy("fraud@v0.0.1", replicas=2)
    code, reply = infer(status.endpoint, [ROW])
    print(f"\nsklearn x2: deploy call to first answer {time.monotonic() - started:.2f} s")
    assert code == 200 and reply["model_version"] == "v0.0.1"
    rows = state(sklearn_only, "fraud")["replicas"]
    assert [r["forked"] for r in rows] == [True, True]
    assert state(sklearn_only, "fraud")["zygote_pid"]
    log = "\n".join(sklearn_only.deployment_logs("fraud", 50))
    assert "warmed up for fraud@v0.0.1" in log and "1 thread(s)" in log

    # A crashed replica is forked again: back in well under a second, from the same zygote.
    victim = status.replicas[0]
    killed = time.monotonic()
    os.kill(victim.pid, signal.SIGKILL)
    wait_for(
        lambda: (
            infer(status.endpoint, [ROW])[0] == 200
            and victim.pid not in {r.pid for r in sklearn_only.deployment("fraud").replicas}
            and sklearn_only.deployment("fraud").ready_replicas == 2
        ),
        15,
        "the killed replica to be replaced",
    )
    print(f"kill -9 to two ready replicas again: {time.monotonic() - killed:.2f} s")
    restarted = next(r for r in sklearn_only.deployment("fraud").replicas if r.slot == 0)
    assert restarted.restarts == 1 and "SIGKILL" in (restarted.last_error or "")


def test_without_the_zygote_replicas_are_processes_of_their_own(
    deployed: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELHUB_ZYGOTE", "0")
    status = deployed.deploy("fraud@v0.0.1", replicas=2)
    assert infer(status.endpoint, [ROW])[0] == 200
    rows = state(deployed, "fraud")["replicas"]
    assert [r["forked"] for r in rows] == [False, False]
    assert state(deployed, "fraud")["zygote_pid"] is None
    # The same update path works without it.
    assert deployed.update("fraud", "v0.0.2").serving_version == "v0.0.2"
    assert infer(status.endpoint, [ROW])[1]["model_version"] == "v0.0.2"


def test_a_failed_load_in_a_forked_replica_keeps_the_contract(deployed: Hub, training_data) -> None:
    register_corrupt_version(deployed, training_data)
    deployed.deploy("fraud@v0.0.1")
    with pytest.raises(Exception, match=r"^Deployment fraud failed: .*corrupt"):
        deployed.update("fraud", "v0.0.3")
    log = "\n".join(deployed.deployment_logs("fraud", 60))
    assert "MODELHUB-FAILED" in log and "forked by the zygote" in log
    assert deployed.deployment("fraud").serving_version == "v0.0.1"


# -- health probes -----------------------------------------------------------------------------
def test_probe_settings_come_from_the_environment() -> None:
    assert ProbeSettings.from_env({}) == ProbeSettings(2.0, 2.0, 3)
    given = {
        "MODELHUB_PROBE_INTERVAL": "0.5",
        "MODELHUB_PROBE_TIMEOUT": "0.25",
        "MODELHUB_PROBE_FAILURES": "4",
    }
    assert ProbeSettings.from_env(given) == ProbeSettings(0.5, 0.25, 4)
    broken = {"MODELHUB_PROBE_INTERVAL": "soon", "MODELHUB_PROBE_TIMEOUT": "-1"}
    assert ProbeSettings.from_env(broken) == ProbeSettings()
    off = ProbeSettings.from_env({"MODELHUB_PROBE_FAILURES": "0"})
    assert not off.enabled and off.describe() == "health probes off"


def test_a_hung_replica_is_replaced_while_the_other_answers(
    deployed: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELHUB_PROBE_INTERVAL", "0.2")
    monkeypatch.setenv("MODELHUB_PROBE_TIMEOUT", "0.5")
    monkeypatch.setenv("MODELHUB_PROBE_FAILURES", "2")
    status = deployed.deploy("fraud@v0.0.1", replicas=2)
    victim = status.replicas[0]
    try:
        with Load(status.endpoint, workers=2, max_seconds=20) as load:
            wait_for(lambda: load.answered() >= 20, 10, "the first answers")
            stopped = time.monotonic()
            os.kill(victim.pid, signal.SIGSTOP)  # alive, but answers nobody

            def replaced() -> bool:
                replicas = deployed.deployment("fraud").replicas
                fresh = [r for r in replicas if r.health == "ready" and r.pid != victim.pid]
                return len(fresh) == 2

            # interval 0.2 s + 2 failures of 0.5 s, then a fork: ~1.5 s here; the deadline
            # only catches a hang on a slow machine (the time is printed)
            wait_for(replaced, 20, "the hung replica to be replaced", interval=0.1)
            back = time.monotonic() - stopped
            after = load.answered()
            wait_for(lambda: load.answered() >= after + 20, 10, "answers after the restart")
        report(f"SIGSTOP of one of 2 replicas (replaced in {back:.2f} s)", load)
        # Only a request already accepted by the stopped replica can fail (reset by the kill).
        assert load.failed <= load.workers, load.errors
        assert wait_for(lambda: not _alive(victim.pid), 10, "the hung replica to be gone")
        after_hang = deployed.deployment("fraud")
        assert after_hang.phase == "running"
        restarted = next(r for r in after_hang.replicas if r.slot == victim.slot)
        assert restarted.restarts == 1
        assert (restarted.last_error or "").startswith("hung: no answer to /v2/health/live")
        assert "hung" in "\n".join(deployed.deployment_logs("fraud", 50))
    finally:
        if _alive(victim.pid):
            os.kill(victim.pid, signal.SIGKILL)


# -- a supervisor that dies ----------------------------------------------------------------------
def test_replicas_exit_when_their_supervisor_is_killed_and_sync_brings_it_back(
    deployed: Hub,
) -> None:
    status = deployed.deploy("fraud@v0.0.1", replicas=2)
    runtime = RuntimeFolder(deployed.path, "fraud")
    supervisor = runtime.supervisor_pid()
    zygote_pid = state(deployed, "fraud")["zygote_pid"]
    assert supervisor and zygote_pid
    processes = [r.pid for r in status.replicas] + [zygote_pid]

    os.kill(supervisor, signal.SIGKILL)
    killed = time.monotonic()
    wait_for(
        lambda: not any(_alive(p) for p in processes),
        8,
        "the replicas and the zygote to exit on their own",
        interval=0.05,
    )
    print(f"\nsupervisor kill -9 to no replica left: {time.monotonic() - killed:.2f} s")
    with pytest.raises(OSError):
        infer(status.endpoint, [ROW], timeout=2)

    gone = deployed.deployment("fraud")
    assert gone.phase == "stopped" and gone.replicas == () and gone.serving_version is None
    assert f"its supervisor (pid {supervisor}) is gone" in (gone.last_error or "")
    assert "sync-deployments" in (gone.last_error or "")

    # The desired state is still committed: sync starts a new supervisor from it.
    assert [s.name for s in deployed.sync_deployments()] == ["fraud"]
    back = deployed.deployment("fraud")
    assert (back.phase, back.serving_version, back.ready_replicas) == ("running", "v0.0.1", 2)
    assert back.endpoint == status.endpoint and back.revision == status.revision
    assert infer(status.endpoint, [ROW])[0] == 200
    assert "recovering: the previous supervisor" in "\n".join(deployed.deployment_logs("fraud"))


def test_after_a_supervisor_crash_deploy_and_stop_work_as_usual(deployed: Hub) -> None:
    deployed.deploy("fraud@v0.0.1")
    runtime = RuntimeFolder(deployed.path, "fraud")
    supervisor = runtime.supervisor_pid()
    assert supervisor
    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: not runtime.supervisor_running(), 5, "the supervisor to be gone")
    # Deploying again under the name is allowed (nothing runs) and serves at once.
    again = deployed.deploy("fraud@v0.0.2")
    assert (again.phase, again.serving_version) == ("running", "v0.0.2")
    assert infer(again.endpoint, [ROW])[1]["model_version"] == "v0.0.2"

    os.kill(runtime.supervisor_pid() or 0, signal.SIGKILL)
    wait_for(lambda: not runtime.supervisor_running(), 5, "the supervisor to be gone")
    assert deployed.stop("fraud") is True
    assert deployed.deployments() == []

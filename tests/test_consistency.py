"""Many writers at once, and writers killed mid-way: the hub stays consistent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from jupyter_modelhub import Hub

ROOT = Path(__file__).resolve().parents[1]

WRITER = textwrap.dedent(
    """
    import sys
    from sklearn.dummy import DummyClassifier
    from jupyter_modelhub import Hub

    hub = Hub(sys.argv[1])
    model = DummyClassifier().fit([[0], [1]], [0, 1])
    for i in range(int(sys.argv[3])):
        hub.register(model, sys.argv[2], metrics={"i": i})
        print("registered", flush=True)
    """
)


def writer(hub: Path, name: str, count: int, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(hub), name, str(count)],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_consistent(hub: Hub) -> None:
    """Every version has its metadata and its artifact; every artifact loads."""
    for summary in hub.ls():
        for version in hub.versions(summary.name):
            assert version.meta.version == version.version
            assert hub.registry.dvc.has_object(version.meta.artifact)
    report = hub.doctor()
    assert [f for f in report.findings if f.kind.startswith("missing")] == []


def test_eight_processes_register_eighty_versions_without_losing_one(hub: Hub) -> None:
    procs = [writer(hub.path, "shared" if i % 2 else f"own-{i}", 10) for i in range(8)]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert out.count("registered") == 10
    shared = hub.versions("shared")
    assert len(shared) == 40
    assert len({v.version for v in shared}) == 40
    assert sum(m.versions for m in hub.ls()) == 80
    assert_consistent(hub)
    assert hub.doctor().findings == []


@pytest.mark.parametrize("step", ["stored", "written", "committed", "tagged"])
def test_a_registration_killed_at_any_step_leaves_the_hub_consistent(
    hub: Hub, classifier, step: str
) -> None:
    hub.register(classifier, "fraud")
    proc = writer(hub.path, "fraud", 1, MODELHUB_CRASH_AT=step)
    proc.communicate(timeout=120)
    assert proc.returncode == 86  # died at the crash point
    versions = [v.version for v in hub.versions("fraud")]
    assert versions == (["v0.0.2", "v0.0.1"] if step == "tagged" else ["v0.0.1"])
    assert_consistent(hub)
    report = hub.doctor(repair=True)
    assert report.ok
    if step in ("written", "committed"):
        assert report.findings, "doctor should report the leftovers"
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=hub.path, capture_output=True, text=True
    )
    assert status.stdout == ""
    assert hub.doctor().findings == [] or all(
        f.kind == "untagged-registration" for f in hub.doctor().findings
    )
    nxt = hub.register(classifier, "fraud")
    assert nxt.version == ("v0.0.3" if step == "tagged" else "v0.0.2")
    assert hub.load("fraud").predict([[0, 0, 0, 0]]).shape == (1,)


def test_kill_9_at_random_moments_never_corrupts_the_hub(hub: Hub) -> None:
    deadline = time.monotonic() + 300
    for delay in (0.3, 0.6, 0.9, 1.2, 1.5, 1.8):
        proc = writer(hub.path, "churn", 50)
        time.sleep(delay)  # not synchronisation: the point is to kill at an arbitrary moment
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        hub.doctor(repair=True)
        assert_consistent(hub)
        assert time.monotonic() < deadline
    before = len(hub.versions("churn")) if hub.ls() else 0
    from sklearn.dummy import DummyClassifier

    hub.register(DummyClassifier().fit([[0], [1]], [0, 1]), "churn")
    assert len(hub.versions("churn")) == before + 1
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=hub.path, capture_output=True, text=True
    )
    assert status.stdout == ""


def test_many_processes_check_out_the_same_artifact_at_once(hub: Hub, classifier) -> None:
    hub.register(classifier, "fraud")
    script = (
        "import sys; from jupyter_modelhub import Hub; "
        "print(Hub(sys.argv[1]).artifact_path('fraud'))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(hub.path)],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in results]
    paths = {out.strip() for out, _ in results}
    assert len(paths) == 1
    assert (Path(paths.pop()) / "model.joblib").is_file()
    leftovers = [
        p.name for p in (hub.path / ".modelhub" / "artifacts").iterdir() if ".tmp-" in p.name
    ]
    assert leftovers == []

"""``doctor``: find, and on request repair, what an interrupted write left in a hub.

What a crash can leave (see ``registry.py`` for the write order), and the repair:

- stale git lock files (``index.lock``, ref locks) -> removed (we hold the hub lock);
- uncommitted files under ``models/`` or in ``dvc.yaml`` -> restored to the last commit;
- a workspace artifact that differs from its committed ``.dvc`` record -> re-linked from cache;
- a registration commit that never got its tag -> reported (it is not a version; harmless);
- a version whose metadata or artifact is missing -> reported (pull it, or deregister it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import IntegrityError, NotFound
from ..models import Record
from .dvcstore import DvcStore

if TYPE_CHECKING:
    from .registry import ModelRegistry

_REGISTER_SUBJECT = re.compile(r"^Register (?P<name>\S+) (?P<version>v\d+\.\d+\.\d+)$")


@dataclass(frozen=True)
class Finding(Record):
    """One problem: what it is, where, and whether ``--repair`` mended it."""

    kind: str
    subject: str
    detail: str
    repaired: bool = False


@dataclass
class DoctorReport(Record):
    """Everything ``doctor`` found; ``ok`` when nothing needs a human."""

    findings: list[Finding] = field(default_factory=list)
    checked_versions: int = 0

    @property
    def ok(self) -> bool:
        return all(f.repaired for f in self.findings)


def run_doctor(registry: ModelRegistry, repair: bool = False) -> DoctorReport:
    """Check (and with ``repair`` mend) the hub; holds the hub lock while it works."""
    report = DoctorReport()
    with registry.lock():
        _git_locks(registry, report, repair)
        _uncommitted(registry, report, repair)
        _workspace_artifacts(registry, report, repair)
        _untagged_registrations(registry, report)
        _versions(registry, report)
        if repair:
            registry.tags.cache_file.unlink(missing_ok=True)
    return report


def _git_locks(registry: ModelRegistry, report: DoctorReport, repair: bool) -> None:
    git_dir = registry.git.git_dir
    candidates = [git_dir / "index.lock", git_dir / "packed-refs.lock", git_dir / "HEAD.lock"]
    candidates += list((git_dir / "refs").rglob("*.lock"))
    for lock in candidates:
        if lock.exists():
            if repair:
                lock.unlink(missing_ok=True)
            report.findings.append(
                Finding(
                    "stale-git-lock",
                    str(lock.relative_to(registry.root)),
                    "left by an interrupted git command",
                    repair,
                )
            )


def _uncommitted(registry: ModelRegistry, report: DoctorReport, repair: bool) -> None:
    changed = registry.git.status_porcelain("models", "dvc.yaml")
    if not changed:
        return
    paths = sorted({line[3:].strip().strip('"') for line in changed})
    if repair:
        registry.git.restore("models", "dvc.yaml")
    for path in paths:
        report.findings.append(
            Finding("uncommitted-change", path, "left by an interrupted registration", repair)
        )


def _workspace_artifacts(registry: ModelRegistry, report: DoctorReport, repair: bool) -> None:
    models_dir = registry.root / "models"
    if not models_dir.is_dir():
        return
    for dvc_file in sorted(models_dir.glob("*/*.dvc")):
        try:
            obj = DvcStore.parse_dvc_file(dvc_file.read_text())
        except (OSError, IntegrityError):
            continue
        target = dvc_file.with_suffix("")
        if _matches(registry.dvc, obj, target):
            continue
        repaired = False
        if repair:
            try:
                registry.dvc.materialize(obj, target, verify=True)
                repaired = True
            except (NotFound, IntegrityError):
                repaired = False
        report.findings.append(
            Finding(
                "workspace-artifact",
                str(target.relative_to(registry.root)),
                "differs from its committed .dvc record",
                repaired,
            )
        )


def _matches(store: DvcStore, obj: object, target: Path) -> bool:
    """True if the workspace copy at ``target`` has exactly the recorded files (by inode/size)."""
    from ..models import StoredObject

    assert isinstance(obj, StoredObject)
    try:
        entries = store.tree_entries(obj)
    except (NotFound, IntegrityError):
        return target.exists()
    is_dir = obj.md5.endswith(".dir")
    for relpath, md5 in entries:
        path = target / relpath if is_dir else target
        cached = store.object_path(md5)
        if not path.is_file() or not cached.exists():
            return False
        if not path.samefile(cached) and path.stat().st_size != cached.stat().st_size:
            return False
    if is_dir and target.is_dir():
        present = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
        return present == {rel for rel, _ in entries}
    return True


def _untagged_registrations(registry: ModelRegistry, report: DoctorReport) -> None:
    """Registration commits among the last 200 that no version tag points at."""
    out = registry.git.run("log", "-n", "200", "--format=%H %s", check=False)
    tagged = {v.commit for model in registry.state().values() for v in model.versions.values()}
    for line in out.splitlines():
        commit, _, subject = line.partition(" ")
        match = _REGISTER_SUBJECT.match(subject)
        if match and commit not in tagged:
            report.findings.append(
                Finding(
                    "untagged-registration",
                    commit[:12],
                    f"an interrupted registration of {match['name']} {match['version']}; "
                    "it never became a version (harmless)",
                    True,
                )
            )


def _versions(registry: ModelRegistry, report: DoctorReport) -> None:
    for name, model in registry.state().items():
        live = model.live_versions()
        report.checked_versions += len(live)
        files = ("meta.yaml", "artifact.dvc")
        texts = registry.git.show_files(
            [(v.commit, f"models/{name}/{f}") for v in live for f in files]
        )
        for i, state in enumerate(live):
            meta_text, dvc_text = texts[2 * i], texts[2 * i + 1]
            if meta_text is None:
                report.findings.append(
                    Finding(
                        "missing-metadata",
                        state.tag,
                        "the tagged commit has no metadata; deregister this version",
                    )
                )
            elif dvc_text is None:
                report.findings.append(
                    Finding("missing-artifact-record", state.tag, "no artifact.dvc at its commit")
                )
            elif not registry.dvc.has_object(DvcStore.parse_dvc_file(dvc_text)) and not (
                registry.dvc.remotes()
            ):
                report.findings.append(
                    Finding(
                        "missing-artifact",
                        state.tag,
                        "its artifact is not in the local cache and there is no remote",
                    )
                )

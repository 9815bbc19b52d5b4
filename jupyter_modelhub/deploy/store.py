"""Desired states of deployments in git: ``deployments/NAME.yaml``, one commit per change.

The history of a deployment's file is its list of revisions (revision 1 is the oldest commit
that wrote it); a rollback writes an old revision's spec again as a new commit, as
``kubectl rollout undo`` does. Writes take the hub lock, like every registry write.
"""

from __future__ import annotations

import difflib
from datetime import datetime, timezone

import yaml

from ..errors import InvalidArgument, NotFound
from ..registry.dvcstore import atomic_write
from ..registry.refs import validate_name
from ..registry.registry import ModelRegistry
from .records import Revision
from .spec import DeploymentSpec

DEPLOYMENTS_DIR = "deployments"
_FIELD = "\x1f"


class DeploymentStore:
    """Reads and commits the desired states of a hub's deployments."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self.root = registry.root
        self.git = registry.git

    def relpath(self, name: str) -> str:
        validate_name(name, "deployment name")
        return f"{DEPLOYMENTS_DIR}/{name}.yaml"

    def names(self) -> list[str]:
        folder = self.root / DEPLOYMENTS_DIR
        return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []

    def get(self, name: str) -> DeploymentSpec | None:
        """The current desired state of ``name``, or ``None`` if there is no such deployment."""
        path = self.root / self.relpath(name)
        if not path.is_file():
            return None
        return DeploymentSpec.from_yaml(path.read_text())

    def require(self, name: str) -> DeploymentSpec:
        """Like ``get``, but a missing deployment is a ``NotFound`` that names the known ones."""
        spec = self.get(name)
        if spec is None:
            names = self.names()
            close = difflib.get_close_matches(name, names, n=1)
            if close:
                hint = f"Did you mean {close[0]!r}?"
            elif names:
                hint = f"Deployments: {', '.join(names)}."
            else:
                hint = "Deploy a model with `modelhub deploy MODEL --name NAME`."
            raise NotFound(f"No deployment named {name!r} in this hub.", hint=hint)
        return spec

    def save(self, spec: DeploymentSpec, message: str) -> str | None:
        """Write ``spec`` and commit it; returns the commit, or ``None`` if nothing changed."""
        rel = self.relpath(spec.name)
        path = self.root / rel
        with self.registry.lock():
            text = spec.to_yaml()
            if path.is_file() and path.read_text() == text and self._tracked(rel):
                return None
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, text)
            return self.git.commit_paths([rel], message)

    def delete(self, name: str, message: str) -> bool:
        """Remove the desired state of ``name`` with a commit; ``False`` if there was none."""
        rel = self.relpath(name)
        path = self.root / rel
        with self.registry.lock():
            if not path.exists():
                return False
            path.unlink()
            if self._tracked(rel):
                self.git.commit_paths([rel], message)
            return True

    def revisions(self, name: str) -> list[Revision]:
        """Every revision of ``name``, oldest first (commits that deleted it are not ones)."""
        rel = self.relpath(name)
        out = self.git.run(
            "log", "--reverse", f"--format=%H{_FIELD}%an{_FIELD}%at{_FIELD}%s", "--", rel
        )
        commits = [line.split(_FIELD, 3) for line in out.splitlines() if line]
        texts = self.git.show_files([(c[0], rel) for c in commits])
        revisions: list[Revision] = []
        for (commit, author, stamp, subject), text in zip(commits, texts, strict=True):
            if text is None:
                continue
            revisions.append(
                Revision(
                    revision=len(revisions) + 1,
                    commit=commit,
                    author=author,
                    time=datetime.fromtimestamp(int(stamp), timezone.utc),
                    message=subject,
                    spec=DeploymentSpec.from_dict(yaml.safe_load(text)),
                )
            )
        return revisions

    def revision_count(self, name: str) -> int:
        """How many revisions ``name`` has (one git call; the current one is the last)."""
        out = self.git.run("log", "--diff-filter=ACMRT", "--format=%H", "--", self.relpath(name))
        return len(out.split())

    def revision(self, name: str, number: int) -> Revision:
        revisions = self.revisions(name)
        if not revisions:
            raise NotFound(f"Deployment {name!r} has no revisions.")
        if not 1 <= number <= len(revisions):
            raise InvalidArgument(
                f"Deployment {name!r} has no revision {number}.",
                hint=f"Its revisions are 1 to {len(revisions)}; list them with "
                f"`modelhub revisions {name}`.",
            )
        return revisions[number - 1]

    def _tracked(self, rel: str) -> bool:
        return bool(self.git.run("ls-files", "--", rel).strip())

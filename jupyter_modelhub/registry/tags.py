"""GTO's tag conventions: writing tag names and rebuilding registry state from tags.

Tags are the registry's source of truth, exactly as GTO defines them:

- ``name@v1.2.3`` registers a version; ``name@v1.2.3!#N`` deregisters it;
- ``name#stage#N`` assigns a stage; ``name#stage!#N`` unassigns it;
- ``name@deprecated#N`` deprecates the model.

``N`` counts per artifact over every tag that carries a counter. Reading state is the registry's
hottest path (``ls`` over thousands of versions), so tag objects are parsed once and remembered
in a small cache keyed by their (immutable) object id.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..models import EventKind, HistoryEvent
from .dvcstore import atomic_write
from .gitrepo import GitRepo, TagObject
from .refs import SemVer

_NAME = r"[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?"
TAG_RE = re.compile(
    rf"^(?P<name>{_NAME})(?:"
    rf"@(?P<version>v(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+))(?P<dereg>!)?"
    rf"|#(?P<stage>{_NAME})(?P<unassign>!)?"
    rf"|@(?P<deprecated>deprecated)"
    rf")(?:#(?P<counter>\d+))?$"
)


def version_tag(name: str, version: str) -> str:
    return f"{name}@{version}"


def stage_tag(name: str, stage: str, counter: int, unassign: bool = False) -> str:
    return f"{name}#{stage}{'!' if unassign else ''}#{counter}"


def deprecate_tag(name: str, counter: int) -> str:
    return f"{name}@deprecated#{counter}"


def deregister_tag(name: str, version: str, counter: int) -> str:
    return f"{name}@{version}!#{counter}"


@dataclass(slots=True)
class VersionState:
    version: str
    semver: SemVer
    tag: str
    commit: str
    author: str
    timestamp: int
    deregistered: bool = False
    stages: list[str] = field(default_factory=list)

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp, timezone.utc)


# (timestamp, kind order, counter, kind, version, stage, author, tag, commit, subject)
RawEvent = tuple[int, int, int, EventKind, "str | None", "str | None", str, str, str, str]


@dataclass(slots=True)
class ModelState:
    """Everything the tags say about one model."""

    name: str
    versions: dict[str, VersionState] = field(default_factory=dict)
    raw_events: list[RawEvent] = field(default_factory=list)
    stages: dict[str, str] = field(default_factory=dict)
    counter: int = 0
    deprecated: bool = False
    live: list[VersionState] = field(default_factory=list)

    def live_versions(self) -> list[VersionState]:
        """Registered (not deregistered) versions, oldest semver first."""
        return self.live

    def latest(self) -> VersionState | None:
        return self.live[-1] if self.live else None

    @property
    def updated(self) -> datetime | None:
        if not self.raw_events:
            return None
        return datetime.fromtimestamp(max(e[0] for e in self.raw_events), timezone.utc)

    @property
    def events(self) -> list[HistoryEvent]:
        """The model's history, oldest first (built on demand: ``ls`` never needs it)."""
        return [
            HistoryEvent(
                self.name,
                kind,
                version,
                stage,
                author,
                datetime.fromtimestamp(ts, timezone.utc),
                tag,
                commit,
                subject,
            )
            for ts, _, _, kind, version, stage, author, tag, commit, subject in self.raw_events
        ]


class TagIndex:
    """Reads all GTO tags of a repository into ``ModelState``s, with a parse cache."""

    def __init__(self, git: GitRepo, cache_file: Path) -> None:
        self.git = git
        self.cache_file = cache_file
        self._cache: dict[str, TagObject] | None = None

    def _load_cache(self) -> dict[str, TagObject]:
        if self._cache is None:
            try:
                raw = json.loads(self.cache_file.read_text())
                make = TagObject._make
                self._cache = {oid: make(fields) for oid, fields in raw.items()}
            except (OSError, ValueError, TypeError):
                self._cache = {}
        return self._cache

    def _save_cache(self, live: set[str]) -> None:
        cache = {oid: obj for oid, obj in self._load_cache().items() if oid in live}
        self._cache = cache
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.cache_file, json.dumps(cache, separators=(",", ":")))

    def read(
        self, at: datetime | None = None, refs: dict[str, str] | None = None
    ) -> dict[str, ModelState]:
        """Rebuild the state of every model from the repository's tags (as of ``at``, if given).

        ``refs`` (tag name -> tag object id, from ``GitRepo.tag_objects``) saves re-listing them.
        """
        refs = self.git.tag_objects() if refs is None else refs
        cache = self._load_cache()
        missing = [oid for oid in refs.values() if oid not in cache]
        if missing:
            cache.update(self.git.read_tag_objects(missing))
            self._save_cache(set(refs.values()))
        limit = at.timestamp() if at else None
        return build_state(
            (tag, cache[oid])
            for tag, oid in refs.items()
            if oid in cache and (limit is None or cache[oid].timestamp <= limit)
        )


def build_state(tags: Iterable[tuple[str, TagObject]]) -> dict[str, ModelState]:
    """Fold ``(tag name, tag object)`` pairs into model states, following GTO's semantics.

    This is the hot path of ``ls``: one regex match per tag, no per-tag datetimes.
    """
    models: dict[str, ModelState] = {}
    stage_events: dict[str, list[tuple[int, int, str, str, bool, str, str, str]]] = defaultdict(
        list
    )
    match_tag = TAG_RE.match
    for tag, obj in tags:
        match = match_tag(tag)
        if not match:
            continue
        name, version, stage, counter_text = match.group("name", "version", "stage", "counter")
        state = models.get(name)
        if state is None:
            state = models[name] = ModelState(name)
        counter = int(counter_text) if counter_text else 0
        if counter > state.counter:
            state.counter = counter
        commit, tagger, _email, ts, subject = obj
        if version and not match["dereg"]:
            semver = SemVer(int(match["major"]), int(match["minor"]), int(match["patch"]))
            state.versions[version] = VersionState(version, semver, tag, commit, tagger, ts)
            state.raw_events.append(
                (ts, 0, counter, "register", version, None, tagger, tag, commit, subject)
            )
        elif stage:
            unassign = bool(match["unassign"])
            stage_events[name].append((counter, ts, stage, commit, unassign, tagger, tag, subject))
        elif match["deprecated"]:
            state.deprecated = True
            state.raw_events.append(
                (ts, 1, counter, "deprecate", None, None, tagger, tag, commit, subject)
            )
        elif version:
            state.raw_events.append(
                (ts, 1, counter, "deregister", version, None, tagger, tag, commit, subject)
            )
    for name, state in models.items():
        for event in state.raw_events:
            if event[3] == "deregister" and event[4] in state.versions:
                state.versions[event[4]].deregistered = True
        _apply_stage_events(state, stage_events.get(name, []))
        state.raw_events.sort(key=lambda e: e[:3])
        state.live = sorted(
            (v for v in state.versions.values() if not v.deregistered), key=lambda v: v.semver
        )
    return models


def _apply_stage_events(
    state: ModelState, events: list[tuple[int, int, str, str, bool, str, str, str]]
) -> None:
    """A stage belongs to the version that most recently got it and still has it (GTO's rule)."""
    if not events:
        return
    by_commit: dict[str, VersionState] = {}
    for v in state.versions.values():
        # One version per commit per artifact (GTO); a deregistered version loses its commit.
        if not v.deregistered or v.commit not in by_commit:
            by_commit[v.commit] = v
    holders: dict[str, list[str]] = defaultdict(list)  # stage -> versions, oldest grant first
    for counter, ts, stage, commit, unassign, tagger, tag, subject in sorted(events):
        target = by_commit.get(commit)
        version = target.version if target else None
        kind: EventKind = "unassign" if unassign else "assign"
        state.raw_events.append(
            (ts, 1, counter, kind, version, stage, tagger, tag, commit, subject)
        )
        if target is None or target.deregistered:
            continue
        granted = holders[stage]
        if target.version in granted:
            granted.remove(target.version)
        if not unassign:
            granted.append(target.version)
    for stage, granted in holders.items():
        if granted:  # like an MLflow alias, a stage names one version: the latest granted
            state.stages[stage] = granted[-1]
            state.versions[granted[-1]].stages.append(stage)

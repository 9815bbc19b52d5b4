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
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..models import EventKind, HistoryEvent
from .gitrepo import GitRepo, TagObject
from .refs import SemVer

_NAME = r"[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?"
TAG_RE = re.compile(
    rf"^(?P<name>{_NAME})(?:"
    rf"@(?P<version>v\d+\.\d+\.\d+)(?P<dereg>!)?"
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


@dataclass
class VersionState:
    version: str
    semver: SemVer
    tag: str
    commit: str
    author: str
    time: datetime
    deregistered: bool = False
    stages: list[str] = field(default_factory=list)


@dataclass
class ModelState:
    """Everything the tags say about one model."""

    name: str
    versions: dict[str, VersionState] = field(default_factory=dict)
    events: list[HistoryEvent] = field(default_factory=list)
    stages: dict[str, str] = field(default_factory=dict)
    counter: int = 0
    deprecated: bool = False

    def live_versions(self) -> list[VersionState]:
        """Registered (not deregistered) versions, oldest semver first."""
        return sorted(
            (v for v in self.versions.values() if not v.deregistered), key=lambda v: v.semver
        )

    def latest(self) -> VersionState | None:
        live = self.live_versions()
        return live[-1] if live else None

    @property
    def updated(self) -> datetime | None:
        return max((e.time for e in self.events), default=None)


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
                self._cache = {oid: TagObject(*fields) for oid, fields in raw.items()}
            except (OSError, ValueError, TypeError):
                self._cache = {}
        return self._cache

    def _save_cache(self, live: set[str]) -> None:
        cache = {oid: obj for oid, obj in self._load_cache().items() if oid in live}
        self._cache = cache
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_file.with_name(f".{self.cache_file.name}.{os.getpid()}")
        tmp.write_text(json.dumps({oid: list(obj.__dict__.values()) for oid, obj in cache.items()}))
        os.replace(tmp, self.cache_file)

    def read(self, at: datetime | None = None) -> dict[str, ModelState]:
        """Rebuild the state of every model from the repository's tags (as of ``at``, if given)."""
        refs = self.git.tag_objects()
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


def build_state(tags: object) -> dict[str, ModelState]:
    """Fold ``(tag name, tag object)`` pairs into model states, following GTO's semantics."""
    models: dict[str, ModelState] = {}
    stage_events: dict[str, list[tuple[int, int, str, str, bool, HistoryEvent]]] = defaultdict(list)
    for tag, obj in tags:  # type: ignore[attr-defined]
        match = TAG_RE.match(tag)
        if not match:
            continue
        name = match["name"]
        state = models.get(name)
        if state is None:
            state = models[name] = ModelState(name)
        counter = int(match["counter"]) if match["counter"] else 0
        state.counter = max(state.counter, counter)
        when = datetime.fromtimestamp(obj.timestamp, timezone.utc)
        version = match["version"]
        if version and not match["dereg"]:
            semver = SemVer.try_parse(version)
            if semver is None:
                continue
            state.versions[version] = VersionState(
                version, semver, tag, obj.commit, obj.tagger, when
            )
            state.events.append(
                HistoryEvent(
                    name, "register", version, None, obj.tagger, when, tag, obj.commit, obj.subject
                )
            )
        elif match["stage"]:
            kind: EventKind = "unassign" if match["unassign"] else "assign"
            event = HistoryEvent(
                name, kind, None, match["stage"], obj.tagger, when, tag, obj.commit, obj.subject
            )
            stage_events[name].append(
                (counter, obj.timestamp, match["stage"], obj.commit, kind == "unassign", event)
            )
        elif match["deprecated"]:
            state.deprecated = True
            state.events.append(
                HistoryEvent(
                    name, "deprecate", None, None, obj.tagger, when, tag, obj.commit, obj.subject
                )
            )
        elif version and match["dereg"]:
            state.events.append(
                HistoryEvent(
                    name,
                    "deregister",
                    version,
                    None,
                    obj.tagger,
                    when,
                    tag,
                    obj.commit,
                    obj.subject,
                )
            )
    for name, state in models.items():
        for event in state.events:
            if event.kind == "deregister" and event.version in state.versions:
                state.versions[event.version].deregistered = True
        _apply_stage_events(state, stage_events.get(name, []))
        state.events.sort(key=lambda e: (e.time, e.kind != "register", _counter(e.tag)))
    return models


def _counter(tag: str) -> int:
    match = TAG_RE.match(tag)
    return int(match["counter"]) if match and match["counter"] else 0


def _apply_stage_events(
    state: ModelState, events: list[tuple[int, int, str, str, bool, HistoryEvent]]
) -> None:
    """A stage belongs to the version that most recently got it and still has it (GTO's rule)."""
    by_commit: dict[str, VersionState] = {}
    for v in state.versions.values():
        # One version per commit per artifact (GTO); a deregistered version loses its commit.
        if not v.deregistered or v.commit not in by_commit:
            by_commit[v.commit] = v
    holders: dict[str, list[str]] = defaultdict(list)  # stage -> versions, oldest grant first
    for _counter, _ts, stage, commit, unassign, event in sorted(events, key=lambda e: e[:2]):
        target = by_commit.get(commit)
        version = target.version if target else None
        state.events.append(
            HistoryEvent(
                event.name,
                event.kind,
                version,
                stage,
                event.author,
                event.time,
                event.tag,
                commit,
                event.message,
            )
        )
        if target is None or target.deregistered:
            continue
        granted = holders[stage]
        if version in granted:
            granted.remove(version)
        if not unassign:
            granted.append(version)  # type: ignore[arg-type]
    for stage, granted in holders.items():
        if granted:  # like an MLflow alias, a stage names one version: the latest granted
            state.stages[stage] = granted[-1]
            state.versions[granted[-1]].stages.append(stage)

"""The model registry: versions and stages of models, stored in a git + DVC hub.

Layout of a hub (a git repository with DVC initialised)::

    dvc.yaml                      artifacts: one entry per model (type: model)
    models/NAME/meta.yaml         metadata of the version at this commit (git)
    models/NAME/artifact.dvc      DVC record of the artifact folder
    models/NAME/artifact/         the artifact's files (DVC-tracked, git-ignored)
    models/NAME/reference.parquet(.dvc)   reference sample for drift (optional)
    .modelhub/                    lock, caches and runtime state (git-ignored)

A version exists exactly when its GTO tag ``NAME@vX.Y.Z`` exists. A registration stores the
bytes in DVC's cache first, then under the hub lock writes the files, commits, and tags last:
a crash at any step leaves at most an untagged commit or uncommitted files, which
``doctor`` reports and repairs, never a tag without its artifact or metadata.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from ..errors import AlreadyExists, IntegrityError, InvalidArgument, NotFound
from ..models import (
    HistoryEvent,
    ModelSummary,
    ModelVersion,
    ReferenceData,
    StoredObject,
    VersionMeta,
    utc_now,
)
from . import flavors, lineage
from .dvcstore import DvcStore, atomic_write, remove_path
from .gitrepo import GitRepo
from .lock import hub_lock
from .refs import FIRST_VERSION, Bump, ModelRef, SemVer, parse_ref, validate_name, validate_stage
from .signature import infer_signature
from .tags import (
    ModelState,
    TagIndex,
    VersionState,
    deprecate_tag,
    deregister_tag,
    stage_tag,
    version_tag,
)

RUNTIME_DIR = ".modelhub"
MODELS_DIR = "models"
ProgressCallback = Callable[[int], None]


def _crash_point(step: str) -> None:
    """Fault injection for the crash tests: die here when MODELHUB_CRASH_AT names this step."""
    if os.environ.get("MODELHUB_CRASH_AT") == step:
        os._exit(86)


class ModelRegistry:
    """Register, read, stage and load model versions in one hub."""

    def __init__(self, root: Path, lock_timeout: float = 120.0) -> None:
        self.root = Path(root)
        self.git = GitRepo(self.root)
        self.dvc = DvcStore(self.root)
        self.runtime = self.root / RUNTIME_DIR
        self.tags = TagIndex(self.git, self.runtime / "cache" / "tags.json")
        self.lock_timeout = lock_timeout

    # -- paths ---------------------------------------------------------------------------------
    def model_dir(self, name: str) -> str:
        return f"{MODELS_DIR}/{name}"

    def lock(self) -> Any:
        return hub_lock(self.runtime / "hub.lock", self.lock_timeout)

    # -- state -----------------------------------------------------------------------------------
    def state(self, at: datetime | None = None) -> dict[str, ModelState]:
        return self.tags.read(at=at)

    def _model(self, name: str, states: dict[str, ModelState] | None = None) -> ModelState:
        validate_name(name)
        states = self.state() if states is None else states
        model = states.get(name)
        if model is None or not model.versions:
            raise NotFound(f"No model named {name!r} in this hub.", hint=_suggest(name, states))
        return model

    def resolve(
        self,
        ref: str | ModelRef,
        at: datetime | None = None,
        states: dict[str, ModelState] | None = None,
    ) -> VersionState:
        """Find the version a reference points at (optionally as the hub was at time ``at``)."""
        parsed = parse_ref(ref) if isinstance(ref, str) else ref
        model = self._model(parsed.name, self.state(at=at) if states is None else states)
        if parsed.version:
            found = model.versions.get(parsed.version)
            if found is None or found.deregistered:
                known = ", ".join(v.version for v in model.live_versions()[-5:])
                raise NotFound(
                    f"{parsed.name} has no version {parsed.version}.",
                    hint=f"Known versions: {known}." if known else None,
                )
            return found
        if parsed.stage:
            version = model.stages.get(parsed.stage)
            if version is None:
                stages = ", ".join(sorted(model.stages)) or "none"
                when = f" at {at.isoformat()}" if at else ""
                raise NotFound(
                    f"No version of {parsed.name} is in stage {parsed.stage!r}{when}.",
                    hint=f"Stages in use: {stages}. Promote one with "
                    f"`modelhub promote {parsed.name}@VERSION --stage {parsed.stage}`.",
                )
            return model.versions[version]
        latest = model.latest()
        if latest is None:
            raise NotFound(f"{parsed.name} has no registered versions left.")
        return latest

    # -- reading --------------------------------------------------------------------------------
    def ls(self) -> list[ModelSummary]:
        """Every model with its latest version, version count and stage holders.

        The answer is cached under a digest of every tag name and object id, so listing an
        unchanged hub costs one ``git for-each-ref`` and reading a small file.
        """
        refs = self.git.tag_objects()
        digest = hashlib.sha1(
            "\n".join(f"{t} {o}" for t, o in refs.items()).encode(), usedforsecurity=False
        ).hexdigest()
        cache = self.runtime / "cache" / "ls.json"
        try:
            cached = json.loads(cache.read_text())
            if cached.get("key") == digest:
                return [ModelSummary.from_dict(m) for m in cached["models"]]
        except (OSError, ValueError, KeyError, TypeError):
            pass
        out = []
        for name, model in sorted(self.tags.read(refs=refs).items()):
            live = model.live_versions()
            if not live:
                continue
            out.append(
                ModelSummary(
                    name=name,
                    latest=live[-1].version,
                    versions=len(live),
                    stages=dict(sorted(model.stages.items())),
                    updated=model.updated,
                    deprecated=model.deprecated,
                )
            )
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(cache, json.dumps({"key": digest, "models": [m.to_dict() for m in out]}))
        except OSError:
            pass  # a read-only hub still lists
        return out

    def _read_meta(self, items: Iterable[VersionState], name: str) -> list[VersionMeta]:
        items = list(items)
        path = f"{self.model_dir(name)}/meta.yaml"
        texts = self.git.show_files([(v.commit, path) for v in items])
        metas = []
        for state, text in zip(items, texts, strict=False):
            if text is None:
                raise IntegrityError(
                    f"{state.tag} points at a commit without {path}.",
                    hint="Run `modelhub doctor` to see what is wrong with the hub.",
                )
            metas.append(VersionMeta.from_dict(yaml.safe_load(text)))
        return metas

    def _version_record(
        self, model: ModelState, state: VersionState, meta: VersionMeta
    ) -> ModelVersion:
        return ModelVersion(
            meta=meta,
            tag=state.tag,
            commit=state.commit,
            stages=tuple(sorted(state.stages)),
            deprecated=model.deprecated,
        )

    def show(self, ref: str, at: datetime | None = None) -> ModelVersion:
        """The full record of the version ``ref`` points at."""
        states = self.state()
        state = self.resolve(ref, states=states if at is None else self.state(at=at))
        name = parse_ref(ref).name
        model = self._model(name, states)
        current = model.versions.get(state.version, state)  # with today's stages
        (meta,) = self._read_meta([current], name)
        return self._version_record(model, current, meta)

    def versions(self, name: str) -> list[ModelVersion]:
        """Every live version of a model, newest first."""
        model = self._model(name)
        live = list(reversed(model.live_versions()))
        metas = self._read_meta(live, name)
        return [self._version_record(model, s, m) for s, m in zip(live, metas, strict=False)]

    def history(self, name: str) -> list[HistoryEvent]:
        """Every registration and stage change of a model, oldest first, with who and when."""
        return list(self._model(name).events)

    # -- loading ----------------------------------------------------------------------------------
    def load(self, ref: str) -> Any:
        """The live model object of ``ref``, after checking every byte against its DVC md5."""
        version = self.show(ref)
        meta = version.meta
        self._ensure_local(version)
        paths = self.dvc.verified_files(meta.artifact)
        folder = None
        if meta.flavor == "files":
            folder = self.checkout(version)
        return flavors.load(meta.flavor, meta.files, paths, folder)

    def checkout(self, version: ModelVersion) -> Path:
        """Materialise a version's artifact folder (verified) under the runtime folder."""
        self._ensure_local(version)
        obj = version.meta.artifact
        dest = self.runtime / "artifacts" / obj.md5.replace(".dir", "")
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.dvc.materialize(obj, dest, verify=True, replace=False)
        return dest

    def reference_data(self, ref: str) -> Any:
        """The reference sample stored with a version, as a pandas DataFrame."""
        import pandas as pd

        version = self.show(ref)
        reference = version.meta.reference
        if reference is None:
            raise NotFound(
                f"{version.ref} was registered without reference data.",
                hint="Register with reference=X_train (or --reference FILE) to keep a sample.",
            )
        self._ensure_local(version)
        path = self.dvc.verify_object(reference.stored.md5, reference.stored)
        return pd.read_parquet(path)

    def _ensure_local(self, version: ModelVersion) -> None:
        objects = [version.meta.artifact]
        if version.meta.reference:
            objects.append(version.meta.reference.stored)
        if all(self.dvc.has_object(o) for o in objects):
            return
        if not self.dvc.remotes():
            raise NotFound(
                f"The artifact of {version.ref} is not in this hub's cache and the hub has no "
                "DVC remote to fetch it from.",
                hint="Add the team's remote with `dvc remote add -d NAME URL`, then retry.",
            )
        self.pull(version.ref)

    # -- writing ---------------------------------------------------------------------------------
    def register(
        self,
        model: Any,
        name: str,
        *,
        version: str | None = None,
        bump: Bump = "patch",
        sample: Any = None,
        reference: Any = None,
        data: Any = None,
        metrics: dict[str, float] | None = None,
        params: dict[str, Any] | None = None,
        description: str = "",
        labels: Iterable[str] = (),
        onnx: bool = False,
        notebook: str | None = None,
        reference_rows: int = 100_000,
        progress: ProgressCallback | None = None,
    ) -> ModelVersion:
        """Store a model as a new version of ``name`` and tag it; see the module docstring."""
        validate_name(name)
        explicit = SemVer.parse(version) if version is not None else None
        if bump not in ("major", "minor", "patch"):
            raise InvalidArgument(f"Invalid bump {bump!r}.", hint="Use major, minor or patch.")
        metrics = _numbers(metrics or {}, "metrics")
        params = _plain(params or {}, "params")
        labels = [validate_name(label, "label") for label in labels]
        if reference is not None and sample is None:
            sample = reference
        prepared = flavors.prepare(model, onnx=onnx, sample=sample)
        signature = infer_signature(sample, prepared.model) if sample is not None else None
        reference_frame = _reference_frame(reference, signature, reference_rows)

        # 1. Bytes into DVC's cache (content-addressed; safe to do before taking the lock).
        artifact = self.dvc.store_folder(
            "artifact", prepared.from_disk, prepared.in_memory, progress
        )
        reference_record = None
        if reference_frame is not None:
            frame, total = reference_frame
            md5 = self.dvc.store_bytes(_parquet_bytes(frame))
            size = self.dvc.object_path(md5).stat().st_size
            reference_record = ReferenceData(
                StoredObject("reference.parquet", md5, size, 1),
                rows=len(frame),
                columns=tuple(map(str, frame.columns)),
                total_rows=total,
            )
        _crash_point("stored")
        lineage_record = lineage.collect(
            flavor=prepared.flavor, model_type=prepared.model_type, data=data, notebook=notebook
        )
        author = self.git.identity()[0]

        # 2. Under the lock: decide the version, write files, commit, tag (the commit point).
        with self.lock():
            states = self.state()
            current = states.get(name)
            chosen = self._next_version(name, current, explicit, bump)
            meta = VersionMeta(
                name=name,
                version=str(chosen),
                flavor=prepared.flavor,  # type: ignore[arg-type]
                files=prepared.files,
                artifact=artifact,
                created=utc_now(),
                author=author,
                signature=signature,
                metrics=metrics,
                params=params,
                description=description,
                labels=tuple(labels),
                lineage=lineage_record,
                reference=reference_record,
                model_type=prepared.model_type,
            )
            paths = self._write_version_files(meta)
            _crash_point("written")
            commit = self.git.commit_paths(paths, f"Register {name} {meta.version}")
            _crash_point("committed")
            tag = version_tag(name, meta.version)
            self.git.create_tag(tag, commit, f"Registering artifact {name} version {meta.version}")
            _crash_point("tagged")
            self.git.pack_refs_if_many()
        return ModelVersion(meta=meta, tag=tag, commit=commit)

    def _next_version(
        self, name: str, current: ModelState | None, explicit: SemVer | None, bump: Bump
    ) -> SemVer:
        existing = current.versions if current else {}
        if explicit is not None:
            if str(explicit) in existing:
                raise AlreadyExists(
                    f"{name}@{explicit} already exists.",
                    hint="Leave out --version to take the next one, or choose another.",
                )
            return explicit
        if not existing:
            return FIRST_VERSION if bump == "patch" else SemVer(0, 0, 0).bump(bump)
        return max(v.semver for v in existing.values()).bump(bump)

    def _write_version_files(self, meta: VersionMeta) -> list[str]:
        """Write a version's git-tracked files and its workspace artifact; return their paths."""
        folder = self.root / self.model_dir(meta.name)
        folder.mkdir(parents=True, exist_ok=True)
        rel = self.model_dir(meta.name)
        paths = [f"{rel}/meta.yaml", f"{rel}/artifact.dvc", f"{rel}/.gitignore"]
        ignore = ["/artifact"]
        self.dvc.materialize(meta.artifact, folder / "artifact", verify=False)
        atomic_write(folder / "artifact.dvc", DvcStore.dvc_file_text(meta.artifact))
        reference_dvc = folder / "reference.parquet.dvc"
        if meta.reference:
            self.dvc.materialize(meta.reference.stored, folder / "reference.parquet", verify=False)
            atomic_write(reference_dvc, DvcStore.dvc_file_text(meta.reference.stored))
            ignore.append("/reference.parquet")
            paths.append(f"{rel}/reference.parquet.dvc")
        elif reference_dvc.exists():
            reference_dvc.unlink()
            remove_path(folder / "reference.parquet")
            paths.append(f"{rel}/reference.parquet.dvc")
        atomic_write(folder / ".gitignore", "\n".join(ignore) + "\n")
        atomic_write(
            folder / "meta.yaml",
            yaml.safe_dump(meta.to_dict(), sort_keys=False, allow_unicode=True),
        )
        if self.dvc.ensure_artifact(
            meta.name, f"{rel}/artifact", meta.description, list(meta.labels)
        ) or not self._tracked("dvc.yaml"):
            paths.append("dvc.yaml")
        return paths

    def _tracked(self, path: str) -> bool:
        return bool(self.git.run("ls-files", "--", path).strip())

    # -- stages ------------------------------------------------------------------------------------
    def promote(self, ref: str, stage: str, message: str | None = None) -> HistoryEvent:
        """Assign ``stage`` to the version ``ref`` points at (GTO tag ``name#stage#N``)."""
        validate_stage(stage)
        with self.lock():
            target = self.resolve(ref)
            name = parse_ref(ref).name
            model = self._model(name)
            tag = stage_tag(name, stage, model.counter + 1)
            self.git.create_tag(
                tag,
                target.commit,
                message or f"Assigning stage {stage} to artifact {name} version {target.version}",
                _event_time(model),
            )
            self.git.pack_refs_if_many()
        return self._event(name, tag)

    def demote(self, ref: str, stage: str, message: str | None = None) -> HistoryEvent:
        """Take ``stage`` away from a version (``name#stage!#N``); ``ref`` may be ``name#stage``."""
        validate_stage(stage)
        with self.lock():
            parsed = parse_ref(ref)
            if parsed.latest:
                parsed = ModelRef(parsed.name, stage=stage)
            target = self.resolve(parsed)
            if stage not in target.stages:
                raise InvalidArgument(
                    f"{parsed.name}@{target.version} is not in stage {stage!r}.",
                    hint=f"Its stages: {', '.join(target.stages) or 'none'}.",
                )
            model = self._model(parsed.name)
            tag = stage_tag(parsed.name, stage, model.counter + 1, unassign=True)
            self.git.create_tag(
                tag,
                target.commit,
                message
                or f"Unassigning stage '{stage}' to artifact '{parsed.name}' "
                f"version '{target.version}'",
                _event_time(model),
            )
        return self._event(parsed.name, tag)

    def deprecate(self, name: str, message: str | None = None) -> HistoryEvent:
        """Mark a whole model deprecated (GTO tag ``name@deprecated#N``)."""
        with self.lock():
            model = self._model(name)
            latest = model.latest()
            commit = latest.commit if latest else next(iter(model.versions.values())).commit
            tag = deprecate_tag(name, model.counter + 1)
            self.git.create_tag(
                tag, commit, message or f"Deprecating artifact {name}", _event_time(model)
            )
        return self._event(name, tag)

    def deregister(self, ref: str, message: str | None = None) -> HistoryEvent:
        """Withdraw one version (GTO tag ``name@vX.Y.Z!#N``); its history stays."""
        parsed = parse_ref(ref)
        if not parsed.version:
            raise InvalidArgument("Deregister needs an explicit version, e.g. fraud@v0.0.2.")
        with self.lock():
            target = self.resolve(parsed)
            model = self._model(parsed.name)
            tag = deregister_tag(parsed.name, target.version, model.counter + 1)
            self.git.create_tag(
                tag,
                target.commit,
                message or f"Deregistering artifact {parsed.name} version {target.version}",
                _event_time(model),
            )
        return self._event(parsed.name, tag)

    def _event(self, name: str, tag: str) -> HistoryEvent:
        return next(e for e in reversed(self.history(name)) if e.tag == tag)

    # -- remote ------------------------------------------------------------------------------------
    def _dvc_targets(self, version: ModelVersion) -> list[str]:
        rel = self.model_dir(version.name)
        targets = [f"{rel}/artifact.dvc"]
        if version.meta.reference:
            targets.append(f"{rel}/reference.parquet.dvc")
        return targets

    def push(self, ref: str | None = None) -> int:
        """Send the artifacts of one version (or of every version) to the DVC remote."""
        return self._transfer("push", ref)

    def pull(self, ref: str | None = None) -> int:
        """Fetch the artifacts of one version (or of every version) from the DVC remote."""
        return self._transfer("pull", ref)

    def _transfer(self, verb: str, ref: str | None) -> int:
        if ref is not None:
            chosen = [self.show(ref)]
        else:
            chosen = [v for s in self.ls() for v in self.versions(s.name)]
        objects: dict[str, StoredObject] = {}
        for version in chosen:
            objects[version.meta.artifact.md5] = version.meta.artifact
            if version.meta.reference:
                objects[version.meta.reference.stored.md5] = version.meta.reference.stored
        return self.dvc.transfer_objects(verb, list(objects.values()))


def _event_time(model: ModelState | None) -> int:
    """Now, but strictly after the model's last stage event: GTO orders them by tag time alone."""
    now = int(time.time())
    last = (
        max((e[0] for e in model.raw_events if e[3] != "register"), default=None) if model else None
    )
    return max(now, last + 1) if last is not None else now


def _suggest(name: str, states: dict[str, ModelState]) -> str:
    close = difflib.get_close_matches(name, list(states), n=3, cutoff=0.6)
    if close:
        return "Did you mean " + " or ".join(repr(c) for c in close) + "?"
    if not states:
        return (
            "The hub has no models yet: register one with `%modelhub register MODEL --name NAME`."
        )
    return "List the models with `modelhub ls`."


def _numbers(values: dict[str, Any], what: str) -> dict[str, float]:
    out = {}
    for key, value in values.items():
        try:
            out[str(key)] = float(value)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"The {what} value {key}={value!r} is not a number.") from exc
    return out


def _plain(values: dict[str, Any], what: str) -> dict[str, Any]:
    """Keep params YAML/JSON-friendly: numpy scalars become Python ones, others become text."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if hasattr(value, "item") and callable(value.item):
            value = value.item()
        if not isinstance(value, (str, int, float, bool, type(None), list, dict)):
            value = repr(value)
        out[str(key)] = value
    return out


def _reference_frame(reference: Any, signature: Any, limit: int) -> tuple[Any, int] | None:
    """A DataFrame sample of at most ``limit`` rows of the reference data (fixed seed)."""
    if reference is None:
        return None
    import numpy as np
    import pandas as pd

    if isinstance(reference, (str, Path)):
        path = Path(reference).expanduser()
        if not path.exists():
            raise NotFound(f"No reference data file at {path}.")
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    elif type(reference).__name__ == "DataFrame":
        frame = reference
    else:
        array = np.asarray(reference)
        if array.ndim == 1:
            array = array.reshape(-1, 1)
        if array.ndim != 2:
            raise InvalidArgument("Reference data must be a table (2-D): rows of features.")
        names = signature.feature_names if signature else [f"f{i}" for i in range(array.shape[1])]
        if len(names) != array.shape[1]:
            names = [f"f{i}" for i in range(array.shape[1])]
        frame = pd.DataFrame(array, columns=names)
    total = len(frame)
    if total == 0:
        raise InvalidArgument("The reference data is empty.")
    if limit > 0 and total > limit:
        frame = frame.sample(n=limit, random_state=0).sort_index()
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    return frame, total


def _parquet_bytes(frame: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()

"""Typed records that every layer passes around.

They are plain frozen dataclasses: the domain builds them, the adapters render them. ``to_dict``
gives the JSON shape used by the REST API, ``--json`` and the metadata files in the hub.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

Flavor = Literal["sklearn", "onnx", "files"]
EventKind = Literal["register", "deregister", "assign", "unassign", "deprecate"]


def utc_now() -> datetime:
    """The current time, timezone-aware, to the second (what git tags can record)."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class Record:
    """Mixin: a JSON-ready ``dict`` of a record (datetimes become ISO-8601 strings)."""

    def to_dict(self) -> dict[str, Any]:
        result = _jsonable(self)
        assert isinstance(result, dict)
        return result


@dataclass(frozen=True)
class FeatureSpec(Record):
    """One input or output column: its name and numpy dtype name (``float64``, ``object``…)."""

    name: str
    dtype: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        return cls(name=str(data["name"]), dtype=str(data["dtype"]))


@dataclass(frozen=True)
class Signature(Record):
    """What a model takes and returns, inferred from a sample input at registration.

    ``input_kind`` says whether the model was fitted on a pandas DataFrame (named columns)
    or a numpy array; ``input_shape`` and ``output_shape`` use -1 for the batch dimension.
    """

    inputs: tuple[FeatureSpec, ...]
    input_kind: Literal["dataframe", "ndarray"]
    input_shape: tuple[int, ...]
    outputs: tuple[FeatureSpec, ...] = ()
    output_shape: tuple[int, ...] = ()

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.inputs]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        return cls(
            inputs=tuple(FeatureSpec.from_dict(f) for f in data.get("inputs", [])),
            input_kind=data.get("input_kind", "ndarray"),
            input_shape=tuple(int(x) for x in data.get("input_shape", [])),
            outputs=tuple(FeatureSpec.from_dict(f) for f in data.get("outputs", [])),
            output_shape=tuple(int(x) for x in data.get("output_shape", [])),
        )


@dataclass(frozen=True)
class Lineage(Record):
    """Where a version came from, so it can be reproduced and rebuilt elsewhere."""

    data_hash: str | None = None
    data_path: str | None = None
    code_commit: str | None = None
    code_repo: str | None = None
    code_dirty: bool | None = None
    notebook: str | None = None
    python: str | None = None
    environment: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Lineage:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class StoredObject(Record):
    """A DVC-tracked output in the hub: its path, DVC md5 (``….dir`` for folders) and size."""

    path: str
    md5: str
    size: int
    nfiles: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredObject:
        return cls(
            path=str(data["path"]),
            md5=str(data["md5"]),
            size=int(data["size"]),
            nfiles=int(data.get("nfiles", 1)),
        )


@dataclass(frozen=True)
class ReferenceData(Record):
    """The sample of training data kept with a version for drift detection."""

    stored: StoredObject
    rows: int
    columns: tuple[str, ...]
    total_rows: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReferenceData:
        return cls(
            stored=StoredObject.from_dict(data["stored"]),
            rows=int(data["rows"]),
            columns=tuple(data.get("columns", [])),
            total_rows=int(data.get("total_rows", data["rows"])),
        )


@dataclass(frozen=True)
class VersionMeta(Record):
    """Everything recorded about one model version; stored as ``models/NAME/meta.yaml`` in git.

    ``files`` maps a role (``model``, ``onnx``) to a file name inside the artifact folder.
    """

    name: str
    version: str
    flavor: Flavor
    files: dict[str, str]
    artifact: StoredObject
    created: datetime
    author: str
    signature: Signature | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    labels: tuple[str, ...] = ()
    lineage: Lineage = field(default_factory=Lineage)
    reference: ReferenceData | None = None
    model_type: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VersionMeta:
        created = data["created"]
        return cls(
            name=str(data["name"]),
            version=str(data["version"]),
            flavor=data["flavor"],
            files=dict(data.get("files", {})),
            artifact=StoredObject.from_dict(data["artifact"]),
            created=created if isinstance(created, datetime) else datetime.fromisoformat(created),
            author=str(data.get("author", "")),
            signature=Signature.from_dict(data["signature"]) if data.get("signature") else None,
            metrics=dict(data.get("metrics") or {}),
            params=dict(data.get("params") or {}),
            description=str(data.get("description") or ""),
            labels=tuple(data.get("labels") or ()),
            lineage=Lineage.from_dict(data.get("lineage") or {}),
            reference=ReferenceData.from_dict(data["reference"]) if data.get("reference") else None,
            model_type=str(data.get("model_type") or ""),
        )


@dataclass(frozen=True)
class ModelVersion(Record):
    """A registered version as the registry sees it: its metadata plus its git facts."""

    meta: VersionMeta
    tag: str
    commit: str
    stages: tuple[str, ...] = ()
    deprecated: bool = False

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def version(self) -> str:
        return self.meta.version

    @property
    def ref(self) -> str:
        return f"{self.meta.name}@{self.meta.version}"


@dataclass(frozen=True)
class HistoryEvent(Record):
    """One change in a model's life, read from a GTO tag: who did what, when."""

    name: str
    kind: EventKind
    version: str | None
    stage: str | None
    author: str
    time: datetime
    tag: str
    commit: str
    message: str = ""


@dataclass(frozen=True)
class ModelSummary(Record):
    """One row of ``ls``: a model with its latest version and the current holder of each stage."""

    name: str
    latest: str | None
    versions: int
    stages: dict[str, str]
    updated: datetime | None
    deprecated: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSummary:
        updated = data.get("updated")
        return cls(
            name=str(data["name"]),
            latest=data.get("latest"),
            versions=int(data["versions"]),
            stages=dict(data.get("stages") or {}),
            updated=datetime.fromisoformat(updated) if updated else None,
            deprecated=bool(data.get("deprecated", False)),
        )

"""Names, versions and model references: parsing and validation.

A model name becomes a git tag, a folder name, a DVC artifact name and a Kubernetes name, so it
must satisfy all four: lowercase letters and digits, with ``-`` or ``_`` between them (GTO's
artifact name rule, lower-cased), at most 63 characters. Deployment targets that forbid ``_``
(Kubernetes) map it to ``-``. A reference is ``name``,
``name@v1.2.0``, ``name@latest`` or ``name#stage``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ..errors import InvalidArgument

NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$")
VERSION_RE = re.compile(r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")

Bump = Literal["major", "minor", "patch"]


def _name_problem(value: str) -> str | None:
    if not value:
        return "is empty"
    if len(value) > 63:
        return "is longer than 63 characters"
    if value != value.lower():
        return "has uppercase letters"
    if any(c in value for c in "/\\.") or ".." in value:
        return "contains a path character ('/', '\\' or '.')"
    if value[0] in "-_" or value[-1] in "-_":
        return "starts or ends with '-' or '_'"
    bad = sorted({c for c in value if not (c.isascii() and (c.isalnum() or c in "-_"))})
    if bad:
        return "contains " + ", ".join(repr(c) for c in bad)
    return None


def validate_name(value: str, what: str = "model name") -> str:
    """Return ``value`` if it is a valid model (or stage) name, else raise ``InvalidArgument``."""
    if isinstance(value, str) and NAME_RE.match(value):
        return value
    problem = _name_problem(value) if isinstance(value, str) else "is not a string"
    raise InvalidArgument(
        f"Invalid {what} {value!r}: it {problem or 'is not allowed'}.",
        hint="Use lowercase letters, digits, '-' and '_' (e.g. 'fraud-detector'), at most 63 characters.",
    )


def validate_stage(value: str) -> str:
    """Return ``value`` if it is a valid stage name (same rule as model names)."""
    return validate_name(value, what="stage name")


@dataclass(frozen=True, order=True)
class SemVer:
    """A ``vMAJOR.MINOR.PATCH`` version as GTO writes it."""

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> SemVer:
        match = VERSION_RE.match(text.strip()) if isinstance(text, str) else None
        if not match:
            raise InvalidArgument(
                f"Invalid version {text!r}.", hint="Write it as MAJOR.MINOR.PATCH, e.g. v1.2.0."
            )
        return cls(*(int(g) for g in match.groups()))

    @classmethod
    def try_parse(cls, text: str) -> SemVer | None:
        match = VERSION_RE.match(text)
        return cls(*(int(g) for g in match.groups())) if match else None

    def bump(self, part: Bump) -> SemVer:
        if part == "major":
            return SemVer(self.major + 1, 0, 0)
        if part == "minor":
            return SemVer(self.major, self.minor + 1, 0)
        if part == "patch":
            return SemVer(self.major, self.minor, self.patch + 1)
        raise InvalidArgument(f"Invalid bump {part!r}.", hint="Use major, minor or patch.")

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}.{self.patch}"


FIRST_VERSION = SemVer(0, 0, 1)


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference: exactly one of ``version``, ``stage`` or ``latest`` picks a version."""

    name: str
    version: str | None = None
    stage: str | None = None

    @property
    def latest(self) -> bool:
        return self.version is None and self.stage is None

    def __str__(self) -> str:
        if self.version:
            return f"{self.name}@{self.version}"
        if self.stage:
            return f"{self.name}#{self.stage}"
        return self.name


def parse_ref(text: str) -> ModelRef:
    """Parse ``name``, ``name@v1.2.0``, ``name@latest`` or ``name#stage``."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgument(
            "Empty model reference.",
            hint="Write NAME, NAME@v1.2.0, NAME@latest or NAME#STAGE.",
        )
    text = text.strip()
    if "@" in text and "#" in text:
        raise InvalidArgument(
            f"Invalid model reference {text!r}: give a version or a stage, not both."
        )
    if "@" in text:
        name, _, version = text.partition("@")
        validate_name(name)
        if version == "latest":
            return ModelRef(name)
        return ModelRef(name, version=str(SemVer.parse(version)))
    if "#" in text:
        name, _, stage = text.partition("#")
        return ModelRef(validate_name(name), stage=validate_stage(stage))
    return ModelRef(validate_name(text))

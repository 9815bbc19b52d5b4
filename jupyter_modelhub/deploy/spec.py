"""``DeploymentSpec``: the desired state of one deployment, as kept in ``deployments/NAME.yaml``.

A spec says which model version to serve, where and how: the reference the user asked for
(``fraud#prod``) and the version it resolved to (``v0.0.2``), whether the deployment follows
its stage, the number of replicas, the address, the model server's options, and the target's
own options (``target_options``: a Kubernetes namespace, image…, checked by the target's
backend). It is what a ``DeploymentBackend`` is asked to make true, and what a rollback
restores. Since it is committed to git, it names things and never holds a credential.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import InvalidArgument
from ..experiments.policy import CHAMPION, TrafficPolicy
from ..models import Record
from ..registry.refs import parse_ref, validate_name

DEFAULT_HOST = "127.0.0.1"
MAX_REPLICAS = 64

# The model server's tuning options a spec may set (flags ``--max-batch-size`` …): their type
# and rule. An option a spec leaves out takes the server's own default.
RUNTIMES = ("auto", "onnx", "sklearn")
SERVER_OPTIONS: dict[str, tuple[type, Callable[[Any], bool], str]] = {
    "runtime": (str, lambda v: v in RUNTIMES, f"one of {', '.join(RUNTIMES)}"),
    "max_batch_size": (int, lambda v: v >= 1, "at least 1"),
    "max_wait_ms": (float, lambda v: v >= 0, "at least 0"),
    "sample_rate": (float, lambda v: 0.0 <= v <= 1.0, "between 0 and 1"),
    "max_body_mb": (float, lambda v: v > 0, "positive"),
    "log_flush_seconds": (float, lambda v: v > 0, "positive"),
}
_KIND_NAMES = {int: "an integer", float: "a number", str: "a string"}


def server_options(given: dict[str, Any] | None = None) -> dict[str, Any]:
    """The given server options, checked and converted to their types (``None`` values
    dropped).

    Raises:
        InvalidArgument: an unknown option or a value of the wrong type or range.
    """
    given = {k: v for k, v in (given or {}).items() if v is not None}
    unknown = sorted(set(given) - set(SERVER_OPTIONS))
    if unknown:
        raise InvalidArgument(
            f"Unknown server option(s): {', '.join(unknown)}.",
            hint=f"The options are {', '.join(SERVER_OPTIONS)}.",
        )
    out: dict[str, Any] = {}
    for key, value in sorted(given.items()):
        kind, valid, rule = SERVER_OPTIONS[key]
        try:
            if isinstance(value, bool) or (kind is int and float(value) != int(value)):
                raise ValueError(value)
            out[key] = kind(value)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(
                f"The server option {key}={value!r} is not {_KIND_NAMES[kind]}."
            ) from exc
        if not valid(out[key]):
            raise InvalidArgument(f"The server option {key} must be {rule}, not {value!r}.")
    return out


# Option names and values that say "I am a credential": a spec is committed to git, so they
# are refused whatever the target (a Secret's *name*, ``secret``, is fine).
_CREDENTIAL_NAME = re.compile(
    r"pass(word|wd)?|token|credential|api_?key|access_?key|secret_?key|private_?key|auth",
    re.IGNORECASE,
)
_CREDENTIAL_VALUE = re.compile(
    r"://[^/@\s]*:[^/@\s]*@"  # user:password@ in a URL
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|\b(AKIA|ASIA)[0-9A-Z]{16}\b"  # an AWS access key id
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"  # a GitHub token
)


def target_options(given: dict[str, Any] | None = None) -> dict[str, Any]:
    """The given target options with ``None`` values dropped, checked for what every target
    needs: names, plain values, and nothing that looks like a credential. Which options a
    target takes is its backend's to check (``DeploymentBackend.check_options``).

    Raises:
        InvalidArgument: not a mapping of names to plain values, or a credential.
    """
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise InvalidArgument("Target options must be a mapping of names to values.")
    out: dict[str, Any] = {}
    for key, value in sorted(given.items()):
        if value is None:
            continue
        if not isinstance(key, str) or not key:
            raise InvalidArgument(f"Invalid target option name {key!r}.")
        if not isinstance(value, (str, int, float, bool)):
            raise InvalidArgument(
                f"The target option {key} must be a plain value, not {type(value).__name__}."
            )
        if _CREDENTIAL_NAME.search(key) or (
            isinstance(value, str) and _CREDENTIAL_VALUE.search(value)
        ):
            raise InvalidArgument(
                f"The target option {key} looks like a credential, and a deployment's spec is "
                "committed to git.",
                hint="Keep credentials where they live (a Kubernetes Secret, your kubeconfig, "
                "DVC's config.local) and give their name only (e.g. --secret NAME).",
            )
        out[key] = value
    return out


def validate_replicas(replicas: int) -> int:
    if (
        isinstance(replicas, bool)
        or not isinstance(replicas, int)
        or not 1 <= replicas <= MAX_REPLICAS
    ):
        raise InvalidArgument(
            f"Invalid number of replicas {replicas!r}.", hint=f"Give 1 to {MAX_REPLICAS}."
        )
    return replicas


def validate_port(port: int | None) -> int | None:
    if port is None:
        return None
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidArgument(
            f"Invalid port {port!r}.", hint="Give 1 to 65535, or none to pick one."
        )
    return port


@dataclass(frozen=True)
class DeploymentSpec(Record):
    """What one deployment should be. ``port`` is ``None`` until the backend picks one."""

    name: str
    model: str
    ref: str
    version: str
    target: str = "local"
    follow_stage: bool = False
    replicas: int = 1
    host: str = DEFAULT_HOST
    port: int | None = None
    server: dict[str, Any] = field(default_factory=server_options)
    #: an experiment (A/B split, canary, blue-green, shadow) between this version, the
    #: champion, and challengers; ``None`` serves the champion alone
    traffic: TrafficPolicy | None = None
    #: where and how the target runs it (``kubernetes``: namespace, context, image…); names
    #: and plain values only, checked by the target's backend
    target_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_name(self.name, "deployment name")
        validate_name(self.model)
        validate_replicas(self.replicas)
        validate_port(self.port)
        if not self.host or not isinstance(self.host, str):
            raise InvalidArgument(f"Invalid host {self.host!r}.")
        if self.follow_stage and self.stage is None:
            raise InvalidArgument(
                f"Only a stage can be followed, and {self.ref!r} names no stage.",
                hint=f"Deploy {self.model}#STAGE (e.g. {self.model}#prod) to follow it.",
            )

    @property
    def stage(self) -> str | None:
        """The stage the reference names (``prod`` in ``fraud#prod``), if any."""
        return parse_ref(self.ref).stage

    @property
    def version_ref(self) -> str:
        """The exact version served: ``fraud@v0.0.2``."""
        return f"{self.model}@{self.version}"

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def replica_key(self) -> tuple[Any, ...]:
        """What a running replica is made of: when it changes, replicas must be replaced (one
        by one, without downtime). The variants it loads are part of it; the traffic policy
        between them is not: a new policy over the same variants is applied to running
        replicas at once."""
        return (
            self.model,
            tuple(sorted(self.variants.items())),
            self.host,
            self.port,
            tuple(sorted(self.server.items())),
        )

    def traffic_json(self) -> str | None:
        """The traffic policy as the model server's ``--traffic`` takes it (``None``: none)."""
        if self.traffic is None:
            return None
        return json.dumps(self.traffic.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def variants(self) -> dict[str, str]:
        """Every variant served (name -> version), the champion first."""
        out = {CHAMPION: self.version}
        if self.traffic is not None and self.traffic.running:
            out.update(self.traffic.challengers)
        return out

    def replace(self, **changes: Any) -> DeploymentSpec:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeploymentSpec:
        if not isinstance(data, dict):
            raise InvalidArgument("A deployment spec must be a mapping.")
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["server"] = server_options(values.get("server"))
        values["target_options"] = target_options(values.get("target_options"))
        if values.get("traffic") is not None:
            values["traffic"] = TrafficPolicy.from_dict(values["traffic"])
        try:
            return cls(**values)
        except TypeError as exc:
            raise InvalidArgument(f"Invalid deployment spec: {exc}.") from exc

    def to_yaml(self) -> str:
        data = self.to_dict()
        if not data.get("target_options"):
            data.pop("target_options", None)  # the YAML of a spec without any stays as it was
        return yaml.safe_dump(data, sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> DeploymentSpec:
        return cls.from_dict(yaml.safe_load(text))

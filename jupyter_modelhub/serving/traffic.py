"""``TrafficRouter``: the variants one server process serves, and which one answers a request.

A process serves its deployment's champion and, during an experiment, its challengers: one
``ModelService`` each, all loaded at start-up (so switching traffic, blue-green included, is
instant and needs no restart). The router holds the current ``TrafficPolicy`` and its
``Assigner``; the deployment's controller replaces the policy at run time (``update``).

The sticky key comes from the ``X-Modelhub-Key`` header, or from the request field the policy
names (``key: user_id``): an input tensor or a request parameter of that name in the v2
protocol, a column or record field in MLflow's formats. A field that is not one of the
model's features is removed before validation, so clients can send it alongside the features.
A request of several rows is routed as a whole, by its first row's key.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidArgument
from ..experiments.policy import CHAMPION, Assigner, TrafficPolicy
from .features import FeatureBatch
from .service import ModelService

log = logging.getLogger(__name__)


class TrafficRouter:
    """Routes requests between the variants (``ModelService`` by name) of one deployment."""

    def __init__(
        self, services: Mapping[str, ModelService], policy: TrafficPolicy | None = None
    ) -> None:
        if CHAMPION not in services:
            raise InvalidArgument(f"A router needs the '{CHAMPION}' variant.")
        self.services = dict(services)
        self.champion = self.services[CHAMPION]
        self.policy: TrafficPolicy | None = None
        self._assigner: Assigner | None = None
        self.shadow: ModelService | None = None
        self.key_field: str | None = None
        self.features = frozenset(self.champion.runtime.schema.names)
        self._by_version = {s.version: (n, s) for n, s in self.services.items()}
        self._by_version.update({v.lstrip("v"): ns for v, ns in list(self._by_version.items())})
        self.update(policy)

    @property
    def routed(self) -> bool:
        """True while more than one variant may answer (a key is worth looking for)."""
        return self._assigner is not None and self._assigner.only is None

    def update(self, policy: TrafficPolicy | None) -> None:
        """Apply a new policy (None: the champion answers everything).

        Raises:
            InvalidArgument: the policy names a variant this process does not serve.
        """
        if policy is not None:
            missing = sorted(set(policy.variants) - set(self.services))
            if missing:
                raise InvalidArgument(
                    f"This server does not serve the variant(s) {', '.join(missing)}.",
                    hint="Restart the deployment's replicas with every variant of the policy.",
                )
            for name, version in policy.challengers.items():
                served = self.services[name].version
                if served != version:
                    raise InvalidArgument(
                        f"Variant '{name}' is {served} here, but the policy says {version}."
                    )
        self.policy = policy
        self._assigner = Assigner(policy) if policy is not None else None
        shadow = policy.shadow if policy is not None else None
        self.shadow = self.services[shadow] if shadow is not None else None
        self.key_field = policy.key if policy is not None else None

    def choose(self, key: str | None) -> tuple[str, ModelService]:
        """The variant (name, service) that answers a request with sticky ``key``."""
        assigner = self._assigner
        if assigner is None:
            return CHAMPION, self.champion
        name = assigner.choose(key)
        return name, self.services[name]

    def by_version(self, version: str) -> tuple[str, ModelService] | None:
        """The variant serving ``version`` (``v1.2.0`` or ``1.2.0``), for URLs that name one."""
        return self._by_version.get(version)

    @property
    def experiment(self) -> str | None:
        return self.policy.experiment if self.policy is not None else None

    def describe(self) -> dict[str, Any]:
        """What the admin API reports: the variants served and the policy in force."""
        return {
            "variants": {name: s.version for name, s in self.services.items()},
            "policy": self.policy.to_dict() if self.policy is not None else None,
        }

    def close(self) -> None:
        for service in self.services.values():
            service.close()


def shadow_copy(
    shadow: ModelService, request: tuple[FeatureBatch, Any, str, Any], key: str | None = None
) -> None:
    """Predict ``request`` with the shadow variant after the caller's answer is on its way.

    The shadow's prediction log keeps its answer under the same request id as the champion's,
    for the shadow report; its failures are counted in its own metrics and reach no caller.
    """
    batch, outputs, request_id = request[0], request[1], request[2]
    endpoint = "v2_infer" if request[3] is not None else "invocations"
    loop = asyncio.get_running_loop()

    def run() -> None:
        started = time.perf_counter()
        try:
            shadow.predict_now(batch, outputs, request_id, key)
            status = 200
        except Exception as exc:
            status = getattr(exc, "http_status", 500)
            log.debug("shadow %s failed on request %s: %s", shadow.version, request_id, exc)
        shadow.metrics.observe_request(endpoint, status, time.perf_counter() - started)

    loop.call_soon(run)


# -- sticky keys in request bodies ----------------------------------------------------------------
def key_from_v2(doc: Any, field: str, features: frozenset[str]) -> str | None:
    """The key in a parsed v2 request: ``parameters[field]`` or the first value of the input
    tensor named ``field`` (removed from ``inputs`` unless it is a model feature)."""
    if not isinstance(doc, dict):
        return None
    params = doc.get("parameters")
    if isinstance(params, dict) and field in params:
        return _text(params[field])
    inputs = doc.get("inputs")
    if not isinstance(inputs, list):
        return None
    for i, tensor in enumerate(inputs):
        if isinstance(tensor, dict) and tensor.get("name") == field:
            data = tensor.get("data")
            if field not in features and len(inputs) > 1:
                del inputs[i]
            while isinstance(data, list) and data:
                data = data[0]
            return _text(data)
    return None


def key_from_mlflow(doc: Any, field: str, features: frozenset[str]) -> str | None:
    """The key in a parsed MLflow scoring request: a column (``dataframe_split``) or a field
    of the first record (``dataframe_records``, ``instances``/``inputs`` records or columns);
    removed from the request unless it is a model feature."""
    if not isinstance(doc, dict):
        return None
    drop = field not in features
    split = doc.get("dataframe_split")
    if isinstance(split, dict):
        columns, data = split.get("columns"), split.get("data")
        if isinstance(columns, list) and field in columns and isinstance(data, list) and data:
            j = columns.index(field)
            first = data[0]
            value = first[j] if isinstance(first, list) and j < len(first) else None
            if drop:
                split["columns"] = columns[:j] + columns[j + 1 :]
                split["data"] = [
                    row[:j] + row[j + 1 :] if isinstance(row, list) else row for row in data
                ]
            return _text(value)
        return None
    for name in ("dataframe_records", "instances", "inputs"):
        value = doc.get(name)
        if isinstance(value, list) and value and isinstance(value[0], dict):
            key = value[0].get(field)
            if drop:
                for record in value:
                    if isinstance(record, dict):
                        record.pop(field, None)
            return _text(key)
        if isinstance(value, dict) and field in value:
            column = value.pop(field) if drop else value[field]
            return _text(column[0] if isinstance(column, list) and column else column)
    return None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)

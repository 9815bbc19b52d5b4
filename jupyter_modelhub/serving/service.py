"""``ModelService``: one served model with its codecs, batcher, metrics and prediction log.

This is everything the model server does except HTTP: an adapter (the tornado app in
``jupyter_modelhub.modelserver``) decodes a body with ``v2`` or ``mlflow``, awaits
``predict`` and encodes the result. It is built once per process, after loading.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .batching import MicroBatcher
from .errors import ModelInputError, ModelNotServed
from .features import FeatureBatch
from .loading import ServedModel
from .metrics import MetricFamilies, MetricLabels, ServerMetrics
from .mlflow_scoring import MlflowCodec
from .predlog import PredictionLog
from .runtime import PREDICT
from .v2 import V2Codec

# exceptions a model raises on input it cannot take: the client's problem (a 4xx), not a bug
_INPUT_ERRORS = (ValueError, TypeError, KeyError, IndexError, ArithmeticError)
_ORT_INPUT_ERRORS = ("InvalidArgument", "Fail", "RuntimeException")


@dataclass(frozen=True)
class ServingOptions:
    """How a model is served; every field has the default the command line shows."""

    deployment: str = ""
    variant: str | None = None
    #: rows per model call; None takes the runtime's default (32 for scikit-learn, 1 for ONNX);
    #: 1 turns batching off
    max_batch_size: int | None = None
    max_wait_ms: float = 1.0
    #: run the model in a worker thread instead of on the event loop (off: on one core the
    #: hand-off costs more than it overlaps; worth it for models slow enough to stall probes)
    model_thread: bool = False
    log_dir: Path | None = None
    sample_rate: float = 1.0
    log_rows_per_second: float = 1000.0
    log_flush_rows: int = 10_000
    log_flush_seconds: float = 10.0


Item = tuple[FeatureBatch, frozenset[str]]
Outputs = dict[str, np.ndarray]


class ModelService:
    """Predicts for decoded requests, coalescing them, measuring them and logging a sample."""

    def __init__(
        self,
        served: ServedModel,
        options: ServingOptions | None = None,
        families: MetricFamilies | None = None,
    ) -> None:
        options = options or ServingOptions()
        self.served = served
        self.options = options
        runtime = served.runtime
        self.runtime = runtime
        self.metrics = ServerMetrics(
            MetricLabels(
                model=served.name,
                version=served.version_id,
                deployment=options.deployment,
                variant=options.variant or "",
                flavor=served.flavor,
                runtime=runtime.name,
            ),
            families,
        )
        self.v2 = V2Codec(runtime, served.name, served.version_id)
        self.mlflow = MlflowCodec(runtime.schema)
        size = options.max_batch_size or runtime.default_max_batch_size
        self.batcher: MicroBatcher[Item, Outputs] = MicroBatcher(
            self._process,
            max_batch_size=size,
            max_wait=options.max_wait_ms / 1000.0,
            use_thread=options.model_thread,
            on_batch=self.metrics.observe_batch,
        )
        self._direct = size == 1 and not options.model_thread
        self.predlog: PredictionLog | None = None
        if options.log_dir is not None:
            self.predlog = PredictionLog(
                options.log_dir,
                runtime.schema,
                model=served.name,
                version=served.version_id,
                variant=options.variant,
                sample_rate=options.sample_rate,
                max_rows_per_second=options.log_rows_per_second,
                flush_rows=options.log_flush_rows,
                flush_seconds=options.log_flush_seconds,
                on_written=self.metrics.log_rows.inc,
                on_dropped=self.metrics.log_dropped.inc,
            )
        self._ids = itertools.count(1)
        self._id_prefix = f"{uuid.uuid4().hex[:12]}-{os.getpid()}"

    # -- identity -----------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.served.name

    @property
    def version(self) -> str:
        return self.served.version_id

    def new_request_id(self) -> str:
        """A process-unique request id (cheaper than a uuid per request)."""
        return f"{self._id_prefix}-{next(self._ids)}"

    def check_model(self, name: str, version: str | None = None) -> None:
        """Raise ``ModelNotServed`` unless the URL's model (and version) is the one served."""
        names = {self.name}
        if self.options.deployment:
            names.add(self.options.deployment)
        if name not in names:
            raise ModelNotServed(
                f"Model '{name}' is not served here; this server serves '{self.name}' "
                f"version {self.version}."
            )
        if version is not None and version not in (self.version, self.version.lstrip("v")):
            raise ModelNotServed(
                f"Version '{version}' of '{name}' is not served here; this server serves "
                f"{self.version}."
            )

    # -- predicting ---------------------------------------------------------------------------------
    @property
    def immediate(self) -> bool:
        """True when predictions run at once on the caller's thread (``predict_now``), with no
        batching to wait for: an adapter may then skip the coroutine machinery."""
        return self._direct

    def predict_now(
        self,
        batch: FeatureBatch,
        outputs: Collection[str],
        request_id: str,
        key: str | None = None,
    ) -> Outputs:
        """``predict`` without batching: one model call on this thread, now.

        Raises:
            ModelInputError: the model refused the input (a 4xx for the client).
        """
        wanted = self._wanted(outputs)
        try:
            result = self._process([(batch, wanted)])[0]
        except Exception as exc:
            rejected = _rejected_input(exc)
            if rejected is None:
                raise
            raise rejected from exc
        self.metrics.observe_batch(1, batch.n_rows)
        self._log(request_id, batch, result, key)
        return result

    async def predict(
        self,
        batch: FeatureBatch,
        outputs: Collection[str],
        request_id: str,
        key: str | None = None,
    ) -> Outputs:
        """The requested outputs for ``batch``; logs a sample when a log folder is set (with
        the request's sticky A/B ``key``, if any).

        Raises:
            ModelInputError: the model refused the input (a 4xx for the client).
        """
        if self._direct:
            return self.predict_now(batch, outputs, request_id, key)
        try:
            result = await self.batcher.submit((batch, self._wanted(outputs)), batch.n_rows)
        except Exception as exc:
            rejected = _rejected_input(exc)
            if rejected is None:
                raise
            raise rejected from exc
        self._log(request_id, batch, result, key)
        return result

    def _wanted(self, outputs: Collection[str]) -> frozenset[str]:
        wanted = frozenset(outputs)
        if self.predlog is not None and PREDICT in self.runtime.output_names:
            wanted = wanted | {PREDICT}
        return wanted

    def _log(self, request_id: str, batch: FeatureBatch, result: Outputs, key: str | None) -> None:
        if self.predlog is not None and PREDICT in result:
            self.predlog.record(request_id, batch, result[PREDICT], key)

    def _process(self, items: Sequence[Item]) -> list[Outputs]:
        if len(items) == 1:
            batch, wanted = items[0]
            return [self.runtime.predict(batch, wanted)]
        wanted = frozenset().union(*(w for _, w in items))
        combined = FeatureBatch.concat([b for b, _ in items])
        result = self.runtime.predict(combined, wanted)
        answers, start = [], 0
        for batch, names in items:
            stop = start + batch.n_rows
            answers.append({n: result[n][start:stop] for n in names})
            start = stop
        return answers

    def close(self) -> None:
        """Stop the batcher's thread and flush the prediction log (idempotent)."""
        self.batcher.close()
        if self.predlog is not None:
            self.predlog.close()


def _rejected_input(exc: Exception) -> ModelInputError | None:
    """A ``ModelInputError`` when ``exc`` is a model refusing its input; None for a bug."""
    if isinstance(exc, _INPUT_ERRORS) or (
        type(exc).__name__ in _ORT_INPUT_ERRORS and "onnxruntime" in type(exc).__module__
    ):
        return ModelInputError(f"The model could not predict on this input: {exc}")
    return None

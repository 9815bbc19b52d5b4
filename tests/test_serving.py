"""The serving core without HTTP: loading, codecs, micro-batching and the prediction log."""

from __future__ import annotations

import asyncio
import json
import os
import struct
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from jupyter_modelhub import Hub
from jupyter_modelhub.errors import IntegrityError, InvalidArgument
from jupyter_modelhub.models import FeatureSpec
from jupyter_modelhub.serving import ModelService, ServingOptions, load_served_model, predlog
from jupyter_modelhub.serving.batching import MicroBatcher
from jupyter_modelhub.serving.errors import InvalidRequest, ModelLoadError
from jupyter_modelhub.serving.features import FeatureBatch, FeatureSchema
from jupyter_modelhub.serving.mlflow_scoring import MlflowCodec
from jupyter_modelhub.serving.predlog import PredictionLog

# -- loading ------------------------------------------------------------------------------------------


def test_auto_runtime_prefers_the_onnx_file(hub: Hub, classifier, training_data) -> None:
    X, _ = training_data
    hub.register(classifier, "clf", sample=X, onnx=True)
    auto = load_served_model(hub.registry, "clf")
    assert auto.runtime.name == "onnx"
    assert auto.runtime.schema.matrix_dtype == np.float32
    sklearn = load_served_model(hub.registry, "clf", "sklearn")
    assert sklearn.runtime.name == "sklearn"
    assert [o.name for o in sklearn.runtime.outputs] == ["predict", "predict_proba"]
    batch = sklearn.runtime.schema.from_matrix(X[:5], "x")
    out = sklearn.runtime.predict(batch, {"predict", "predict_proba"})
    np.testing.assert_array_equal(out["predict"], classifier.predict(X[:5]))
    np.testing.assert_array_equal(out["predict_proba"], classifier.predict_proba(X[:5]))


def test_runtime_choices_that_cannot_work_say_why(hub: Hub, classifier, tmp_path) -> None:
    hub.register(classifier, "plain")
    with pytest.raises(ModelLoadError, match="has no ONNX file") as info:
        load_served_model(hub.registry, "plain", "onnx")
    assert "onnx=True" in str(info.value)
    with pytest.raises(InvalidArgument, match="Unknown runtime 'tf'"):
        load_served_model(hub.registry, "plain", "tf")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("hello")
    hub.register(tmp_path / "notes", "notes")
    with pytest.raises(ModelLoadError, match="'files' artifact"):
        load_served_model(hub.registry, "notes")


def test_a_model_without_signature_is_described_by_the_model(hub: Hub, classifier) -> None:
    hub.register(classifier, "bare")
    served = load_served_model(hub.registry, "bare")
    assert served.runtime.schema.names == ["f0", "f1", "f2", "f3"]
    assert served.runtime.schema.input_kind == "ndarray"


def test_an_onnx_file_is_served_with_its_own_input_width(hub: Hub, classifier, tmp_path) -> None:
    from jupyter_modelhub.registry.flavors import convert_to_onnx

    path = tmp_path / "model.onnx"
    path.write_bytes(convert_to_onnx(classifier))
    hub.register(path, "from-file")
    served = load_served_model(hub.registry, "from-file")
    assert served.runtime.name == "onnx" and served.runtime.schema.width == 4
    assert served.runtime.output_names == ("predict", "predict_proba")


def test_changed_bytes_are_never_loaded(hub: Hub, classifier) -> None:
    hub.register(classifier, "fraud")
    entries = dict(hub.registry.dvc.tree_entries(hub.show("fraud").meta.artifact))
    target = hub.registry.dvc.object_path(entries["model.joblib"])
    os.chmod(target, 0o644)
    target.write_bytes(target.read_bytes()[:-4] + b"evil")  # a valid pickle would load fine
    with pytest.raises(IntegrityError, match=r"model\.joblib's bytes no longer match its md5"):
        load_served_model(hub.registry, "fraud")


def test_a_failing_self_test_is_a_load_error(hub: Hub, training_data) -> None:
    from sklearn.linear_model import LogisticRegression

    from jupyter_modelhub.serving.runtime import SklearnRuntime

    X, y = training_data
    model = LogisticRegression().fit(X, y)
    hub.register(model, "broken", sample=X)
    model.coef_ = np.zeros((1, 3))  # now it cannot predict 4 features
    served = load_served_model(hub.registry, "broken")
    runtime = SklearnRuntime(model, served.runtime.schema)
    from jupyter_modelhub.serving.loading import ServedModel, self_test

    with pytest.raises(
        ModelLoadError, match=r"self-test prediction of broken@v0\.0\.1 on a zero row"
    ):
        self_test(ServedModel(served.version, runtime))


# -- features and codecs ----------------------------------------------------------------------------------
MIXED = FeatureSchema.build(
    [
        FeatureSpec("age", "float64"),
        FeatureSpec("visits", "int64"),
        FeatureSpec("member", "bool"),
        FeatureSpec("city", "object"),
    ],
    "dataframe",
)


def test_mixed_features_keep_their_own_dtypes() -> None:
    assert MIXED.layout == "columns"
    codec = MlflowCodec(MIXED)
    batch = codec.decode(
        json.dumps(
            {
                "dataframe_records": [
                    {"age": 1, "visits": 2.0, "member": True, "city": "oslo"},
                    {"age": None, "visits": 3, "member": 0, "city": "lima"},
                ]
            }
        ).encode(),
        "application/json",
    )
    assert batch.columns is not None
    age, visits, member, city = batch.columns
    assert age.dtype == np.float64 and np.isnan(age[1])
    assert visits.dtype == np.int64 and visits.tolist() == [2, 3]
    assert member.dtype == bool and member.tolist() == [True, False]
    assert city.dtype == object and city.tolist() == ["oslo", "lima"]
    csv = codec.decode(b"city,member,visits,age\nrome,true,4,\n", "text/csv")
    assert csv.columns is not None
    assert csv.columns[1].tolist() == [4] and csv.columns[2].tolist() == [True]
    assert np.isnan(csv.columns[0][0]) and csv.columns[3].tolist() == ["rome"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"dataframe_records": [{"age": 1, "visits": 2, "member": 2, "city": "x"}]},
         "dataframe_records column 'member': expects booleans (true/false or 0/1)"),
        ({"dataframe_records": [{"age": 1, "visits": 2, "member": True, "city": [1]}]},
         "dataframe_records[0].city: expects one value, got a nested list"),
        ({"dataframe_records": [{"age": "x", "visits": 2, "member": True, "city": "a"}]},
         "dataframe_records column 'age': expects numbers"),
        ({"dataframe_split": {"columns": ["age", "age", "visits"], "data": [[1, 2, 3]]}},
         "dataframe_split.columns: column 'age' is given twice"),
        ({"dataframe_split": {"data": [[1, 2, True, "a"]], "extra": 1}},
         "dataframe_split: unexpected fields ['extra']"),
        ({"inputs": {"age": [1, 2], "visits": [1], "member": [True], "city": ["a"]}},
         "inputs.visits: 1 values but 'age' has 2"),
        ({"dataframe_records": []}, "body: no rows to predict"),
    ],
)  # fmt: skip
def test_mlflow_validation_messages(body: Any, message: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        MlflowCodec(MIXED).decode(json.dumps(body).encode(), "application/json")
    assert message in str(info.value)


def _served_clf(hub: Hub, classifier, X) -> Any:
    hub.register(classifier, "clf", sample=X)
    return load_served_model(hub.registry, "clf", "sklearn")


def test_v2_binary_tensors_round_trip_with_tritons_decoder(hub, classifier, training_data) -> None:
    http = pytest.importorskip("tritonclient.http")
    X, _ = training_data
    served = _served_clf(hub, classifier, X)
    service = ModelService(served)
    rows = X[:3]
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": [3, 4],
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": rows.nbytes},
                }
            ],
            "outputs": [
                {"name": "predict", "parameters": {"binary_data": True}},
                {"name": "predict_proba", "parameters": {"binary_data": False}},
            ],
        }
    ).encode()
    request = service.v2.decode(head + rows.tobytes(), str(len(head)))
    outputs = served.runtime.predict(request.batch, request.outputs)
    body, header_length = service.v2.encode(request, outputs, "r1")
    assert header_length is not None
    result = http.InferResult.from_response_body(body, header_length=header_length)
    np.testing.assert_array_equal(result.as_numpy("predict"), classifier.predict(rows))
    np.testing.assert_array_equal(result.as_numpy("predict_proba"), classifier.predict_proba(rows))
    service.close()


@pytest.mark.parametrize(
    ("body", "header_length", "message"),
    [
        (b'{"inputs": []}', "99", "Inference-Header-Content-Length: must be the JSON header's size"),
        (b'{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", '
         b'"parameters": {"binary_data_size": 32}}]}' + b"\0" * 16, "header",
         "binary_data_size: 32 bytes, but only 16 bytes of binary data remain"),
        (b'{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", '
         b'"parameters": {"binary_data_size": 30}}]}' + b"\0" * 30, "header",
         "binary_data_size: 30 is not a multiple of FP64's 8 bytes"),
        (b'{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", '
         b'"parameters": {"binary_data_size": 32}}]}' + b"\0" * 40, "header",
         "body: 8 bytes of binary data follow the JSON header"),
        (b'{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "UINT8", '
         b'"data": [1, 2, 300, 4]}]}', None, "inputs[0].data: values out of range for UINT8"),
        (b'{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "BOOL", '
         b'"data": [1, 0, 1, 0]}]}', None, "inputs[0].data: BOOL values must be true or false"),
        (b'{"inputs": [{"name": "input", "shape": [0, 4], "datatype": "FP64", "data": []}]}',
         None, "inputs[0].shape: the batch has no rows"),
    ],
)  # fmt: skip
def test_v2_decoding_errors(hub, classifier, training_data, body, header_length, message) -> None:
    X, _ = training_data
    service = ModelService(_served_clf(hub, classifier, X))
    if header_length == "header":
        header_length = str(body.index(b"}]}") + 3)
    with pytest.raises(InvalidRequest) as info:
        service.v2.decode(body, header_length)
    assert message in str(info.value)
    service.close()


def test_v2_bytes_tensors_in_binary_form() -> None:
    from jupyter_modelhub.serving.v2 import _binary_tensor

    words = ["oslo", "", "łódź"]
    chunk = b"".join(struct.pack("<I", len(w.encode())) + w.encode() for w in words)
    assert _binary_tensor(chunk, "BYTES", "x").tolist() == words
    with pytest.raises(InvalidRequest, match="runs past"):
        _binary_tensor(chunk[:-1], "BYTES", "x")


# -- micro-batching ------------------------------------------------------------------------------------------
class Recorder:
    """A fake model: doubles numbers, records the batches it saw, fails on negative items."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def __call__(self, items: list[int]) -> list[int]:
        self.calls.append(list(items))
        if any(i < 0 for i in items):
            raise ValueError(f"negative: {[i for i in items if i < 0]}")
        return [2 * i for i in items]


def test_concurrent_submissions_become_one_call_with_matched_results() -> None:
    model = Recorder()
    seen: list[tuple[int, int]] = []

    async def main() -> list[int]:
        batcher = MicroBatcher(model, max_batch_size=32, on_batch=lambda r, n: seen.append((r, n)))
        return await asyncio.gather(*(batcher.submit(i, 1) for i in range(32)))

    assert asyncio.run(main()) == [2 * i for i in range(32)]
    assert model.calls == [list(range(32))] and seen == [(32, 32)]


def test_a_lone_request_runs_at_once_and_batches_respect_the_row_limit() -> None:
    model = Recorder()

    async def main() -> tuple[float, list[int]]:
        batcher = MicroBatcher(model, max_batch_size=4, max_wait=5.0)
        start = time.perf_counter()
        await batcher.submit(1, 1)
        alone = time.perf_counter() - start
        results = await asyncio.gather(*(batcher.submit(i, rows) for i, rows in
                                         [(10, 3), (11, 1), (12, 2), (13, 9), (14, 1)]))  # fmt: skip
        return alone, results

    alone, results = asyncio.run(main())
    assert alone < 1.0  # far below max_wait: no waiting at concurrency 1
    assert results == [20, 22, 24, 26, 28]
    assert model.calls == [[1], [10, 11], [12], [13], [14]]  # ≤ 4 rows, a 9-row request alone


def test_under_concurrency_the_batcher_waits_for_as_many_as_last_time() -> None:
    model = Recorder()

    async def main() -> float:
        batcher = MicroBatcher(model, max_batch_size=32, max_wait=0.5)
        await asyncio.gather(*(batcher.submit(i, 1) for i in range(4)))
        start = time.perf_counter()
        await asyncio.gather(*(batcher.submit(i, 1) for i in range(4)))  # as many: no wait
        full = time.perf_counter() - start
        start = time.perf_counter()
        await batcher.submit(99, 1)  # fewer than last time: waits up to max_wait
        partial = time.perf_counter() - start
        assert full < 0.5 <= partial  # a wide margin: a slow machine stalls, never hurries
        return partial

    asyncio.run(main())
    assert [len(c) for c in model.calls] == [4, 4, 1]


def test_a_failing_request_does_not_fail_its_batch() -> None:
    model = Recorder()

    async def main() -> list[Any]:
        batcher = MicroBatcher(model, max_batch_size=8)
        return await asyncio.gather(
            *(batcher.submit(i, 1) for i in (1, -2, 3)), return_exceptions=True
        )

    one, bad, three = asyncio.run(main())
    assert one == 2 and three == 6
    assert isinstance(bad, ValueError) and str(bad) == "negative: [-2]"
    assert model.calls == [[1, -2, 3], [1], [-2], [3]]


def test_with_a_model_thread_requests_queue_while_the_model_works() -> None:
    release = threading.Event()
    model = Recorder()

    def slow(items: list[int]) -> list[int]:
        release.wait(30)
        return model(items)

    async def main() -> list[int]:
        batcher = MicroBatcher(slow, max_batch_size=32, use_thread=True)
        first = asyncio.ensure_future(batcher.submit(0, 1))
        await asyncio.sleep(0)  # let it start in the worker
        rest = [asyncio.ensure_future(batcher.submit(i, 1)) for i in range(1, 11)]
        await asyncio.sleep(0)
        release.set()
        results = await asyncio.gather(first, *rest)
        batcher.close()
        return results

    assert asyncio.run(main()) == [2 * i for i in range(11)]
    assert model.calls == [[0], list(range(1, 11))]


def test_service_splits_a_batch_back_into_each_requests_outputs(hub, classifier, training_data):
    X, _ = training_data
    service = ModelService(_served_clf(hub, classifier, X), ServingOptions(max_batch_size=32))
    schema = service.runtime.schema

    async def main() -> list[dict[str, np.ndarray]]:
        return await asyncio.gather(
            service.predict(schema.from_matrix(X[0:2], "a"), ("predict",), "a"),
            service.predict(schema.from_matrix(X[2:5], "b"), ("predict_proba",), "b"),
            service.predict(schema.from_matrix(X[5:6], "c"), ("predict", "predict_proba"), "c"),
        )

    a, b, c = asyncio.run(main())
    assert (
        set(a) == {"predict"}
        and set(b) == {"predict_proba"}
        and set(c) == {"predict", "predict_proba"}
    )
    np.testing.assert_array_equal(a["predict"], classifier.predict(X[0:2]))
    np.testing.assert_array_equal(b["predict_proba"], classifier.predict_proba(X[2:5]))
    np.testing.assert_array_equal(c["predict_proba"], classifier.predict_proba(X[5:6]))
    assert service.metrics.batch_requests._sum.get() == 3  # one call served the three
    service.close()


# -- prediction log ------------------------------------------------------------------------------------------
def _log(folder: Path, **kwargs: Any) -> PredictionLog:
    return PredictionLog(folder, MIXED, model="m", version="v1.0.0", **kwargs)


def _rows(n: int) -> FeatureBatch:
    return FeatureBatch(
        None,
        (
            np.arange(n, dtype=float),
            np.arange(n, dtype=np.int64),
            np.ones(n, dtype=bool),
            np.array(["x"] * n, dtype=object),
        ),
    )


def _read(folder: Path) -> pd.DataFrame:
    files = sorted(folder.glob("*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files]) if files else pd.DataFrame()


def test_prediction_log_writes_every_n_rows_and_on_close(tmp_path: Path) -> None:
    written: list[int] = []
    log = _log(tmp_path, flush_rows=5, flush_seconds=3600, on_written=written.append)
    for i in range(3):
        assert log.record(f"r{i}", _rows(2), np.array(["yes", "no"]))
    deadline = time.monotonic() + 20
    while not written and time.monotonic() < deadline:  # 6 rows ≥ 5: the thread writes
        time.sleep(0.01)
    assert written == [6]
    log.record("last", _rows(1), np.array(["yes"]))
    log.close()
    table = _read(tmp_path)
    assert len(table) == 7 and written == [6, 1]
    assert table["request_id"].tolist() == ["r0", "r0", "r1", "r1", "r2", "r2", "last"]
    assert list(table.columns) == [
        "timestamp", "request_id", "model", "model_version", "variant", "key",
        "age", "visits", "member", "city", "prediction",
    ]  # fmt: skip
    assert table["variant"].isna().all() and set(table["model_version"]) == {"v1.0.0"}
    assert not list(tmp_path.glob(".*"))


class _OneSecond:
    """The ``time`` module, with ``time()`` stopped inside one wall-clock second."""

    def time(self) -> float:
        return 1_800_000_000.25

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def test_prediction_log_samples_and_caps_rows_per_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the cap counts rows per wall-clock second: the records must not straddle two
    monkeypatch.setattr(predlog, "time", _OneSecond())
    none = _log(tmp_path / "none", sample_rate=0.0)
    assert not any(none.record("r", _rows(1), np.array([1])) for _ in range(50))
    none.close()
    assert _read(tmp_path / "none").empty
    dropped: list[int] = []
    capped = _log(tmp_path / "capped", max_rows_per_second=10, max_buffer_rows=12,
                  on_dropped=dropped.append)  # fmt: skip
    kept = [capped.record("r", _rows(4), np.array([1, 2, 3, 4])) for _ in range(5)]
    assert kept[:2] == [True, True] and not any(kept[2:])  # 8 rows; a third 4 would pass 10/s
    capped.close()
    assert len(_read(tmp_path / "capped")) == 8


def test_prediction_log_names_colliding_features_apart(tmp_path: Path) -> None:
    schema = FeatureSchema.build([FeatureSpec("prediction", "float64")], "ndarray")
    log = PredictionLog(tmp_path, schema, model="m", version="v1", variant="green")
    log.record("r", FeatureBatch(np.array([[1.5]]), None), np.array([0]))
    log.close()
    table = _read(tmp_path)
    assert table["feature:prediction"].tolist() == [1.5] and table["prediction"].tolist() == [0]
    assert table["variant"].tolist() == ["green"]


# -- the process contract ------------------------------------------------------------------------------------
def test_server_command_is_what_the_server_parses(tmp_path: Path) -> None:
    from jupyter_modelhub.modelserver.__main__ import build_parser
    from jupyter_modelhub.serving.contract import server_command

    argv = server_command(
        "fraud#prod", tmp_path, python="py", port=0, fd=5, admin_port=0, deployment="fraud-prod",
        variant="blue", log_dir=tmp_path / "log", runtime="onnx", max_batch_size=16,
        max_wait_ms=2, model_thread=True, sample_rate=0.5, log_rows_per_second=100,
        log_flush_rows=50, log_flush_seconds=1, max_body_mb=20, drain_seconds=3,
        log_level="info", host=None,
    )  # fmt: skip
    assert argv[:6] == [
        "py",
        "-m",
        "jupyter_modelhub.modelserver",
        "fraud#prod",
        "--hub",
        str(tmp_path),
    ]
    args = build_parser().parse_args(argv[3:])
    assert (args.ref, args.fd, args.admin_port, args.runtime, args.model_thread) == (
        "fraud#prod",
        5,
        0,
        "onnx",
        True,
    )
    assert (args.sample_rate, args.max_body_mb, args.host) == (0.5, 20.0, "127.0.0.1")
    with pytest.raises(ValueError, match="Unknown model server options: workers"):
        server_command("fraud", tmp_path, workers=4)


def test_status_lines_are_parsed() -> None:
    from jupyter_modelhub.serving.contract import Ready, parse_status_line

    line = 'MODELHUB-READY {"port": 8080, "admin_port": 41000, "pid": 12, "version": "v1.2.3"}\n'
    assert parse_status_line(line) == Ready(8080, 41000, 12, "v1.2.3")
    assert (
        parse_status_line("MODELHUB-FAILED The artifact is corrupt.") == "The artifact is corrupt."
    )
    assert parse_status_line("some library chatter") is None

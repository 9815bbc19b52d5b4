"""Traffic between variants as a client sees it: sticky keys, shares, shadows, outcomes.

The assignment rule is tested on its own (shares, stability across processes, canary ramps),
then through a real model server process serving a champion and a challenger.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats
from test_modelserver import REPO, call, call_json, poll, start_server

from jupyter_modelhub import Hub
from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.experiments.analysis import analyse, experiment_outcomes
from jupyter_modelhub.experiments.policy import (
    CHAMPION,
    Assigner,
    TrafficPolicy,
    key_position,
    parse_split,
    parse_steps,
)


def split_policy(weights: str = "80/20", **extra: Any) -> TrafficPolicy:
    return TrafficPolicy(
        kind=extra.pop("kind", "split"),
        experiment=extra.pop("experiment", "exp-1"),
        challengers={"challenger": extra.pop("version", "v0.0.2")},
        weights=parse_split(weights, ["challenger"]),
        **extra,
    )


# -- the assignment rule -------------------------------------------------------------------------
def test_keyed_shares_pass_a_chi_square_test() -> None:
    assigner = Assigner(split_policy("80/20"))
    picks = [assigner.choose(f"user-{i}") for i in range(5000)]
    observed = [picks.count(CHAMPION), picks.count("challenger")]
    assert stats.chisquare(observed, [4000, 1000]).pvalue > 0.001, observed
    # the same key, the same variant, every time
    assert [assigner.choose(f"user-{i}") for i in range(200)] == picks[:200]


def test_assignment_is_the_same_in_another_process() -> None:
    here = [round(key_position("exp-1", f"user-{i}"), 12) for i in range(50)]
    code = (
        "from jupyter_modelhub.experiments.policy import key_position;"
        "print([round(key_position('exp-1', f'user-{i}'), 12) for i in range(50)])"
    )
    env = {"PYTHONPATH": str(REPO), "PYTHONHASHSEED": "123", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert json.loads(out.stdout) == here
    # another experiment shuffles keys anew
    assert [round(key_position("exp-2", f"user-{i}"), 12) for i in range(50)] != here


def test_a_growing_canary_only_moves_keys_to_the_challenger() -> None:
    steps = parse_steps("5,25,50,100")
    assert steps == (0.05, 0.25, 0.5, 1.0)
    keys = [f"k{i}" for i in range(4000)]
    before: set[str] = set()
    for share in steps:
        policy = split_policy(f"{100 - share * 100:g}/{share * 100:g}")
        now = {k for k in keys if Assigner(policy).choose(k) == "challenger"}
        assert before <= now
        assert abs(len(now) / len(keys) - share) < 0.03
        before = now


def test_bad_policies_say_what_is_wrong() -> None:
    with pytest.raises(InvalidArgument, match="one share per variant"):
        parse_split("90/5/5", ["challenger"])
    with pytest.raises(InvalidArgument, match="growing percentages"):
        parse_steps("50,25")
    with pytest.raises(InvalidArgument, match="exactly one challenger"):
        TrafficPolicy(
            kind="shadow",
            experiment="e",
            challengers={"a": "v1.0.0", "b": "v2.0.0"},
            weights={"a": 0, "b": 0, CHAMPION: 1},
        )
    with pytest.raises(InvalidArgument, match="Unknown traffic policy"):
        split_policy(kind="sticky")


# -- through a model server ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A hub with churn@v0.0.1 (predicts 0 everywhere) and churn@v0.0.2 (predicts 1)."""
    from sklearn.dummy import DummyClassifier

    path = tmp_path_factory.mktemp("traffic") / "hub"
    hub = Hub.init(path)
    X = np.random.default_rng(1).normal(size=(40, 3))
    for constant in (0, 1):
        model = DummyClassifier(strategy="constant", constant=constant).fit(X, [0, 1] * 20)
        hub.register(model, "churn", sample=X[:5])
    return path, X


def infer(port: int, row: list[float], headers: dict[str, str] | None = None, **extra: Any):
    body = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": row}]}
    body.update(extra)
    status, hdrs, data = call(port, "POST", "/v2/models/churn/infer", body, headers=headers)
    return status, hdrs, json.loads(data)


def keyed_variants(port: int, keys: list[str]) -> dict[str, str]:
    """The variant that answered each key, over one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps(
        {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [0, 0, 0]}]}
    )
    out = {}
    try:
        for key in keys:
            conn.request(
                "POST",
                "/v2/models/churn/infer",
                body=body,
                headers={"Content-Type": "application/json", "X-Modelhub-Key": key},
            )
            response = conn.getresponse()
            answer = json.loads(response.read())
            assert response.status == 200, answer
            variant = response.getheader("X-Modelhub-Variant")
            label = answer["outputs"][0]["data"][0]
            # the variant header, the model_version and the prediction agree
            expected = {CHAMPION: ("v0.0.1", 0), "challenger": ("v0.0.2", 1)}[variant]
            assert (answer["model_version"], label) == expected
            out[key] = variant
    finally:
        conn.close()
    return out


def serve(hub: Path, policy: TrafficPolicy, tmp: Path, *extra: str):
    return start_server(
        "churn@v0.0.1",
        "--hub",
        str(hub),
        "--port",
        "0",
        "--traffic",
        json.dumps(policy.to_dict()),
        "--log-dir",
        str(tmp / "logs"),
        "--log-flush-seconds",
        "0.2",
        *extra,
        tmp=tmp,
    )


def test_a_split_is_sticky_by_key_and_survives_a_restart(two_versions, tmp_path: Path) -> None:
    hub, _ = two_versions
    policy = split_policy("80/20")
    keys = [f"user-{i}" for i in range(5000)]
    server = serve(hub, policy, tmp_path)
    try:
        assert server.ready["variants"] == ["challenger", "champion"]
        first = keyed_variants(server.port, keys)
    finally:
        assert server.terminate() == 0
    observed = [list(first.values()).count(CHAMPION), list(first.values()).count("challenger")]
    assert stats.chisquare(observed, [4000, 1000]).pvalue > 0.001, observed
    again = serve(hub, policy, tmp_path)
    try:
        assert keyed_variants(again.port, keys[:500]) == {k: first[k] for k in keys[:500]}
    finally:
        again.terminate()


def test_the_key_can_be_a_request_field(two_versions, tmp_path: Path) -> None:
    hub, _ = two_versions
    server = serve(hub, split_policy("50/50", key="user_id"), tmp_path)
    try:
        seen = {}
        for i in range(40):
            key = f"u{i}"
            status, hdrs, v2 = infer(
                server.port,
                [0.1, 0.2, 0.3],
                parameters={"user_id": key},  # v2: a request parameter
            )
            assert status == 200, v2
            seen[key] = hdrs["x-modelhub-variant"]
            # MLflow's format: a column that is not a feature, removed before validation
            status, hdrs2, data = call(
                server.port,
                "POST",
                "/invocations",
                {"dataframe_split": {"columns": ["user_id", "f0", "f1", "f2"],
                                     "data": [[key, 0.1, 0.2, 0.3]]}},
            )  # fmt: skip
            assert status == 200, data
            assert hdrs2["x-modelhub-variant"] == seen[key]
        assert set(seen.values()) == {CHAMPION, "challenger"}
    finally:
        server.terminate()


def test_a_url_naming_a_version_reaches_that_variant(two_versions, tmp_path: Path) -> None:
    hub, _ = two_versions
    server = serve(hub, split_policy("100/0"), tmp_path)
    try:
        body = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [0] * 3}]}
        status, answer = call_json(
            server.port, "POST", "/v2/models/churn/versions/v0.0.2/infer", body
        )
        assert status == 200 and answer["model_version"] == "v0.0.2"
        status, answer = call_json(server.port, "POST", "/v2/models/churn/infer", body)
        assert answer["model_version"] == "v0.0.1"  # 100/0: the champion answers the rest
    finally:
        server.terminate()


def test_a_shadow_answers_nobody_but_logs_every_request(two_versions, tmp_path: Path) -> None:
    import pandas as pd

    hub, _ = two_versions
    server = serve(hub, split_policy("100/0", kind="shadow"), tmp_path)
    try:
        ids = []
        for i in range(30):
            status, hdrs, answer = infer(server.port, [i, 0, 0])
            assert status == 200 and answer["model_version"] == "v0.0.1"
            assert hdrs["x-modelhub-variant"] == CHAMPION
            ids.append(hdrs["x-request-id"])

        def both_logged() -> Any:
            files = list((tmp_path / "logs").glob("*.parquet"))
            if not files:
                return None
            table = pd.concat([pd.read_parquet(f) for f in files])
            table = table[table["request_id"].isin(ids)]
            return [table] if len(table) == 60 else None

    finally:
        assert server.terminate() == 0
    table = poll(both_logged, what="both variants' predictions in the log")[0]
    pivot = table.pivot(index="request_id", columns="variant", values="prediction")
    assert (pivot[CHAMPION] == 0).all() and (pivot["challenger"] == 1).all()


def test_outcomes_join_the_variants_that_served(two_versions, tmp_path: Path) -> None:
    hub, _ = two_versions
    server = serve(hub, split_policy("50/50"), tmp_path)
    try:
        served = {}
        for i in range(400):
            status, hdrs, _ = infer(server.port, [0, 0, 0], headers={"X-Modelhub-Key": f"k{i}"})
            served[hdrs["x-request-id"]] = hdrs["x-modelhub-variant"]
        # the challenger converts every request, the champion none: by request id and by key
        items = [
            {"request_id": rid, "outcome": 1 if v == "challenger" else 0}
            for rid, v in list(served.items())[:300]
        ]
        status, answer = call_json(server.port, "POST", "/feedback", items)
        assert status == 200 and answer == {"accepted": 300, "dropped": 0}
        status, answer = call_json(server.port, "POST", "/feedback", {"key": "k399", "outcome": 1})
        assert status == 200
        status, answer = call_json(
            server.port, "POST", "/feedback", {"request_id": "r1", "outcome": "yes"}
        )
        assert status == 400 and "outcome" in answer["error"]
        status, answer = call_json(server.port, "POST", "/feedback", {"outcome": 1})
        assert status == 400 and "request_id" in answer["error"]
    finally:
        assert server.terminate() == 0
    data = experiment_outcomes(
        tmp_path / "logs", tmp_path / "logs" / "feedback", ["challenger", CHAMPION]
    )
    assert sum(v.requests for v in data.values()) == 400
    assert data["challenger"].outcomes.sum() >= 1 and data[CHAMPION].outcomes.sum() == 0
    result = analyse("exp-1", data, min_samples=50)
    assert result.metric == "rate"
    assert result.report.comparison("challenger").status == "better"


def test_the_policy_changes_live_with_the_admin_token_only(two_versions, tmp_path, monkeypatch):
    hub, _ = two_versions
    monkeypatch.setenv("MODELHUB_ADMIN_TOKEN", "s3cret")
    server = serve(hub, split_policy("100/0"), tmp_path)
    try:
        assert infer(server.port, [0, 0, 0])[2]["model_version"] == "v0.0.1"
        switched = json.dumps(split_policy("0/100").to_dict()).encode()
        for headers, expected in (({}, 403), ({"Authorization": "Bearer wrong"}, 403)):
            status, _, _ = call(server.admin_port, "PUT", "/admin/traffic", raw=switched,
                                headers=headers)  # fmt: skip
            assert status == expected
        # the main port has no admin routes at all
        status, _, _ = call(server.port, "PUT", "/admin/traffic", raw=switched,
                            headers={"Authorization": "Bearer s3cret"})  # fmt: skip
        assert status == 404
        status, _, body = call(server.admin_port, "PUT", "/admin/traffic", raw=switched,
                               headers={"Authorization": "Bearer s3cret"})  # fmt: skip
        assert status == 200, body
        assert json.loads(body)["policy"]["weights"] == {"challenger": 1.0, "champion": 0.0}
        assert infer(server.port, [0, 0, 0])[2]["model_version"] == "v0.0.2"  # at once
        # a policy naming a variant this server does not hold is refused, and nothing changes
        other = json.dumps(split_policy("50/50", version="v0.0.9").to_dict()).encode()
        status, _, body = call(server.admin_port, "PUT", "/admin/traffic", raw=other,
                               headers={"Authorization": "Bearer s3cret"})  # fmt: skip
        assert status == 400 and b"v0.0.9" in body
        assert infer(server.port, [0, 0, 0])[2]["model_version"] == "v0.0.2"
    finally:
        server.terminate()

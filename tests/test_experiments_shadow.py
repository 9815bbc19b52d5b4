"""Shadow comparison of two models' predictions on the same requests."""

from __future__ import annotations

import json

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from jupyter_modelhub.errors import InvalidArgument
from jupyter_modelhub.experiments.shadow import compare_predictions


def test_labels_agreement_confusion_and_disagreements() -> None:
    champion = np.array(["cat", "dog", "dog", "cat", "bird", "dog"])
    challenger = np.array(["cat", "dog", "cat", "cat", "dog", "dog"])
    report = compare_predictions(champion, challenger)
    assert report.kind == "labels"
    assert (report.n, report.agreements) == (6, 4)
    assert report.agreement_rate == pytest.approx(4 / 6)
    low, high = proportion_confint(4, 6, alpha=0.05, method="wilson")
    assert (report.agreement_ci.low, report.agreement_ci.high) == pytest.approx((low, high))
    assert report.confusion is not None
    assert report.confusion.labels == ("bird", "cat", "dog")
    # rows: champion class, columns: challenger class
    assert report.confusion.counts == ((0, 0, 1), (0, 2, 0), (0, 1, 2))
    assert [d.index for d in report.top_disagreements] == [2, 4]
    assert report.top_disagreements[0].champion == "dog"
    assert report.top_disagreements[0].challenger == "cat"
    assert report.differences is None
    json.dumps(report.to_dict(), allow_nan=False)


def test_regression_differences_and_top_k() -> None:
    rng = np.random.default_rng(0)
    champion = rng.normal(size=1000)
    challenger = champion.copy()
    challenger[[10, 500, 999]] += [0.5, -3.0, 1.0]
    report = compare_predictions(champion, challenger, top_k=2)
    assert report.kind == "regression"
    assert report.agreements == 997
    assert [d.index for d in report.top_disagreements] == [500, 999]
    assert report.top_disagreements[0].difference == pytest.approx(-3.0)
    diff = challenger - champion
    summary = report.differences
    assert summary is not None
    assert summary.mean_difference == pytest.approx(diff.mean())
    assert summary.mean_abs_difference == pytest.approx(np.abs(diff).mean())
    assert summary.max_abs_difference == pytest.approx(3.0)
    assert summary.quantiles["p99"] == pytest.approx(np.quantile(np.abs(diff), 0.99))
    assert set(summary.quantiles) == {"p50", "p90", "p95", "p99"}
    json.dumps(report.to_dict(), allow_nan=False)


def test_regression_tolerance() -> None:
    report = compare_predictions([1.0, 2.0, 3.0], [1.0 + 1e-12, 2.1, 3.0], atol=0.0, rtol=1e-9)
    assert report.agreements == 2
    assert compare_predictions([1.0, 2.0], [1.05, 2.0], atol=0.1).agreements == 2


def test_probabilities_argmax_agreement_and_total_variation() -> None:
    champion = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.5, 0.5]])
    challenger = np.array([[0.8, 0.2], [0.3, 0.7], [0.1, 0.9], [0.45, 0.55]])
    report = compare_predictions(champion, challenger, class_labels=["no", "yes"])
    assert report.kind == "probabilities"
    assert report.agreements == 2
    assert report.confusion is not None
    assert report.confusion.counts == ((1, 2), (0, 1))
    assert [d.index for d in report.top_disagreements] == [1, 3]
    assert report.top_disagreements[0].difference == pytest.approx(0.3)
    assert report.top_disagreements[0].champion == "no"
    assert report.top_disagreements[0].challenger == "yes"
    assert report.differences is not None
    assert report.differences.max_abs_difference == pytest.approx(0.3)


def test_identical_predictions() -> None:
    report = compare_predictions(np.arange(5), np.arange(5))
    assert report.agreement_rate == 1.0 and report.top_disagreements == ()
    assert report.agreement_ci.high == 1.0
    assert report.summary.startswith("100.0% of 5 requests agree")


def test_integer_labels_stored_as_floats() -> None:
    report = compare_predictions(
        np.array([0.0, 1.0, 1.0]), np.array([0.0, 1.0, 0.0]), kind="labels"
    )
    assert report.confusion is not None and report.confusion.labels == (0.0, 1.0)
    assert report.confusion.counts == ((1, 0), (1, 1))


@pytest.mark.parametrize(
    "champion,challenger,kwargs,message",
    [
        ([1, 2, 3], [1, 2], {}, "the challenger 2"),
        ([], [], {}, "no predictions"),
        ([1.0, np.nan], [1.0, 2.0], {}, "NaN"),
        (np.ones((3, 2)), np.ones((3, 3)), {}, "differ in shape"),
        (np.ones((3, 2)), np.ones((3, 2)), {"class_labels": ["a"]}, "1 class labels"),
        ([1, 2], [1, 2], {"kind": "text"}, "Unknown prediction kind"),
        ([1, 2], [1, 2], {"top_k": -1}, "top_k"),
        (np.ones((3, 2)), np.ones((3, 2)), {"kind": "regression"}, "must be 1-D"),
    ],
)
def test_bad_input_raises_invalid_argument(champion, challenger, kwargs, message) -> None:
    with pytest.raises(InvalidArgument, match=message):
        compare_predictions(champion, challenger, **kwargs)

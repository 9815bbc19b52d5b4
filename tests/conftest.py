"""Shared fixtures: a fresh hub per test, small fitted models, and the Jupyter server plugin."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
# Tests make git commits of their own (a user's code repository): give git an identity if the
# machine has none. The hub itself falls back to the login name.
for _var, _value in {
    "GIT_AUTHOR_NAME": "Test User",
    "GIT_AUTHOR_EMAIL": "test@example.org",
    "GIT_COMMITTER_NAME": "Test User",
    "GIT_COMMITTER_EMAIL": "test@example.org",
}.items():
    os.environ.setdefault(_var, _value)

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config(hub_path: Path) -> dict[str, Any]:
    """A Jupyter server (``jp_fetch``) with our extension serving the test's hub."""
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_modelhub": True}},
        "ModelHubApp": {"hub_path": str(hub_path)},
    }


@pytest.fixture
def hub_path(tmp_path: Path) -> Path:
    return tmp_path / "hub"


@pytest.fixture
def hub(hub_path: Path):
    from jupyter_modelhub import Hub

    return Hub.init(hub_path)


@pytest.fixture(scope="session")
def training_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    return X, y


@pytest.fixture(scope="session")
def classifier(training_data):
    from sklearn.linear_model import LogisticRegression

    X, y = training_data
    return LogisticRegression().fit(X, y)

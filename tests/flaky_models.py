"""Models that misbehave on purpose, importable by the replicas the tests start."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class FailsOnRealInput(ClassifierMixin, BaseEstimator):
    """Passes the server's self-test (an all-zero row) and fails on every other input."""

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict(self, X):
        X = np.asarray(X, dtype=float)
        if np.any(X != 0):
            raise RuntimeError("this model is broken")
        return np.zeros(len(X), dtype=np.int64)

"""The serving path's numpy logistic probabilities equal sklearn's."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from router.model import logistic_proba


@pytest.mark.parametrize("n_classes", [2, 4, 9])
def test_logistic_proba_matches_sklearn(n_classes):
    rng = np.random.default_rng(n_classes)
    x = rng.normal(size=(300, 16)).astype(np.float32)
    y = rng.integers(0, n_classes, size=300)
    model = LogisticRegression(C=0.3, max_iter=2000).fit(x, y)
    queries = rng.normal(size=(7, 16)).astype(np.float32)
    np.testing.assert_allclose(logistic_proba(model, queries), model.predict_proba(queries), rtol=1e-6, atol=1e-9)

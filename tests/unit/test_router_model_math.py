"""The serving path's numpy logistic probabilities and calibration equal sklearn's."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from router.model import IsotonicCurve, Logistic


@pytest.mark.parametrize("n_classes", [2, 4, 9])
def test_logistic_proba_matches_sklearn(n_classes):
    rng = np.random.default_rng(n_classes)
    x = rng.normal(size=(300, 16)).astype(np.float32)
    y = rng.integers(0, n_classes, size=300)
    model = LogisticRegression(C=0.3, max_iter=2000).fit(x, y)
    queries = rng.normal(size=(7, 16)).astype(np.float32)
    np.testing.assert_allclose(
        Logistic.from_sklearn(model).proba(queries), model.predict_proba(queries), rtol=1e-6, atol=1e-9
    )


def test_isotonic_predict_matches_sklearn():
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(0)
    x = rng.random(500)
    y = (rng.random(500) < x).astype(float)
    calibrator = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(x, y)
    points = np.concatenate([np.linspace(-0.5, 1.5, 2001), rng.random(300)])
    np.testing.assert_array_equal(IsotonicCurve.from_sklearn(calibrator).predict(points), calibrator.predict(points))


def test_cue_patterns_on_lowered_text_match_case_insensitive_search():
    """features.py counts cues on text.lower() instead of with re.I: the same counts on
    the shipped prompts (MMLU questions, Bitext support messages, Banking77)."""
    import glob
    import re

    import pandas as pd

    import router.features as F

    texts = pd.read_csv(sorted(glob.glob("data/routellm/mmlu/responses/*.csv"))[0])["prompt"].astype(str).tolist()
    texts += pd.read_csv("data/banking77/test.csv")["text"].tolist()[:500]
    texts += ["NOT unless Except WHEN; Both ALL OF THE ABOVE, Calculate HOW MANY", "İstanbul ǅ ﬁnd the"]
    for pattern in (F._CLAUSE_WORD, F._NEGATION, F._QUALIFIER, F._ALL_NONE, F._CALC):
        insensitive = re.compile(pattern.pattern, re.I)
        for text in texts:
            assert len(pattern.findall(text.lower())) == len(insensitive.findall(text)), (pattern.pattern, text)


def _shipped_texts() -> list[str]:
    import glob

    import pandas as pd

    texts = pd.read_csv(sorted(glob.glob("data/routellm/mmlu/responses/*.csv"))[0])["prompt"].astype(str).tolist()
    texts += pd.read_csv("data/banking77/test.csv")["text"].tolist()[:500]
    return texts + ["def f(): return {a: b};\n```", "Statement 1 | both ____ of the above", "calculate x"]


def test_needle_guards_never_skip_a_match():
    import router.features as F

    for pattern in F._NEEDLES:
        for text in _shipped_texts():
            for variant in (text, text.lower()):
                assert F._count(pattern, variant) == len(pattern.findall(variant)), (pattern.pattern, variant)


def test_query_features_are_lexical_plus_boundary():
    from router.features import BoundaryLists, boundary_features, lexical_features, query_features

    lists = BoundaryLists(kb_vocabulary=frozenset({"refund"}), known_products=frozenset({"PRO-1"}), recent_topics=("fees",))
    for text in _shipped_texts()[:300]:
        assert query_features(text, lists) == lexical_features(text) + boundary_features(text, lists)

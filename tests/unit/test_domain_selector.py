import numpy as np

from adapters.domains import DomainSelector, centroid


def test_top1_above_threshold():
    selector = DomainSelector({"refund": np.array([1.0, 0.0]), "order": np.array([0.0, 1.0])}, 0.5)
    choice = selector.select(np.array([0.9, 0.1], dtype=np.float32) / np.hypot(0.9, 0.1))
    assert choice.domain == "refund" and choice.similarity > 0.9


def test_below_threshold_goes_to_base():
    selector = DomainSelector({"refund": np.array([1.0, 0.0])}, 0.8)
    choice = selector.select(np.array([0.6, 0.8], dtype=np.float32))
    assert choice.domain is None and abs(choice.similarity - 0.6) < 1e-6


def test_no_domains():
    assert DomainSelector({}, 0.5).select(np.array([1.0, 0.0])).domain is None


def test_centroid_is_normalised():
    c = centroid(np.array([[3.0, 0.0], [0.0, 4.0]], dtype=np.float32))
    assert abs(float(np.linalg.norm(c)) - 1.0) < 1e-6

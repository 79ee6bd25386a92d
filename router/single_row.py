"""LightGBM's own fast single-row prediction, for the one query of a routing decision.

`Booster.predict` builds a predictor, copies its parameters and parses them again on every
call: ~0.1 ms of fixed cost a head, most of the five heads' ~0.5 ms per decision. LightGBM's
C API has a path made for this (`LGBM_BoosterPredictForMatSingleRowFast`: the predictor
and its parameters set up once, a row in, a value out); the Python package does not wrap
it, so this module calls it through the package's own loaded library. Same trees, same
objective transform: tests/unit/test_single_row_predict.py holds it to `Booster.predict`.

The call keeps the GIL. A ctypes call releases it by default, and in a busy replica (Ray's
threads waiting for it) getting it back took up to sys.getswitchinterval() (5 ms) for a call
of ~10 us: holding it is far cheaper than handing it over.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import numpy as np
from numpy.typing import NDArray

_PREDICT_NORMAL = 0  # C_API_PREDICT_NORMAL: the objective's output (a probability here)
_DTYPE_FLOAT64 = 1  # C_API_DTYPE_FLOAT64


class SingleRowPredictor:
    def __init__(self, booster: Any) -> None:
        from lightgbm.basic import _LIB, _safe_call

        self._lib, self._check = _LIB, _safe_call
        # The same loaded library (dlopen hands back its handle) called as a PyDLL: GIL held.
        self._predict_row = ctypes.PyDLL(_LIB._name).LGBM_BoosterPredictForMatSingleRowFast
        self.booster = booster  # owns the handle the fast config points into: keep it alive
        self.num_features = int(booster.num_feature())
        if booster.num_model_per_iteration() != 1:
            raise ValueError("one output per row only (a binary or regression head)")
        # As Booster.predict(num_iteration=None): the best iteration when training kept one.
        best = int(getattr(booster, "best_iteration", 0) or 0)
        self._handle = ctypes.c_void_p()
        self._check(self._lib.LGBM_BoosterPredictForMatSingleRowFastInit(
            booster._handle, ctypes.c_int(_PREDICT_NORMAL), ctypes.c_int(0),
            ctypes.c_int(best if best > 0 else -1), ctypes.c_int(_DTYPE_FLOAT64),
            ctypes.c_int32(self.num_features), ctypes.c_char_p(b"num_threads=1"),
            ctypes.byref(self._handle),
        ))
        self._out = np.zeros(1, dtype=np.float64)
        self._out_len = ctypes.c_int64()
        # The fast config holds one predictor and one output buffer: the router's decision
        # threads take turns (a call is microseconds).
        self._lock = threading.Lock()

    def predict(self, row: NDArray[np.floating]) -> float:
        data = np.ascontiguousarray(row, dtype=np.float64).reshape(-1)
        if data.shape[0] != self.num_features:
            raise ValueError(f"the model has {self.num_features} features, the row {data.shape[0]}")
        with self._lock:
            self._check(self._predict_row(
                self._handle, data.ctypes.data_as(ctypes.c_void_p), ctypes.byref(self._out_len),
                self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
            ))
            return float(self._out[0])

    def __reduce__(self) -> tuple[type, tuple[Any]]:
        return SingleRowPredictor, (self.booster,)  # a handle can't travel: set up anew

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value:
            self._lib.LGBM_FastConfigFree(handle)
            handle.value = None

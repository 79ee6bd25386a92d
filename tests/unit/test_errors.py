import pickle

from engines.errors import ContextLengthExceeded, EngineRequestError
from gateway.errors import ContextLengthError, ModelNotFound, ServiceUnavailable


def test_error_body_is_openai_shaped():
    body = ModelNotFound("no such model", param="model").body()
    assert body == {"error": {"message": "no such model", "type": "invalid_request_error",
                              "param": "model", "code": "model_not_found"}}


def test_statuses():
    assert ContextLengthError("x").status == 400
    assert ContextLengthError("x").code == "context_length_exceeded"
    assert ServiceUnavailable("x").status == 503


def test_engine_errors_survive_pickling_with_their_data():
    # They cross Ray handles between the engine replica and the ingress.
    exc = pickle.loads(pickle.dumps(EngineRequestError("bad adapter", param="model")))
    assert isinstance(exc, EngineRequestError) and exc.data == {"param": "model"}
    assert pickle.loads(pickle.dumps(ContextLengthExceeded("long"))).message == "long"

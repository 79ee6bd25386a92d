"""Every malformed input class gets an OpenAI-shaped 4xx; the app keeps serving."""

import pytest
from starlette.testclient import TestClient

from gateway.assembly import build_gateway, Tiers
from gateway.catalog import TierSpec
from gateway.settings import LimitSettings
from tests.support.bad_inputs import assert_openai_error, cases

LIMITS = LimitSettings()  # the production defaults
CASES = cases(max_body_bytes=LIMITS.max_body_bytes)


@pytest.fixture
def client(engines):
    tiers = {
        "small": TierSpec(served_name="tiny", max_model_len=64),
        "large": TierSpec(served_name="big", max_model_len=128),
    }
    with TestClient(build_gateway(Tiers(engines, tiers), LIMITS).app, raise_server_exceptions=False) as client:
        yield client


def test_sweep_has_enough_classes():
    assert len({case.name for case in CASES}) >= 25


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_a_clean_4xx(client, case):
    response = client.post(case.path, content=case.body, headers=case.headers)
    assert_openai_error(response, case)


def test_server_healthy_after_the_sweep(client):
    for case in CASES:
        client.post(case.path, content=case.body, headers=case.headers)
    ok = client.post("/v1/chat/completions", json={"model": "small", "max_tokens": 2,
                                                   "messages": [{"role": "user", "content": "hi"}]})
    assert ok.status_code == 200 and client.get("/health").status_code == 200

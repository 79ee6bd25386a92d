import pytest
from starlette.testclient import TestClient

from gateway.assembly import build_gateway, Tiers
from gateway.catalog import TierSpec
from gateway.settings import LimitSettings
from tests.support.fake_engine import FakeEngine


@pytest.fixture
def engines():
    return {"small": FakeEngine("tiny", max_model_len=64), "large": FakeEngine("big", max_model_len=128)}


@pytest.fixture
def gateway(engines):
    tiers = {
        "small": TierSpec(served_name="tiny", max_model_len=64),
        "large": TierSpec(served_name="big", max_model_len=128),
    }
    return build_gateway(Tiers(engines, tiers), LimitSettings(max_body_bytes=4096))


@pytest.fixture
def client(gateway):
    with TestClient(gateway.app, raise_server_exceptions=False) as client:
        yield client

"""The gateway over fake engines as an ASGI app, for tools that need an HTTP server
(the locustfile's test): `uvicorn tests.support.fake_app:app`."""

from gateway.assembly import build_gateway, Tiers
from gateway.catalog import TierSpec
from gateway.settings import LimitSettings
from tests.support.fake_engine import FakeEngine
engines = {"small": FakeEngine("tiny", max_model_len=512, token_delay_s=0.01), "large": FakeEngine("big", max_model_len=512, token_delay_s=0.01)}
tiers = {"small": TierSpec(served_name="tiny", max_model_len=512), "large": TierSpec(served_name="big", max_model_len=512)}
app = build_gateway(Tiers(engines, tiers), LimitSettings()).app

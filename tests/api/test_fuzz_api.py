"""Property-based fuzzing of the whole HTTP API, in-process (fake engines, tmp_path stores).

Requests are generated from the gateway's own request models (tests/support/fuzz_requests.py):
well-formed and broken bodies for every /v1 and /admin route, raw bytes, odd headers,
methods, paths and sizes, with a user key and an admin key. Whatever arrives, the answer is
below 500 (a documented 503 aside) and every error is OpenAI-shaped
(tests/support/fuzz_oracle.py); after them all, the app still answers a valid request.
`make fuzz` sends ten thousand such requests to the real app.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from pydantic import SecretStr
from starlette.testclient import TestClient

from adapters.directory import AdapterDirectory
from adapters.registry import AdapterRegistry
from engines.types import AdapterReport
from gateway.assembly import AdapterParts, Edge, Features, Routing, ShadowParts, Tiers, build_gateway
from gateway.auth import Authenticator, LocalRateLimiter
from gateway.catalog import TierSpec
from gateway.keys import KeyStore
from gateway.metrics import GatewayMetrics
from gateway.settings import AdminSettings, LimitSettings
from retrieval.grounding import Grounder
from router.registry import RouterRegistry
from shadow.journal import Journal
from support.wiring import SupportParts
from tests.support.adapters import BASE, make_adapter
from tests.support.fake_engine import FakeEngine
from tests.support.fuzz_oracle import judge
from tests.support.fuzz_requests import Credentials, FuzzRequest, Target, fuzz_requests
from tests.support.retrieval import ScriptedReranker, first_stage

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))  # more for a longer hunt
ADMIN_CONFIG_KEY = "fuzz-configured-admin-key"
MAX_BODY = 8192
TIERS = {"small": TierSpec(served_name="tiny", max_model_len=512),
         "large": TierSpec(served_name="big", max_model_len=512)}


class Same:
    def score(self, a: str, b: str) -> float:
        return float(a == b)


class KeywordEmbedder:
    dim = 2

    def embed(self, texts):
        return np.asarray([[1.0, 0.0] if "refund" in t else [0.0, 1.0] for t in texts], dtype=np.float32)


class FakeFleet:
    def __init__(self, engine: FakeEngine, registry: AdapterRegistry) -> None:
        self.engine, self.registry = engine, registry

    async def probe(self, adapter):
        await self.engine.add_adapter(adapter)

    async def reports(self):
        return {"replica-1": AdapterReport(generation=self.registry.state().generation)}


def adapters(tmp_path: Path, small: FakeEngine) -> AdapterParts:
    registry = AdapterRegistry(tmp_path / "adapters", base=BASE)
    for domain, centroid in (("refund", [1.0, 0.0]), ("order", [0.0, 1.0])):
        for day in (1, 2):
            registry.register(make_adapter(tmp_path / "src", domain, f"{domain}-v{day}-2026-11-0{day}", centroid=centroid))
        registry.activate(domain, f"{domain}-v1-2026-11-01")
    directory = AdapterDirectory(registry, KeywordEmbedder(), "minilm", 0.9)
    return AdapterParts(directory, FakeFleet(small, registry))


def fuzzed_app(tmp_path: Path):
    """Every capability on, so that every /admin route is mounted; keys in a tmp store."""
    keys = KeyStore(tmp_path / "keys.sqlite")
    credentials = Credentials(keys.create("fuzz-user")[1], keys.create("fuzz-admin", role="admin")[1], ADMIN_CONFIG_KEY)
    engines = {"small": FakeEngine("tiny", max_model_len=512), "large": FakeEngine("big", max_model_len=512)}
    metrics = GatewayMetrics()
    edge = Edge(
        auth=Authenticator(keys, LocalRateLimiter(), cache_ttl_s=60),
        admin=AdminSettings(api_key=SecretStr(ADMIN_CONFIG_KEY), converge_timeout_s=1), metrics=metrics,
    )
    features = Features(
        adapters=adapters(tmp_path, engines["small"]),
        shadow=ShadowParts(Journal(tmp_path / "shadow.sqlite"), Same()),
        grounder=Grounder(first_stage(tmp_path), ScriptedReranker(lambda p: 0.5), metrics.grounding),
        support=SupportParts(rollout_state=tmp_path / "rollout" / "state.json"),
    )
    routing = Routing(scorer=lambda text, category, asks: 0.0, registry=RouterRegistry(tmp_path / "routers"),
                      loader=lambda path, version: None, poll_s=3600)
    gateway = build_gateway(Tiers(engines, TIERS), LimitSettings(max_body_bytes=MAX_BODY), edge=edge,
                            routing=routing, features=features)
    target = Target(credentials, models=["small", "large", "tiny", "big", "small:refund", "small:order"],
                    domains=["refund", "order"], max_body_bytes=MAX_BODY)
    return gateway.app, target


@pytest.fixture
def app_under_fuzz(tmp_path):
    app, target = fuzzed_app(tmp_path)
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        yield client, target


def send(client: TestClient, request: FuzzRequest):
    content = iter([request.body]) if request.chunked and request.body else request.body
    return client.request(request.method, request.path, headers=request.headers, content=content)


def test_generated_requests_never_crash_the_app(app_under_fuzz):
    client, target = app_under_fuzz
    secrets = [target.credentials.user, target.credentials.admin, ADMIN_CONFIG_KEY]

    @settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(fuzz_requests(target))
    def one(request: FuzzRequest) -> None:
        response = send(client, request)
        verdict = judge(request.method, request.path, response.status_code,
                        response.headers.get("content-type", ""), response.content)
        assert not verdict.failed, (verdict, request.describe(secrets))

    one()
    ok = client.post("/v1/chat/completions", headers={"authorization": f"Bearer {target.credentials.user}"},
                     json={"model": "auto", "max_tokens": 4, "messages": [{"role": "user", "content": "hello"}]})
    assert ok.status_code == 200, ok.text
    assert client.get("/health").status_code == 200
    assert client.get("/admin/config", headers={"authorization": f"Bearer {ADMIN_CONFIG_KEY}"}).status_code == 200


# ---- what the fuzzing found ------------------------------------------------------------------

CHAT = "/v1/chat/completions"


def as_(client_key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {client_key}", "content-type": "application/json"}


@pytest.mark.parametrize("path,body", [
    (CHAT, b'{"model": "small", "max_tokens": 2, "messages": [{"role": "user", "content": "\\ud800"}]}'),
    (CHAT, b'{"model": "small", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}], "user": "\\udfff"}'),
    ("/v1/completions", b'{"model": "small", "max_tokens": 2, "prompt": "a\\uDBFFb"}'),
    ("/v1/responses", b'{"model": "small", "max_output_tokens": 2, "input": "\\ud800"}'),
    ("/admin/router", b'{"path": "\\ud800"}'),
    ("/admin/adapters/refund/activate", b'{"version": "\\ud800"}'),
], ids=["chat content", "chat user", "completions prompt", "responses input", "router path", "adapter version"])
def test_a_lone_surrogate_escape_is_a_clean_400(app_under_fuzz, path, body):
    # Before: json.loads made a str no encoder takes; the answer echoing it (or an error
    # message quoting it) failed with a 500 UnicodeEncodeError.
    client, target = app_under_fuzz
    key = target.credentials.admin if path.startswith("/admin") else target.credentials.user
    r = client.post(path, content=body, headers=as_(key))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_unicode"


def test_a_surrogate_pair_escape_is_text(app_under_fuzz):
    client, target = app_under_fuzz
    body = b'{"model": "small", "max_tokens": 2, "messages": [{"role": "user", "content": "hi \\ud83d\\ude00"}]}'
    r = client.post(CHAT, content=body, headers=as_(target.credentials.user))
    assert r.status_code == 200, r.text


def test_a_nested_field_of_the_wrong_type_is_named(app_under_fuzz):
    # Before: any "not an object" error, however deep, said the body was not a JSON object.
    client, target = app_under_fuzz
    message = {"role": "assistant", "content": "x", "tool_calls": [{"id": "c1", "function": None}]}
    r = client.post(CHAT, headers=as_(target.credentials.user), json={
        "model": "small", "max_tokens": 2, "messages": [message, {"role": "user", "content": "hi"}]})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["param"] == "messages.0.tool_calls.0.function" and "JSON object" not in error["message"]

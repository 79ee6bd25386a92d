"""Tiers above large in the settings tree and the application built from them: named apart,
deployed (or called directly when remote), listed to the ingress cheapest first."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from deployments.app import build, deployment_name
from deployments.settings import Settings

REMOTE = {"kind": "openai", "openai": {"base_url": "http://127.0.0.1:9/v1"}, "served_name": "frontier-model"}
MOCK = {"kind": "mock", "served_name": "mock-model"}


def parts(app):
    ingress = app._bound_deployment
    return ingress.init_args[0], ingress.init_args[1]


def test_two_tiers_stay_the_default():
    assert Settings().tier_names() == ("small", "large")


def test_extra_tiers_come_after_large_in_their_order():
    settings = Settings(extra_tiers={"frontier": REMOTE, "bench": MOCK})
    assert settings.tier_names() == ("small", "large", "frontier", "bench")
    assert settings.tier("frontier").served_name == "frontier-model"


def test_an_extra_tier_is_deployed_or_called_directly():
    handles, ingress = parts(build(Settings(extra_tiers={"frontier": REMOTE, "bench": MOCK})))
    assert list(ingress.tiers) == ["small", "large", "frontier", "bench"]
    assert handles.extra["frontier"] is None and "frontier" in ingress.direct  # remote: no replica
    assert handles.extra["bench"]._bound_deployment.name == deployment_name("bench") == "Engine_bench"
    assert ingress.tiers["frontier"].served_name == "frontier-model"


@pytest.mark.parametrize("extra, complaint", [
    ({"large": MOCK}, "already a model name"),
    ({"auto": MOCK}, "already a model name"),
    ({"frontier": {**MOCK, "served_name": "gemma-3-270m"}}, "already a model name"),
    ({"frontier": {"kind": "vllm"}}, "needs `model`"),
    ({"frontier": {**REMOTE, "enable_lora": True, "openai": {"base_url": "http://x/v1", "direct": False}}}, "small tier only"),
    ({"Frontier Tier": MOCK}, "pattern"),
])
def test_extra_tiers_are_refused_when_they_cannot_work(extra, complaint):
    with pytest.raises(ValidationError, match=complaint):
        Settings(extra_tiers=extra)


def test_a_routing_config_naming_a_tier_not_deployed_fails_the_build():
    settings = Settings(routing={"learned": {"upper": {"frontier": {}}}})
    with pytest.raises(ValueError, match="routing.learned.upper: frontier is not a tier here"):
        build(settings)
    build(settings.model_copy(update={"extra_tiers": Settings(extra_tiers={"frontier": MOCK}).extra_tiers}))

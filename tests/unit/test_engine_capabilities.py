"""What each kind of engine declares it honours, and how an operator narrows a remote tier's."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from engines.capabilities import ALL_CAPABILITIES, CAPABILITIES, PARAMS, missing, tier_capabilities
from engines.config import RemoteTierSettings
from engines.types import Agentic, OutputFormat, ToolFunction


def test_each_kind_declares_its_capabilities():
    assert ALL_CAPABILITIES == {"tools", "json_schema", "n", "logprobs"} == set(PARAMS)
    assert CAPABILITIES["vllm"] == CAPABILITIES["openai"] == ALL_CAPABILITIES
    assert CAPABILITIES["mock"] == {"n"}


def test_a_remote_tier_declares_what_its_upstream_lacks():
    settings = RemoteTierSettings(base_url="http://up/v1", capabilities=["tools", "n"])
    assert tier_capabilities("openai", settings.capabilities) == {"tools", "n"}
    assert tier_capabilities("openai", RemoteTierSettings(base_url="http://up/v1").capabilities) == ALL_CAPABILITIES
    assert tier_capabilities("mock", ["tools", "n"]) == {"n"}  # a declaration never adds to the kind's
    with pytest.raises(ValidationError, match="capabilities"):
        RemoteTierSettings(base_url="http://up/v1", capabilities=["telepathy"])


def test_missing_names_what_a_request_needs_and_the_tier_lacks():
    agentic = Agentic(tools=[ToolFunction(name="f")], output=OutputFormat(type="json_object"), n=2, logprobs=1)
    assert missing(agentic, CAPABILITIES["mock"]) == ["json_schema", "logprobs", "tools"]
    assert missing(agentic, ALL_CAPABILITIES) == []
    assert missing(Agentic(tools=[ToolFunction(name="f")], tool_choice="none"), frozenset()) == []

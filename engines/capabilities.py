"""What each kind of engine honours of what an agent asks (`engines.types.Agentic.asks`).

The gateway reads this before dispatch: a request that needs a capability its tier
lacks is refused with a 400 naming the field and the tier, never served without it.

    capability    asked by (OpenAI fields)                        vllm  openai  mock
    tools         tools, with a tool_choice other than "none"      yes   yes     no
    json_schema   response_format json_object or json_schema       yes   yes     no
    n             n > 1                                            yes   yes     yes
    logprobs      logprobs / top_logprobs                          yes   yes     no

A remote tier honours what its upstream does: `RemoteTierSettings.capabilities` narrows
the kind's default for an upstream that lacks one (a hosted API without logprobs).
"""

from __future__ import annotations

from typing import Iterable, Literal, get_args

from engines.types import Agentic

Capability = Literal["tools", "json_schema", "n", "logprobs"]
EngineKind = Literal["vllm", "openai", "mock"]

ALL_CAPABILITIES: frozenset[Capability] = frozenset(get_args(Capability))

CAPABILITIES: dict[EngineKind, frozenset[Capability]] = {
    "vllm": ALL_CAPABILITIES,
    "openai": ALL_CAPABILITIES,  # passed through: the upstream honours them or answers its own 400
    # No model behind it: a tool call, a schema or a logprob it made up would be a lie.
    "mock": frozenset({"n"}),
}

# The request field a refusal names (chat/completions spelling; /v1/responses says text.format).
PARAMS: dict[Capability, str] = {
    "tools": "tools",
    "json_schema": "response_format",
    "n": "n",
    "logprobs": "logprobs",
}


def tier_capabilities(
    kind: EngineKind, declared: Iterable[Capability] | None = None
) -> frozenset[Capability]:
    """What a tier of `kind` honours: its operator's declaration when there is one (never
    more than the kind can), else the kind's default."""
    default = CAPABILITIES[kind]
    return default if declared is None else default & frozenset(declared)


def missing(agentic: Agentic, offered: frozenset[Capability]) -> list[Capability]:
    """What the request needs that `offered` lacks, in a stable order."""
    return sorted(need for need in agentic.asks() if need not in offered)  # type: ignore[misc]

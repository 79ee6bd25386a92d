"""The router sees what a request asks beyond its text (issue 26): tools, a schema, turns,
a tool's result. Asks reach the features, are learned from outcomes that carry them, and
round-trip through the journal's `ask.*` tags and an export's `ask_*` columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engines.types import Agentic, ChatTurn, OutputFormat, ToolFunction
from router.asks import ASK_FEATURES, PLAIN, RequestAsks, asks_from_tags, request_asks
from router.data import DataError, OutcomeData, concat, load_outcomes
from router.model import EmbedderSpec, feature_names
from router.train import train_router
from tests.support.own_outcomes import HashEmbedder

TOOL = ToolFunction(name="refund", parameters={"type": "object", "properties": {}})
QUESTIONS = ["where is my order", "i want a refund for", "cancel my subscription to", "change my address"]


def test_a_plain_prompt_asks_nothing() -> None:
    assert request_asks(Agentic(), None) == PLAIN
    assert PLAIN.features() == [0.0, 0.0, 0.0, 1.0, 0.0]


def test_an_agent_turn_is_described() -> None:
    turns = [ChatTurn(role="user", content="refund me"), ChatTurn(role="assistant", content=""),
             ChatTurn(role="tool", content='{"ok": true}')]
    asks = request_asks(Agentic(tools=[TOOL], tool_choice="required", output=OutputFormat(type="json_object")), turns)
    assert asks == RequestAsks(tools=1, forced_tool=True, schema=True, turns=3, after_tool=True)


def test_tools_offered_with_choice_none_are_not_asked() -> None:
    assert request_asks(Agentic(tools=[TOOL], tool_choice="none"), None).tools == 0
    assert not request_asks(Agentic(tools=[TOOL]), None).forced_tool  # auto: the model may answer


def test_tags_round_trip() -> None:
    asks = RequestAsks(tools=2, forced_tool=True, schema=False, turns=5, after_tool=True)
    assert asks_from_tags({"client.user": "u", **asks.tags()}) == asks
    assert asks_from_tags({"client.user": "u"}) == PLAIN


def test_the_schema_names_the_ask_features() -> None:
    names = feature_names(4, False, (5,))
    assert all(name in names for name in ASK_FEATURES)


def test_outcome_columns_load_together(tmp_path) -> None:
    frame = pd.DataFrame({"prompt": ["a", "b"], "s": [1, 0], "l": [1, 1], "ask_tools": [0, 3],
                          "ask_forced_tool": [0, 1], "ask_schema": [0, 0], "ask_turns": [1, 4], "ask_after_tool": [0, 1]})
    frame.to_csv(tmp_path / "with.csv", index=False)
    data = load_outcomes(tmp_path / "with.csv", "s", "l")
    assert data.asks == [PLAIN, RequestAsks(tools=3, forced_tool=True, turns=4, after_tool=True)]
    assert data.subset(np.array([1])).asks == [data.asks[1]]
    plain = load_outcomes(_plain(tmp_path), "s", "l")
    assert plain.asks is None and concat(plain, data).asks == [PLAIN, PLAIN, *data.asks]
    frame.drop(columns=["ask_schema"]).to_csv(tmp_path / "partial.csv", index=False)
    with pytest.raises(DataError, match="ask_schema"):
        load_outcomes(tmp_path / "partial.csv", "s", "l")


def _plain(tmp_path):
    pd.DataFrame({"prompt": ["c", "d"], "s": [1, 1], "l": [0, 1]}).to_csv(tmp_path / "plain.csv", index=False)
    return tmp_path / "plain.csv"


def agent_rows(n: int = 320) -> OutcomeData:
    """The same support questions; with a forced tool and a schema the small tier fails them,
    as plain questions it answers them as well as large does.

    Each question comes both plain and tooled ((i // 2) % 4: with i % 4 the question fixed
    the asks, so the words alone separated the rows, and whether the heads split on the
    words or on the asks was decided by last-bit BLAS differences between CPUs). A plain
    row's two grades are the same: with independent noise "large scored strictly higher"
    was a coin flip there, and the plain score an isotonic fit to coin flips."""
    rng = np.random.RandomState(1)
    prompts, asks, small, large = [], [], [], []
    for i in range(n):
        tooled = i % 2 == 1
        prompts.append(f"{QUESTIONS[(i // 2) % 4]} item {i}")
        asks.append(RequestAsks(tools=3, forced_tool=True, schema=True, turns=4) if tooled else PLAIN)
        large.append(float(np.clip(0.8 + rng.uniform(-0.1, 0.1), 0, 1)))
        small.append(float(np.clip(0.2 + rng.uniform(-0.1, 0.1), 0, 1)) if tooled else large[-1])
    s, l = np.asarray(small, np.float32), np.asarray(large, np.float32)
    return OutcomeData(prompts=prompts, small_ok=(s >= 0.5).astype(np.float32), large_ok=(l >= 0.5).astype(np.float32),
                       categories=[None] * n, small_score=s, large_score=l, asks=asks)


def test_a_router_learns_what_tools_cost_the_small_tier() -> None:
    model = train_router(agent_rows(), HashEmbedder(), EmbedderSpec(), threads=1)
    text = "where is my order item 999"
    emb = HashEmbedder().embed([text, text])
    tooled = RequestAsks(tools=3, forced_tool=True, schema=True, turns=4)
    plain, agent = model.score_embedded(emb, [text, text], [None, None], [PLAIN, tooled])
    assert agent > plain + 0.3  # the same words: only the asks differ

import pytest
from pydantic import ValidationError

from wire.chat import ChatCompletionRequest, CompletionRequest


def chat(**fields):
    base = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    return ChatCompletionRequest.model_validate({**base, **fields})


def test_chat_defaults_and_sampling():
    req = chat(max_tokens=5, stop="END", seed=7, temperature=0)
    spec = req.sampling(req.requested_max_tokens())
    assert spec.max_tokens == 5 and spec.stop == ["END"] and spec.seed == 7
    assert spec.temperature == 0


def test_max_completion_tokens_wins_over_max_tokens():
    req = chat(max_tokens=5, max_completion_tokens=9)
    assert req.requested_max_tokens() == 9


def test_text_parts_are_joined_and_developer_is_system():
    req = chat(messages=[
        {"role": "developer", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
    ])
    turns = req.turns()
    assert [t.role for t in turns] == ["system", "user"] and turns[1].content == "ab"


@pytest.mark.parametrize(
    "fields, param",
    [
        ({"n": 9}, "n"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": 3}, "temperature"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "function", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"tools": [{"type": "function"}]}, "tools"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
         "messages.0.content"),
    ],
)
def test_chat_rejects_unservable_fields(fields, param):
    with pytest.raises(ValidationError) as info:
        chat(**fields)
    assert ".".join(map(str, info.value.errors()[0]["loc"])).startswith(param)


def test_empty_conversation_is_rejected():
    with pytest.raises(ValidationError):
        chat(messages=[{"role": "user", "content": "   "}])


@pytest.mark.parametrize("earlier", [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hi"},
])
def test_an_empty_last_turn_is_rejected_whatever_came_before(earlier):
    with pytest.raises(ValidationError, match="last message"):
        chat(messages=[earlier, {"role": "user", "content": " "}])
    assert chat(messages=[{**earlier, "content": ""}, {"role": "user", "content": "hi"}])


def test_unknown_fields_are_refused_by_name():
    with pytest.raises(ValidationError, match="frequency_penalty"):
        chat(frequency_penalty=0.0)


def test_completion_accepts_a_single_prompt_list():
    req = CompletionRequest.model_validate({"model": "small", "prompt": ["one"]})
    assert req.text() == "one" and req.max_tokens == 16


@pytest.mark.parametrize("prompt", [["a", "b"], "", []])
def test_completion_rejects_batches_and_empty(prompt):
    with pytest.raises(ValidationError):
        CompletionRequest.model_validate({"model": "small", "prompt": prompt})

"""A consumer that stops reading a stream must abort the engine's generation."""

from tests.support.calls import plan_call
from wire.chat import ChatCompletionRequest


async def test_closing_a_stream_aborts_the_engine(gateway, engines):
    engines["small"].token_delay_s = 0.01
    request = ChatCompletionRequest.model_validate(
        {"model": "small", "messages": [{"role": "user", "content": "a b c"}], "max_tokens": 50}
    )
    plan = await plan_call(gateway, request, "req-1")
    _, chunks = await gateway.dispatcher.open_stream(plan)
    await anext(chunks)
    assert "req-1" in engines["small"].running
    await chunks.aclose()
    assert engines["small"].aborted == ["req-1"] and not engines["small"].running
    metrics = gateway.metrics.registry.get_sample_value(
        "gateway_requests_total", {"endpoint": "chat", "tier": "small", "status": "499"}
    )
    assert metrics == 1.0

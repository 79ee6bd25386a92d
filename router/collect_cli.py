"""`router collect`: historical queries in, each gateway target's answer out.

Only option types are imported here: `router --help` must not pay for the OpenAI client.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:
    from router.collect import AskSettings, Collection

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"

DataOpt = Annotated[Path, typer.Option(
    exists=True, dir_okay=False,
    help="CSV or JSONL of queries: `prompt` or `messages` (a JSON list in CSV), optional "
         "`reference` and `category`",
)]
TargetOpt = Annotated[list[str], typer.Option(
    help="A model the gateway serves: small, small:<domain>, large or a served name (repeat)",
)]
OutOpt = Annotated[Path, typer.Option(help="Answers file (.csv or .jsonl), written when all is in")]
KeyEnvOpt = Annotated[str, typer.Option(
    help="Name of the environment variable holding the gateway API key (unset: no key)",
)]
CheckpointOpt = Annotated[Optional[Path], typer.Option(
    help="JSONL of finished pairs, read to resume (default: OUT.partial.jsonl)",
)]
LimitOpt = Annotated[Optional[int], typer.Option(min=1, help="Only the first N distinct queries")]


def collect(
    data: DataOpt,
    target: TargetOpt,
    out: OutOpt,
    base_url: Annotated[str, typer.Option(help="The gateway's OpenAI endpoint")] = DEFAULT_BASE_URL,
    api_key_env: KeyEnvOpt = "GATEWAY_API_KEY",
    checkpoint: CheckpointOpt = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight at most")] = 4,
    max_tokens: Annotated[int, typer.Option(min=1, help="Answer length cap (greedy)")] = 128,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds one request may take")] = 300.0,
    limit: LimitOpt = None,
    extra_body: Annotated[Optional[str], typer.Option(
        help='JSON object added to every request, e.g. \'{"grounding": false}\' (gateway fields)')] = None,
    logprobs: Annotated[Optional[int], typer.Option(
        min=0, max=20, help="Ask token logprobs with N alternatives and record the answer's confidence "
        "(lp_mean, lp_min, lp_margin columns per target)")] = None,
) -> None:
    """Ask each target for its answer to every query; a killed run resumes from its checkpoint."""
    from router.collect import (
        OUTPUT_SUFFIXES, AskSettings, CheckpointError, Collection, GatewayUnavailable, load_queries,
        write_answers,
    )
    from engines.environment import env_secret
    from router.data import DataError

    if out.suffix not in OUTPUT_SUFFIXES:
        raise typer.BadParameter("must end in .csv or .jsonl", param_hint="--out")
    checkpoint = checkpoint or out.with_name(out.name + ".partial.jsonl")
    try:
        job = Collection(load_queries(data, limit), target, checkpoint, with_confidence=logprobs is not None)
    except (DataError, CheckpointError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        extra = json.loads(extra_body) if extra_body else {}
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--extra-body") from None
    if not isinstance(extra, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="--extra-body")
    settings = AskSettings(max_tokens=max_tokens, concurrency=concurrency, extra_body=extra, top_logprobs=logprobs)
    # The key itself is never echoed: only the variable's name is an option.
    key = env_secret(api_key_env) or "none"
    try:
        _run(job, settings, base_url, key, timeout)
    except GatewayUnavailable as exc:
        _stopped(f"error: {exc}", job)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        _stopped("interrupted", job)
        raise typer.Exit(130) from None
    write_answers(out, job.rows())
    typer.echo(f"wrote {out}: {len(job.queries)} queries x {len(job.targets)} targets "
               f"({job.total - job.resumed} asked now, {job.resumed} from {checkpoint})")
    _report_errors(job)


def _run(job: Collection, settings: AskSettings, base_url: str, key: str, timeout: float) -> None:
    import asyncio

    import openai
    from tqdm import tqdm

    async def main(bar: tqdm) -> None:
        # max_retries=0: the retry policy (429 Retry-After, backoff, attempts) is router.collect's.
        async with openai.AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0,
                                      timeout=timeout) as client:
            await job.run(client, settings, on_record=lambda _: bar.update())

    with tqdm(total=job.total, initial=job.total - len(job.pending()), unit="answer",
              desc="collect", dynamic_ncols=True) as bar:
        asyncio.run(main(bar))


def _stopped(why: str, job: Collection) -> None:
    typer.echo(f"{why}\n{len(job.pending())} of {job.total} answers left; {job.checkpoint} keeps "
               "the others: rerun the same command to resume", err=True)


def _report_errors(job: Collection) -> None:
    for target, records in job.errors().items():
        typer.echo(f"{target}: {len(records)} of {len(job.queries)} failed permanently, e.g. "
                   f"{records[0].error!r} (kept in the checkpoint: not asked again)", err=True)


if __name__ == "__main__":
    typer.run(collect)

"""Locust load test of the gateway's OpenAI-compatible API, for the platform team.

    LOAD_SHAPE=steady LOCUST_USERS=4 LOCUST_DURATION_S=300 \\
    locust -f load_tests/locustfile.py --headless --host http://127.0.0.1:8000 \\
        --csv load_tests/results/locust --html load_tests/results/locust.html

Users send a mix of prompts (easy, hard, support-domain, long context) to
`/v1/chat/completions` with `model=auto`, streaming and not. Besides locust's own request
stats, each streamed answer records its time to first token (`TTFT`) and tokens per
second (`TPS`, the "response time" column holds tokens/s) as locust entries. At the end
the run's summary (p50/p95/p99 latency, TTFT, requests per second, error rate, routing mix
by tier and adapter) is written to `$LOCUST_SUMMARY` (default
load_tests/results/locust_summary.json).

Shapes (`LOAD_SHAPE`): steady (LOCUST_USERS for LOCUST_DURATION_S), step (one more user
every LOCUST_STEP_S up to LOCUST_USERS), burst (1 user, LOCUST_USERS for a tenth of the
time in the middle, then 1 again), soak (steady for LOCUST_DURATION_S, default 1 h).
Every shape stops by itself.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from locust import HttpUser, LoadTestShape, between, events, task

RESULTS = Path(__file__).parent / "results"
USERS = int(os.environ.get("LOCUST_USERS", "4"))
DURATION_S = float(os.environ.get("LOCUST_DURATION_S", "300"))
STEP_S = float(os.environ.get("LOCUST_STEP_S", "30"))
MAX_TOKENS = int(os.environ.get("LOCUST_MAX_TOKENS", "32"))
API_KEY = os.environ.get("LOCUST_API_KEY", "")

PROMPTS: dict[str, list[str]] = {
    "easy": ["Hi, what are your opening hours?", "Thanks for your help!", "How do I log in?"],
    "hard": [
        "A company's refund liability grows 3% per month, compounding, from 12,000 EUR. Except for "
        "months with a promotion, when it grows 5%, what is it after 6 months with promotions in months "
        "2 and 5? Explain each step.",
        "Statement 1 | Every group of order 15 is cyclic. Statement 2 | Every abelian group is cyclic.\n"
        "A. True, True\nB. False, False\nC. True, False\nD. False, True\nAnswer:",
    ],
    "support": [
        "I want a refund for my last order, it arrived broken.",
        "How can I change the shipping address of my order?",
        "I was charged twice for my subscription this month.",
        "Please delete my account and all my data.",
    ],
    "long": [
        ("I have been a customer for years and this is the third time my order arrives late. " * 12)
        + "What compensation can you offer, and how do I make sure it does not happen again?",
    ],
}
MIX = {"easy": 0.3, "hard": 0.2, "support": 0.4, "long": 0.1}

routes: Counter[str] = Counter()
# Exact samples for the summary (locust's own percentiles are bucketed, and its totals
# would mix the TTFT/TPS entries with the requests).
samples: dict[str, list[float]] = {"latency_ms": [], "ttft_ms": [], "tokens_per_s": []}


class OpenAIUser(HttpUser):
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        if API_KEY:
            self.client.headers["authorization"] = f"Bearer {API_KEY}"
        # Every user opens with a stream, so even a short run on a busy machine measures
        # time to first token (tasks are drawn at random: a few draws can all be `chat`).
        self.chat_stream()

    def _body(self, stream: bool) -> tuple[str, dict[str, Any]]:
        kind = random.choices(list(MIX), weights=list(MIX.values()))[0]
        body = {"model": "auto", "messages": [{"role": "user", "content": random.choice(PROMPTS[kind])}],
                "max_tokens": MAX_TOKENS, "temperature": 0.7, "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}
        return kind, body

    @task(2)
    def chat(self) -> None:
        kind, body = self._body(stream=False)
        start = time.perf_counter()
        with self.client.post("/v1/chat/completions", json=body, name=f"chat {kind}", catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code}: {r.text[:200]}")
                return
            _count_route(r.headers)  # with its outcome, see chat_stream
            r.success()
        samples["latency_ms"].append((time.perf_counter() - start) * 1000)

    @task(1)
    def chat_stream(self) -> None:
        kind, body = self._body(stream=True)
        start = time.perf_counter()
        first: float | None = None
        tokens = 0
        with self.client.post("/v1/chat/completions", json=body, name=f"stream {kind}", stream=True,
                              catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code}: {r.text[:200]}")
                return
            for line in r.iter_lines():
                if not line.startswith(b"data: ") or line == b"data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if "error" in chunk:
                    r.failure(chunk["error"]["message"])
                    return
                if first is None and chunk.get("choices"):
                    first = time.perf_counter() - start
                if chunk.get("usage"):
                    tokens = chunk["usage"]["completion_tokens"]
            total = time.perf_counter() - start
            # Locust timed the response headers; a stream's latency is until its last chunk.
            r.request_meta["response_time"] = total * 1000
            # Counted with its outcome, not at the headers: a stream cut off when locust
            # stops has no outcome in locust's stats and must not have a route either
            # (no greenlet switch between these two lines).
            _count_route(r.headers)
            r.success()
        samples["latency_ms"].append(total * 1000)
        if first is not None:
            samples["ttft_ms"].append(first * 1000)
            _metric("TTFT", kind, first * 1000)
            if tokens and total > first:
                samples["tokens_per_s"].append(tokens / (total - first))
                _metric("TPS", kind, tokens / (total - first))


def _count_route(headers: Any) -> None:
    tier = headers.get("x-gateway-tier", "?")
    adapter = headers.get("x-gateway-adapter")
    routes[f"{tier}:{adapter}" if adapter else tier] += 1


def _metric(kind: str, name: str, value: float) -> None:
    events.request.fire(request_type=kind, name=name, response_time=value, response_length=0,
                        exception=None, context={})


class Shape(LoadTestShape):
    """Picks the shape named by LOAD_SHAPE; returns None (stop) when it is over."""

    def tick(self) -> tuple[int, float] | None:
        elapsed = self.get_run_time()
        shape = os.environ.get("LOAD_SHAPE", "steady")
        duration = DURATION_S if shape != "soak" else float(os.environ.get("LOCUST_DURATION_S", "3600"))
        if elapsed >= duration:
            return None
        if shape == "step":
            return min(USERS, 1 + int(elapsed // STEP_S)), 1.0
        if shape == "burst":
            middle = duration * 0.45 <= elapsed < duration * 0.55
            return (USERS, float(USERS)) if middle else (1, float(USERS))
        return USERS, float(USERS)


@events.quitting.add_listener
def _summary(environment: Any, **_: Any) -> None:
    entries = [e for (_name, kind), e in environment.stats.entries.items() if kind == "POST"]
    requests = sum(e.num_requests for e in entries)
    failures = sum(e.num_failures for e in entries)
    elapsed = max(1e-9, environment.stats.total.last_request_timestamp - environment.stats.total.start_time) \
        if environment.stats.total.last_request_timestamp else None
    served = sum(routes.values()) or 1
    summary = {
        "shape": os.environ.get("LOAD_SHAPE", "steady"), "users": USERS, "duration_s": DURATION_S,
        "requests": requests, "failures": failures,
        "error_rate": failures / requests if requests else None,
        "rps": requests / elapsed if elapsed else None,
        "latency_ms": _percentiles(samples["latency_ms"]),
        "ttft_ms": _percentiles(samples["ttft_ms"]),
        "tokens_per_s": _percentiles(samples["tokens_per_s"]),
        "by_prompt_kind": {e.name: {"n": e.num_requests, "failures": e.num_failures,
                                    "p50_ms": e.get_response_time_percentile(0.5),
                                    "p95_ms": e.get_response_time_percentile(0.95)} for e in entries},
        "routing_mix": {k: round(v / served, 4) for k, v in sorted(routes.items())},
        "routing_counts": dict(sorted(routes.items())),
    }
    out = Path(os.environ.get("LOCUST_SUMMARY", RESULTS / "locust_summary.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    import numpy as np

    return {q: float(np.percentile(values, p)) for q, p in (("p50", 50), ("p95", 95), ("p99", 99))}


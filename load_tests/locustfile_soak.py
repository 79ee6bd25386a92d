"""The soak mix for `make soak` (load_tests/soak.py): locustfile.py's `auto` user plus
pinned tiers, pinned adapters, grounded answers and feedback. A module of its own, so the
plain locustfile runs only its `auto` user; this one imports it as a module (not its
names), so locust finds only `SoakUser` here.
"""

from __future__ import annotations

import random
import time
from typing import Any

from locust import task

import locustfile as base

Shape = base.Shape  # the run's shape (LOAD_SHAPE=soak, LOCUST_DURATION_S): it stops by itself


class SoakUser(base.OpenAIUser):
    """`auto` (inherited), pinned tiers, pinned adapters, grounded answers and feedback on
    answers, as a day of support traffic sends them."""

    DOMAINS = ("refund", "order", "account", "payment")

    def _send(self, model: str, kind: str, extra: dict[str, Any] | None = None) -> str | None:
        body = {"model": model, "messages": [{"role": "user", "content": random.choice(base.PROMPTS[kind])}],
                "max_tokens": base.MAX_TOKENS, "temperature": 0.7, **(extra or {})}
        start = time.perf_counter()
        with self.client.post("/v1/chat/completions", json=body, name=f"{model} {kind}",
                              catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code}: {r.text[:200]}")
                return None
            base._count_route(r.headers)
            r.success()
        base.samples["latency_ms"].append((time.perf_counter() - start) * 1000)
        return r.json()["id"]

    @task(1)
    def pinned_small(self) -> None:
        self._send("small", "easy")

    @task(1)
    def pinned_large(self) -> None:
        self._send("large", "hard")

    @task(1)
    def adapter(self) -> None:
        self._send(f"small:{random.choice(self.DOMAINS)}", "support")

    @task(1)
    def grounded_with_feedback(self) -> None:
        answer = self._send("auto", "support", {"grounding": True, "metadata": {"category": "refund"}})
        if answer is None:
            return
        time.sleep(1.0)  # the journal writes the answer off the request path (gevent-patched sleep)
        feedback = {"request_id": answer, "rating": random.choice([1, -1]),
                    "sent_text": "We have refunded your order; it reaches your card in 5 days."}
        with self.client.post("/v1/feedback", json=feedback, name="feedback", catch_response=True) as r:
            if r.status_code >= 300:
                r.failure(f"{r.status_code}: {r.text[:200]}")
            else:
                r.success()

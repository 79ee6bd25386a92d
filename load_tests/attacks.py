"""The attack drill: each way in that issue 27's security review found, tried against the
deployed gateway, each expected to be refused. One row per attack in the fault table:
the attack, what a closed-by-default gateway answers, what it answered, and whether the
two match. Run from load_tests/faults.py (it deploys the app the production way):

    python load_tests/faults.py --only attacks

No background traffic: each attack reads its own answers (in-flight gauges, journal rows).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

import httpx

CHAT = "/v1/chat/completions"
# What a user key may see of the routing (AuthSettings.detail_headers): the tier, no more.
USER_HEADERS = {"x-gateway-tier"}
DISCONNECT_DISABLED = "x-request-disconnect-disabled"  # Ray Serve's own header: "?1" keeps generating
CAPPED = 2  # concurrent requests of the drill's capped key, per ingress replica


@dataclass(frozen=True)
class Outcome:
    got: str
    ok: bool


@dataclass
class Target:
    """The deployed gateway as the drill reaches it, and what it may read beside it."""

    url: str
    admin: dict[str, str]
    keys: Any  # gateway.keys.KeyStore of the deployment (a scratch copy)
    journal: Path  # the shadow store (answers and ratings)
    ingress_replicas: int
    cache_ttl_s: float  # auth.cache_ttl_s: how late a revocation may take effect
    max_tokens: int  # limits.max_tokens
    default_max_concurrent: int | None  # auth.default_max_concurrent: a key's cap without its own

    def client(self, secret: str | None = None, timeout: float = 120) -> httpx.AsyncClient:
        headers = {"authorization": f"Bearer {secret}"} if secret else {}
        return httpx.AsyncClient(base_url=self.url, timeout=timeout, headers=headers)


@dataclass(frozen=True)
class Attack:
    name: str
    expected: str
    run: Callable[[Target], Awaitable[Outcome]]


def ask(text: str = "Where is my order?", model: str = "small", max_tokens: int = 4, **extra: Any) -> dict:
    return {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": text}], **extra}


def create_key(target: Target, name: str, **options: Any) -> tuple[Any, str]:
    """A key made for one attack. `options` the store does not know (yet) are left out:
    the attack then meets the settings' defaults instead."""
    accepted = inspect.signature(target.keys.create).parameters
    return target.keys.create(name, **{k: v for k, v in options.items() if k in accepted})


def code_of(response: httpx.Response) -> str:
    """`401`, or `429 concurrency_limit` when the OpenAI-shaped error names a code."""
    try:
        code = response.json()["error"].get("code")
    except (ValueError, KeyError, TypeError, AttributeError):
        code = None
    return f"{response.status_code} {code}" if code else str(response.status_code)


def refused(response: httpx.Response, status: int) -> Outcome:
    return Outcome(code_of(response), response.status_code == status)


# ---- who may call ------------------------------------------------------------------------


async def no_key(target: Target) -> Outcome:
    async with target.client() as http:
        return refused(await http.post(CHAT, json=ask()), 401)


async def revoked_key(target: Target) -> Outcome:
    record, secret = create_key(target, "drill-revoked")
    async with target.client(secret) as http:
        before = await http.post(CHAT, json=ask())  # cached as valid on the replica that answered
        target.keys.revoke(record.id)
        await asyncio.sleep(target.cache_ttl_s + 1)
        after = [await http.post(CHAT, json=ask()) for _ in range(2 * target.ingress_replicas)]
    got = f"{before.status_code}, then " + ",".join(sorted({code_of(a) for a in after}))
    return Outcome(got, before.status_code == 200 and all(a.status_code == 401 for a in after))


async def metrics_without_key(target: Target) -> Outcome:
    async with target.client() as http:
        return refused(await http.get("/metrics"), 401)


async def ready_without_key(target: Target) -> Outcome:
    async with target.client() as http:
        response = await http.get("/ready")
    try:
        body = response.json()
    except ValueError:
        body = response.text
    fields = sorted(body) if isinstance(body, dict) else []
    detailed = bool(set(fields) - {"ready", "status"}) or any(
        word in json.dumps(body) for word in ("running", "waiting", "Error", "small", "large")
    )
    return Outcome(f"{response.status_code} {fields or str(body)[:40]}", not detailed)


# ---- what a key may do -------------------------------------------------------------------


async def answered(http: httpx.AsyncClient, text: str) -> tuple[str, str]:
    """Ask; the request id and the answer's text."""
    response = await http.post(CHAT, json=ask(text, max_tokens=8, temperature=0))
    response.raise_for_status()
    body = response.json()
    return body["id"].removeprefix("chatcmpl-"), body["choices"][0]["message"]["content"]


async def journaled(target: Target, request_id: str, limit_s: float = 15) -> Any:
    """The journal's row of an answer, once the ingress wrote it (the sinks run after it)."""
    from shadow.journal import Journal

    journal = Journal(target.journal)
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        record = await asyncio.to_thread(journal.request, request_id)
        if record is not None:
            return record
        await asyncio.sleep(0.25)
    return None


async def rate_anothers_answer(target: Target) -> Outcome:
    _, owner = create_key(target, "drill-owner")
    _, other = create_key(target, "drill-other")
    async with target.client(owner) as http:
        rid, _ = await answered(http, "Where is my parcel?")
    if await journaled(target, rid) is None:
        return Outcome("the answer was never journaled", False)
    async with target.client(other) as http:
        response = await http.post("/v1/feedback", json={"request_id": rid, "rating": -1})
    return refused(response, 404)


async def rate_twice(target: Target) -> Outcome:
    from shadow.journal import Journal

    _, owner = create_key(target, "drill-rater")
    async with target.client(owner) as http:
        rid, _ = await answered(http, "How do I change my address?")
        if await journaled(target, rid) is None:
            return Outcome("the answer was never journaled", False)
        first = await http.post("/v1/feedback", json={"request_id": rid, "rating": 1})
        second = await http.post("/v1/feedback", json={"request_id": rid, "rating": 1})
    stored = len(await asyncio.to_thread(Journal(target.journal).feedback, rid))
    got = f"{code_of(first)}, {code_of(second)}; {stored} stored"
    return Outcome(got, first.status_code == 200 and second.status_code != 200 and stored == 1)


async def reuse_request_id(target: Target) -> Outcome:
    """A client names its request with another request's id (x-request-id, which Ray's
    proxy passes in): the journal keeps the first answer, and its key."""
    owner_record, owner = create_key(target, "drill-first")
    _, intruder = create_key(target, "drill-intruder")
    async with target.client(owner) as http:
        rid, draft = await answered(http, "What is your refund policy?")
    if await journaled(target, rid) is None:
        return Outcome("the answer was never journaled", False)
    async with target.client(intruder) as http:
        body = ask("Ignore that and say hello", max_tokens=8)
        response = await http.post(CHAT, json=body, headers={"x-request-id": rid})
    await asyncio.sleep(2)  # the intruder's own journal write, if any, is done
    record = await journaled(target, rid)
    kept = record is not None and record.draft == draft and record.key_id == owner_record.id
    got = f"{response.status_code}; row {'kept' if kept else 'overwritten'}"
    return Outcome(got, kept)


async def gate_off_without_permission(target: Target) -> Outcome:
    _, plain = create_key(target, "drill-plain")
    async with target.client(plain) as http:
        return refused(await http.post(CHAT, json=ask(gate=False)), 403)


async def detail_headers_for_a_user(target: Target) -> Outcome:
    _, plain = create_key(target, "drill-viewer")
    async with target.client(plain) as http:
        response = await http.post(CHAT, json=ask("How do I reset my password?", model="auto"))
    shown = sorted(h for h in response.headers if h.startswith("x-gateway-") and h not in USER_HEADERS)
    got = f"{response.status_code}; shown: {','.join(shown) or 'none'}"
    return Outcome(got, response.status_code == 200 and not shown)


async def over_the_concurrency_cap(target: Target) -> Outcome:
    """More streams at once than the key may hold on every ingress replica together."""
    _, capped = create_key(target, "drill-capped", max_concurrent=CAPPED)
    own = "max_concurrent" in inspect.signature(target.keys.create).parameters
    cap = CAPPED if own else target.default_max_concurrent
    if cap is None:
        return Outcome("no concurrency cap for the key", False)
    n = 2 * cap * target.ingress_replicas + 2

    async def one(http: httpx.AsyncClient) -> str:
        async with http.stream("POST", CHAT, json=ask(max_tokens=64, stream=True)) as response:
            await response.aread()
            return code_of(response)

    async with target.client(capped) as http:
        codes = await asyncio.gather(*(one(http) for _ in range(n)))
    counts = {c: codes.count(c) for c in sorted(set(codes))}
    limited = sum(v for c, v in counts.items() if c.startswith("429"))
    others_ok = all(c == "200" or c.startswith("429") for c in codes)
    return Outcome(", ".join(f"{v}x {c}" for c, v in counts.items()), limited > 0 and others_ok)


async def disconnect_disabled(target: Target) -> Outcome:
    """A client asks Ray to keep generating after it leaves, then leaves. Refused outright
    (400 reserved_header), or, if it got through, the answer stops all the same: the small
    tier's in-flight gauge drops at once, not after 1024 tokens."""
    _, secret = create_key(target, "drill-leaver")
    if not await settled(target, "small"):
        return Outcome("the small tier never went idle before the attack", False)
    body = ask("Write a very long story about parcels.", max_tokens=min(1024, target.max_tokens), stream=True)
    async with target.client(secret) as http:
        async with http.stream("POST", CHAT, json=body, headers={DISCONNECT_DISABLED: "?1"}) as response:
            if response.status_code == 400:
                await response.aread()
                return Outcome(f"refused: {code_of(response)}", True)
            async for line in response.aiter_lines():
                if line.startswith("data: {"):
                    during = await in_flight(target, "small")  # proof the gauge sees it
                    break  # one token, then the client is gone
            else:
                return Outcome(f"{response.status_code}: no token streamed", False)
    left = time.monotonic()
    if during < 1:
        return Outcome("the stream was never counted in flight", False)
    if await settled(target, "small", limit_s=10):
        return Outcome(f"aborted {time.monotonic() - left:.1f}s after the disconnect", True)
    return Outcome("still generating 10s after the disconnect", False)


async def settled(target: Target, tier: str, limit_s: float = 30) -> bool:
    """Whether `tier` has nothing in flight on any ingress replica within `limit_s`."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if await in_flight(target, tier) == 0:
            return True
        await asyncio.sleep(0.5)
    return False


async def in_flight(target: Target, tier: str, scrapes: int = 8) -> float:
    """The highest in-flight count of `tier` over several scrapes (spread over the replicas)."""
    highest = 0.0
    for _ in range(scrapes):
        for sample in await samples(target.url, [target.admin]):
            if sample.name == "gateway_in_flight_requests" and sample.labels.get("tier") == tier:
                highest = max(highest, sample.value)
    return highest


async def samples(url: str, credentials: list[dict[str, str]]) -> list[Any]:
    """One /metrics scrape with the first credentials it accepts (it wants a key)."""
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for headers in credentials:
            response = await http.get("/metrics", headers=headers)
            if response.status_code == 200:
                return [s for family in text_string_to_metric_families(response.text) for s in family.samples]
    raise RuntimeError(f"/metrics refused every key the drill holds ({response.status_code})")


# ---- what a body, a header, an admin call may carry ----------------------------------------


async def huge_integer(target: Target) -> Outcome:
    _, secret = create_key(target, "drill-numbers")
    raw = '{"model": "small", "max_tokens": ' + "9" * 5000 + ', "messages": [{"role": "user", "content": "hi"}]}'
    async with target.client(secret) as http:
        return refused(await http.post(CHAT, content=raw, headers={"content-type": "application/json"}), 400)


async def text_plain(target: Target) -> Outcome:
    _, secret = create_key(target, "drill-plain-text")
    async with target.client(secret) as http:
        response = await http.post(CHAT, content=json.dumps(ask()), headers={"content-type": "text/plain"})
    return refused(response, 415)


async def bad_host(target: Target) -> Outcome:
    _, secret = create_key(target, "drill-host")
    async with target.client(secret) as http:
        return refused(await http.post(CHAT, json=ask(), headers={"host": "attacker.example"}), 400)


async def huge_max_tokens(target: Target) -> Outcome:
    _, secret = create_key(target, "drill-greedy")
    async with target.client(secret) as http:
        response = await http.post(CHAT, json=ask(model="large", max_tokens=1_000_000))
    return Outcome(code_of(response), response.status_code == 400 and "max_tokens" in response.text)


async def admin_router_traversal(target: Target) -> Outcome:
    async with httpx.AsyncClient(base_url=target.url, timeout=60, headers=target.admin) as http:
        return refused(await http.post("/admin/router/activate", json={"version": "../../etc"}), 400)


async def admin_adapter_traversal(target: Target) -> Outcome:
    async with httpx.AsyncClient(base_url=target.url, timeout=60, headers=target.admin) as http:
        return refused(await http.post("/admin/adapters/support/activate", json={"version": "../../etc"}), 400)


ATTACKS = [
    Attack("no key", "401", no_key),
    Attack("revoked key", "200, then 401", revoked_key),
    Attack("feedback on another key's answer", "404", rate_anothers_answer),
    Attack("same key rates twice", "200, then refused; 1 stored", rate_twice),
    Attack("x-request-id of another request", "row kept", reuse_request_id),
    Attack("gate:false without the switch", "403", gate_off_without_permission),
    Attack("JSON integer of 5000 digits", "400", huge_integer),
    Attack("text/plain POST", "415", text_plain),
    Attack("bad Host header", "400", bad_host),
    Attack("/metrics without a key", "401", metrics_without_key),
    Attack("/ready without a key", "no detail", ready_without_key),
    Attack("detail headers, user key", "200; shown: none", detail_headers_for_a_user),
    Attack("admin router version ../../etc", "400", admin_router_traversal),
    Attack("admin adapter version ../../etc", "400", admin_adapter_traversal),
    Attack("over the key's concurrency cap", "200s and some 429", over_the_concurrency_cap),
    Attack("x-request-disconnect-disabled", "400, or aborted on disconnect", disconnect_disabled),
    Attack("max_tokens 1,000,000 to a tier", "400 max_tokens_exceeded", huge_max_tokens),
]


async def run_attacks(target: Target) -> list[dict]:
    """Every attack in turn; a row each, whatever happened (an exception is a mismatch)."""
    rows = []
    for attack in ATTACKS:
        try:
            outcome = await attack.run(target)
        except Exception as exc:  # the drill goes on: the row says what broke
            outcome = Outcome(f"{type(exc).__name__}: {exc}"[:120], False)
        row = {"scenario": f"attack: {attack.name}", "attack": attack.name, "expected": attack.expected,
               "got": outcome.got, "ok": outcome.ok, "lost": 0}
        print(f"{row['scenario']:44s} expected {attack.expected:30s} got {outcome.got:40s} "
              f"{'ok' if outcome.ok else 'MISMATCH'}")
        rows.append(row)
    return rows

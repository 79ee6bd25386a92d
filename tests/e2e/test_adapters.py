"""LoRA adapters on the real app: trained default adapters served by vLLM, per-request
selection, and hot swaps through the admin API while traffic flows."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import ADMIN_KEY
from tests.support.adapters import clone_version

pytestmark = pytest.mark.e2e

QUESTION = "How can I get a refund for my order?"


def active(registry_dir: Path) -> dict[str, str]:
    state = json.loads((registry_dir / "state.json").read_text())
    return {d: s["active"] for d, s in state["domains"].items() if s["active"]}


def ask(client, model: str, text: str = QUESTION, max_tokens: int = 40):
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], max_tokens=max_tokens, temperature=0,
    )


def test_default_adapters_listed(client, registry_dir):
    cards = {m.id: m for m in client.models.list().data}
    live = active(registry_dir)
    assert len(live) >= 4
    for domain, version in live.items():
        card = cards[f"small:{domain}"]
        assert card.model_extra["active_version"] == version
        assert card.model_extra["parent"] == "smollm2-135m-instruct"


def test_pinned_adapter_changes_the_answer(client, registry_dir):
    base = ask(client, "small")
    tuned = ask(client, "small:refund")
    assert tuned.headers["x-gateway-adapter"] == active(registry_dir)["refund"]
    assert tuned.parse().model == f"smollm2-135m-instruct:{active(registry_dir)['refund']}"
    assert "x-gateway-adapter" not in base.headers
    assert tuned.parse().choices[0].message.content != base.parse().choices[0].message.content


def test_pinned_adapter_streams(client):
    stream = client.chat.completions.create(
        model="small:order", messages=[{"role": "user", "content": "Where is my order?"}],
        max_tokens=12, stream=True,
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text


def test_unknown_domain_404(client):
    import openai

    with pytest.raises(openai.NotFoundError) as info:
        ask(client, "small:billing")
    assert info.value.body["code"] == "adapter_not_found"


def test_auto_traffic_picks_domain_adapters(client):
    questions = {
        "refund": "I want my money back for the jacket I returned",
        "order": "I need to cancel the order I placed yesterday",
        "account": "I forgot my password and cannot log in to my account",
        "payment": "Which payment methods can I use to pay?",
    }
    picked = {}
    for domain, text in questions.items():
        response = ask(client, "auto", text, max_tokens=4)
        if response.headers["x-gateway-tier"] == "small":
            picked[domain] = response.headers.get("x-gateway-adapter", "")
    assert picked, "the router sent no support question to the small tier"
    matches = sum(version.startswith(f"{domain}-v") for domain, version in picked.items())
    assert matches >= max(1, len(picked) - 1), picked


def test_admin_needs_key(http):
    assert http.get("/admin/adapters").status_code == 401


def test_bad_adapters_refused_previous_stays(admin, client, registry_dir, tmp_path):
    refund = active(registry_dir)["refund"]
    corrupt = clone_version(registry_dir, refund, f"refund-v90-{date.today()}", tmp_path)
    (corrupt / "adapter_model.safetensors").write_bytes(b"\0" * 64)
    wrong_base = clone_version(registry_dir, refund, f"refund-v91-{date.today()}", tmp_path)
    manifest = json.loads((wrong_base / "manifest.json").read_text())
    manifest["base"].update(name="gemma-3-270m", hidden_size=640)
    (wrong_base / "manifest.json").write_text(json.dumps(manifest))
    high_rank = clone_version(registry_dir, refund, f"refund-v92-{date.today()}", tmp_path)
    config = json.loads((high_rank / "adapter_config.json").read_text())
    (high_rank / "adapter_config.json").write_text(json.dumps({**config, "r": 64}))
    cases = {
        "missing": (str(tmp_path / "nowhere"), "invalid_adapter"),
        "corrupt": (str(corrupt), "invalid_adapter"),
        "wrong base": (str(wrong_base), "incompatible_adapter"),
        "rank": (str(high_rank), "incompatible_adapter"),
    }
    for name, (path, code) in cases.items():
        response = admin.post("/admin/adapters", json={"path": path, "activate": True})
        assert response.status_code == 400, (name, response.text)
        assert response.json()["error"]["code"] == code, name
    unknown = admin.post("/admin/adapters/billing/activate", json={"version": "billing-v1-2026-01-01"})
    assert unknown.status_code == 404
    assert ask(client, "small:refund").headers["x-gateway-adapter"] == refund


def test_hot_swap_under_load_loses_nothing(gateway_url, admin, registry_dir, tmp_path):
    """8 clients keep asking `small:refund` while the admin API loads a new version and
    activates it, rolls back, activates it again and rolls back: every request succeeds."""
    refund = active(registry_dir)["refund"]
    fresh = clone_version(registry_dir, refund, f"refund-v80-{date.today()}", tmp_path)
    results: list[int] = []
    swaps: list[dict] = []

    async def traffic(stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=gateway_url, timeout=120) as http:
            while not stop.is_set():
                response = await http.post("/v1/chat/completions", json={
                    "model": "small:refund", "max_tokens": 8,
                    "messages": [{"role": "user", "content": QUESTION}],
                })
                results.append(response.status_code)

    async def operate() -> None:
        async with httpx.AsyncClient(
            base_url=gateway_url, timeout=120, headers={"authorization": f"Bearer {ADMIN_KEY}"}
        ) as ops:
            steps = [
                ("POST", "/admin/adapters", {"path": str(fresh), "activate": True}),
                ("POST", "/admin/adapters/refund/rollback", {"version": refund}),
                ("POST", "/admin/adapters/refund/activate", {"version": fresh.name}),
                ("POST", "/admin/adapters/refund/rollback", {"version": refund}),
            ]
            for method, path, body in steps:
                await asyncio.sleep(1.5)
                response = await ops.request(method, path, json=body)
                assert response.status_code == 200, response.text
                swaps.append(response.json())

    async def main() -> None:
        stop = asyncio.Event()
        clients = [asyncio.create_task(traffic(stop)) for _ in range(8)]
        try:
            await operate()
            await asyncio.sleep(1.0)
        finally:
            stop.set()
            await asyncio.gather(*clients)

    asyncio.run(main())
    assert len(results) >= 16
    assert all(status == 200 for status in results), results
    assert all(swap["converged"] for swap in swaps), swaps
    assert swaps[0]["active"].startswith("refund-v80-") and swaps[-1]["active"] == refund
    print(f"\nswap seconds: {[round(s['swap_seconds'], 3) for s in swaps]}; requests {len(results)}")


def test_unload_then_reactivate(admin, client, registry_dir):
    order = active(registry_dir)["order"]
    assert admin.delete("/admin/adapters/order").json()["active"] is None
    import openai

    with pytest.raises(openai.NotFoundError):
        ask(client, "small:order")
    base = ask(client, "auto", "cancel my order", max_tokens=2)
    assert base.headers.get("x-gateway-adapter", "").startswith("order-") is False
    restored = admin.post("/admin/adapters/order/activate", json={"version": order})
    assert restored.status_code == 200 and restored.json()["active"] == order
    assert ask(client, "small:order").headers["x-gateway-adapter"] == order


def test_adapter_metrics(http, client):
    ask(client, "small:refund", max_tokens=2)
    text = http.get("/metrics").text
    assert 'gateway_adapter_requests_total{domain="refund"' in text
    assert "gateway_adapter_swap_seconds" in text

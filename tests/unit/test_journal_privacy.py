"""What the answer journal keeps of users' text (shadow.privacy): personal data and secrets
redacted by default, everything or nothing when configured, per category; the rows it
keeps are bounded in time and number by default."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shadow.config import JournalConfig, RetentionConfig, ShadowConfig
from shadow.journal import Journal, RequestRecord, ShadowPair, read_pairs
from shadow.privacy import kept, kept_optional, kept_tags, redact


@pytest.mark.parametrize("text, gone, placeholder", [
    ("mail me at jane.doe+x@example.co.uk please", "jane.doe+x@example.co.uk", "[email]"),
    ("my card is 4111 1111 1111 1111 thanks", "4111 1111 1111 1111", "[card]"),
    ("call +1 (415) 555-0134 after 5", "555-0134", "[phone]"),
    ("the key sk-proj-abcdEFGH1234ijklMNOP5678 leaked", "abcdEFGH1234", "[secret]"),
    ("use gw-AbCdEfGhIjKlMnOpQrStUv", "gw-AbCdEfGhIjKlMnOpQrStUv", "[secret]"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload", "eyJhbGciOiJIUzI1NiJ9", "[secret]"),
    ("token 9f8e7d6c5b4a39281706f5e4d3c2b1a0ffeeddcc", "9f8e7d6c5b4a39281706f5e4d3c2b1a0ffeeddcc", "[secret]"),
    ("AKIAIOSFODNN7EXAMPLE is the id", "AKIAIOSFODNN7EXAMPLE", "[secret]"),
])
def test_personal_data_and_secrets_are_redacted(text, gone, placeholder):
    redacted = redact(text)
    assert gone not in redacted and placeholder in redacted


@pytest.mark.parametrize("text", [
    "Refunds take 5 to 7 business days.",
    "Order 12345 shipped on 2026-03-01 for 49.99 EUR.",
    "Between 1999 and 2024 we grew.",
    "where is my refund number 3",
])
def test_ordinary_text_is_kept_as_is(text):
    assert redact(text) == text


def test_each_policy_keeps_what_it_says():
    text = "write to jane@example.com"
    assert kept(text, "full") == text
    assert kept(text, "redacted") == "write to [email]"
    assert kept(text, "none") == ""
    assert kept_optional(None, "full") is None and kept_optional(text, "none") is None
    tags = {"tier": "small", "category": "billing", "client.user": "jane@example.com", "client.metadata.t": "T-1"}
    assert kept_tags(tags, "redacted") == {**tags, "client.user": "[email]"}
    assert kept_tags(tags, "none") == {"tier": "small", "category": "billing"}


def test_the_journal_redacts_by_default_and_opts_in_per_category():
    config = ShadowConfig.model_validate({"journal": {"categories": {"Billing": "full", "vip": "none"}}})
    assert config.journal.enabled and config.journal.store_text == "redacted"
    assert config.journal.policy({"category": "billing"}) == "full"
    assert config.journal.policy({"domain": "vip"}) == "none"  # no client category: the adapter domain's
    assert config.journal.policy({"category": "orders"}) == "redacted"
    assert config.journal.policy({}) == "redacted"


@pytest.mark.parametrize("switch", [True, False])
def test_the_old_journal_switch_still_switches_it(switch):
    config = ShadowConfig.model_validate({"journal": switch})
    assert config.journal == JournalConfig(enabled=switch)


def test_a_bad_policy_or_an_empty_category_is_refused():
    with pytest.raises(ValueError):
        ShadowConfig.model_validate({"journal": {"store_text": "some"}})
    with pytest.raises(ValueError):
        ShadowConfig.model_validate({"journal": {"categories": {" ": "full"}}})


def test_retention_is_bounded_by_default(tmp_path):
    retention = ShadowConfig().retention
    assert retention == RetentionConfig() and retention.days <= 30 and retention.max_rows <= 200_000
    journal = Journal(tmp_path / "shadow.sqlite")
    now = datetime.now(timezone.utc)
    journal.add_request(RequestRecord(request_id="old", created_at=now - timedelta(days=retention.days + 1),
                                      target="small", prompt="q", draft="d"))
    journal.add_request(RequestRecord(request_id="new", created_at=now, target="small", prompt="q", draft="d"))
    journal.prune(now - timedelta(days=retention.days), retention.max_rows)
    assert journal.request("old") is None and journal.request("new") is not None


def test_the_flywheel_reads_only_pairs_with_their_text(tmp_path):
    journal = Journal(tmp_path / "shadow.sqlite")
    for rid, prompt in (("kept", "where is my refund"), ("textless", "")):
        journal.add_pair(ShadowPair(request_id=rid, primary_target="large", shadow_target="small", prompt=prompt,
                                    primary_text="a", shadow_text="b", primary_latency_s=1, shadow_latency_s=1))
    assert [p.request_id for p in read_pairs(journal.path, None)] == ["kept"]

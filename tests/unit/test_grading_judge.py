"""LLM-as-judge: reading scores and verdicts, counting what cannot be read, pairwise order."""

from __future__ import annotations

import asyncio

import pytest

from router.grading.judge import JudgeGrader, PairwiseJudge, combine, fill, load_rubric
from router.grading.protocol import GradeItem, PairItem
from router.grading.verdicts import parse_score, parse_verdict


@pytest.mark.parametrize("reply, score", [
    ("Solid answer.\nScore: 4", 0.75), ("4/5", 0.75), ("**Rating:** 4", 0.75),
    ('{"score": 4}', 0.75), ('Here: {"Score": 5, "why": "ok"}', 1.0), ("Score (1-5): 2", 0.25),
    ("score: 3 out of 5", 0.5), ("Score: 2\nOn reflection... Score: 5", 1.0), ("1", 0.0),
    ("<think>maybe Score: 1</think>Score: 5", 1.0), ("Score: 3.5", 0.625),
    # unreadable or off the scale: never a silent 0 or 1
    ("I would give it a four", None), ("The answer is good.", None), ("8/10", None),
    ("Score: 7", None), ('{"score": "high"}', None), ("", None),
])
def test_parse_score(reply, score):
    assert parse_score(reply, 1, 5) == score


def test_parse_score_on_another_scale():
    assert parse_score("Score: 7/10", 0, 10) == 0.7


@pytest.mark.parametrize("reply, verdict", [
    ("Verdict: A", "A"), ("**Verdict:** B", "B"), ("Verdict: tie", "tie"), ("[[B]]", "B"),
    ("[[C]]", "tie"), ('{"winner": "A"}', "A"), ("Answer A is better.", "A"), ("tie", "tie"),
    ("The better answer is B.", "B"), ("Response B is better. A is verbose", "B"),
    ("Both are fine", None), ("", None),
])
def test_parse_verdict(reply, verdict):
    assert parse_verdict(reply) == verdict


def test_fill_replaces_placeholders_once_and_leaves_other_braces():
    template = 'Q: {prompt}\nA: {answer}\nRef: {reference}\nReply {"score": N}'
    filled = fill(template, prompt="p", answer="see {reference}", reference="r")
    assert filled == 'Q: p\nA: see {reference}\nRef: r\nReply {"score": N}'


def test_the_shipped_rubrics_hold_their_placeholders():
    assert all(f"{{{k}}}" in load_rubric(None) for k in ("prompt", "answer", "reference"))
    pairwise = load_rubric(None, pairwise=True)
    assert all(f"{{{k}}}" in pairwise for k in ("prompt", "answer_a", "answer_b", "reference"))


class FakeChat:
    """Replies by what the prompt holds; tracks how many calls are in flight at once."""

    def __init__(self, reply) -> None:
        self.reply = reply
        self.in_flight = 0
        self.most_in_flight = 0
        self.prompts: list[str] = []

    async def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0)
        self.in_flight -= 1
        return self.reply(prompt)


def scored(prompt: str) -> str:
    if "ANSWER=boom" in prompt:
        raise RuntimeError("endpoint down")
    if "ANSWER=good" in prompt:
        return "Score: 5"
    if "ANSWER=meh" in prompt:
        return "3/5"
    return "I cannot decide."


def test_judge_counts_unparseable_and_failed_replies_and_bounds_concurrency():
    chat = FakeChat(scored)
    judge = JudgeGrader(chat, "ANSWER={answer} REF={reference}", concurrency=2)
    items = [GradeItem(prompt="q", answer=a) for a in ("good", "meh", "junk", "boom", "good", "good")]
    assert judge.grade(items) == [1.0, 0.5, None, None, 1.0, 1.0]
    assert judge.counts() == {"unparseable": 1, "failed": 1}
    assert judge.unparseable_samples == ["I cannot decide."]
    assert chat.most_in_flight == 2
    assert "REF=(none)" in chat.prompts[0]


def pair(a: str, b: str) -> PairItem:
    return PairItem(prompt="q", answer_a=a, answer_b=b)


def shown(prompt: str) -> tuple[str, str]:
    first = prompt.split("A=")[1].split(" ")[0]
    return first, prompt.split("B=")[1]


def prefers_good(prompt: str) -> str:
    a, b = shown(prompt)
    if a == b:
        return "Verdict: tie"
    return "Verdict: A" if a == "good" else "Verdict: B" if b == "good" else "no idea"


def always_first(prompt: str) -> str:
    return "Verdict: A"


RUBRIC = "A={answer_a} B={answer_b}"


def test_pairwise_consistent_verdicts_score_the_winner():
    judge = PairwiseJudge(FakeChat(prefers_good), RUBRIC)
    assert judge.grade_pairs([pair("good", "bad"), pair("bad", "good"), pair("same", "same")]) == [
        (1.0, 0.0), (0.0, 1.0), (0.5, 0.5)]
    assert judge.counts() == {}


def test_pairwise_position_bias_is_a_counted_tie():
    chat = FakeChat(always_first)
    judge = PairwiseJudge(chat, RUBRIC)
    assert judge.grade_pairs([pair("x", "y")]) == [(0.5, 0.5)]
    assert judge.counts() == {"position_biased": 1}
    assert chat.prompts == ["A=x B=y", "A=y B=x"]  # both orders asked


def test_pairwise_unreadable_verdict_leaves_the_pair_out():
    judge = PairwiseJudge(FakeChat(prefers_good), RUBRIC)
    assert judge.grade_pairs([pair("x", "y")]) == [None]
    assert judge.counts() == {"unparseable": 2, "pairs_left_out": 1}


@pytest.mark.parametrize("first, second, scores, consistent", [
    ("A", "B", (1.0, 0.0), True), ("B", "A", (0.0, 1.0), True), ("tie", "tie", (0.5, 0.5), True),
    ("A", "A", (0.5, 0.5), False), ("A", "tie", (0.5, 0.5), False), ("tie", "B", (0.5, 0.5), False),
])
def test_combine(first, second, scores, consistent):
    assert combine(first, second) == (scores, consistent)


async def test_agrade_runs_inside_a_running_loop():
    judge = JudgeGrader(FakeChat(scored), "ANSWER={answer}")
    assert await judge.agrade([GradeItem(prompt="q", answer="good")]) == [1.0]

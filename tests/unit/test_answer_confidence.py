"""An answer's confidence from its token logprobs (what a cascade reads), and how
`router collect --logprobs` records it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from openai.types.chat import ChatCompletion

from engines.confidence import answer_confidence
from engines.types import TokenLogprob, TopLogprob
from router.collect import AnswerRecord, Collection, _confidence, load_queries, write_answers


def token(logprob: float, *alternatives: float) -> TokenLogprob:
    return TokenLogprob(token="t", logprob=logprob, top=[TopLogprob(token=f"a{i}", logprob=a) for i, a in enumerate(alternatives)])


def test_mean_min_and_margin_of_the_sampled_tokens():
    confidence = answer_confidence([token(-0.1, -0.1, -2.1), token(-0.5, -0.5, -0.7), token(-3.0, -1.0, -3.0)])
    assert confidence is not None and confidence.tokens == 3
    assert confidence.mean_logprob == pytest.approx(-1.2)
    assert confidence.min_logprob == pytest.approx(-3.0)
    # The gap between the two likeliest alternatives, whichever was sampled: 2.0, 0.2, 2.0.
    assert confidence.mean_margin == pytest.approx(4.2 / 3)


def test_no_alternatives_no_margin_and_no_tokens_no_confidence():
    confidence = answer_confidence([token(-0.2), token(-0.4, -0.4)])
    assert confidence is not None and confidence.mean_margin is None
    assert answer_confidence([]) is None and answer_confidence(None) is None


def completion(logprobs: list[tuple[float, list[float]]] | None) -> ChatCompletion:
    content = None if logprobs is None else [
        {"token": "x", "logprob": lp, "bytes": None,
         "top_logprobs": [{"token": f"y{i}", "logprob": a, "bytes": None} for i, a in enumerate(alts)]}
        for lp, alts in logprobs
    ]
    return ChatCompletion.model_validate({
        "id": "c", "object": "chat.completion", "created": 0, "model": "small",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"},
                     "logprobs": None if content is None else {"content": content}}],
    })


def test_the_clients_logprobs_become_the_same_confidence_the_gateway_computes():
    choice = completion([(-0.25, [-0.25, -1.25]), (-0.75, [-0.5, -0.75])]).choices[0]
    confidence = _confidence(choice)
    assert confidence is not None and confidence.tokens == 2
    assert confidence.mean_logprob == pytest.approx(-0.5) and confidence.min_logprob == pytest.approx(-0.75)
    assert confidence.mean_margin == pytest.approx((1.0 + 0.25) / 2)
    assert _confidence(completion(None).choices[0]) is None


def test_answers_csv_gets_the_confidence_columns_empty_where_an_answer_has_none(tmp_path: Path):
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"prompt": "a"}) + "\n" + json.dumps({"prompt": "b"}))
    queries = load_queries(data)
    sure = answer_confidence([token(-0.1, -0.1, -1.1)])
    records = [AnswerRecord(query_id=queries[0].id, target="small", answer="x", confidence=sure),
               AnswerRecord(query_id=queries[1].id, target="small", error="400: no")]
    checkpoint = tmp_path / "ck.jsonl"
    checkpoint.write_bytes(b"".join(r.model_dump_json().encode() + b"\n" for r in records))
    job = Collection(queries, ["small"], checkpoint, with_confidence=True)
    out = tmp_path / "answers.csv"
    write_answers(out, job.rows())
    with out.open(newline="") as handle:
        first, second = list(csv.DictReader(handle))
    assert float(first["lp_mean:small"]) == pytest.approx(-0.1)
    assert float(first["lp_margin:small"]) == pytest.approx(1.0)
    assert second["lp_mean:small"] == "" and second["error:small"] == "400: no"

"""The bad-input sweep against the real app: every class a clean 4xx, server healthy after."""

from __future__ import annotations

import pytest

from gateway.settings import LimitSettings
from tests.support.bad_inputs import assert_openai_error, cases

pytestmark = pytest.mark.e2e

CASES = cases(max_body_bytes=LimitSettings().max_body_bytes)


def test_every_bad_input_is_a_clean_4xx_and_the_server_keeps_serving(http, client):
    failures = []
    for case in CASES:
        response = http.post(case.path, content=case.body, headers=case.headers)
        try:
            assert_openai_error(response, case)
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, failures
    assert http.get("/ready").status_code == 200
    answer = client.chat.completions.create(
        model="small", messages=[{"role": "user", "content": "hello"}], max_tokens=2
    )
    assert answer.choices[0].message.content is not None

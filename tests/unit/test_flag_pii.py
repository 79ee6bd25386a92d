"""Personal data in answers: e-mails, Luhn-valid card numbers, phone-shaped numbers;
masked in the flag, scored higher when echoed from the customer's message."""

from __future__ import annotations

import pytest

from flags.config import PiiConfig
from flags.pii import PiiEvaluator, luhn
from flags.types import Answer


def flags(text: str, user: str = "", config: PiiConfig = PiiConfig()):
    return PiiEvaluator(config).evaluate(Answer(request_id="r", text=text, user_text=user))


def test_an_echoed_email_is_flagged_masked_and_scored_as_echoed():
    (flag,) = flags("We will write to Jane.Doe@example.com today.", user="my mail is jane.doe@example.com")
    assert flag.kind == "pii" and flag.score == 1.0
    assert flag.detail == "email J***@example.com (echoed from the customer's message)"
    assert "Jane.Doe" not in flag.detail


def test_card_numbers_must_pass_luhn():
    assert luhn("4111111111111111") and not luhn("4111111111111112")
    (card,) = flags("The card 4111 1111 1111 1111 is on file.")
    assert card.detail.startswith("card ***1111") and card.score == 0.5
    assert flags("Order 4111 1111 1111 1112 has shipped.") == []  # fails Luhn: not a card
    (amex,) = flags("Amex 3782 822463 10005, please.")
    assert amex.detail.startswith("card ***0005")


def test_phone_numbers_in_any_common_shape_match_the_customers():
    found = flags("Call +1 (555) 123-4567 or 020 7946 0958.", user="reach me on 555.123.4567")
    assert [(f.detail.split(" (")[0], f.score) for f in found] == [("phone ***4567", 1.0), ("phone ***0958", 0.5)]


@pytest.mark.parametrize("text", [
    "Your order 12345678 ships in 3-5 days.",  # a bare reference number
    "It was delivered on 2024-06-01 or 12/05/2024.",  # dates
    "The total is 1,234.56 dollars.",
    "Reach us at {{Customer Support Phone Number}} or {{Customer Support Email}}.",  # template slots
])
def test_numbers_that_are_not_personal_data_are_not_flagged(text):
    assert flags(text) == []


def test_only_echoed_keeps_what_came_from_the_customer():
    text = "Thanks jane@example.com, our desk is support@example.com."
    found = flags(text, user="I am jane@example.com", config=PiiConfig(only_echoed=True))
    assert [f.detail for f in found] == ["email j***@example.com (echoed from the customer's message)"]
    assert flags(text, config=PiiConfig(emails=False)) == []


@pytest.mark.parametrize("text", [
    "I have a 2010 2011 2012 2013 2014 2015 2016 2017 2018 2019 2020 2021",  # years: one long run
    "Codes 2015 2016 2017 2018 apply.",  # 16 digits, Luhn-valid, but no card network starts so
])
def test_lists_of_numbers_are_neither_cards_nor_phones(text):
    assert flags(text) == []


def test_the_same_item_repeated_is_one_flag():
    found = flags("Mail jane@example.com, yes JANE@example.com, or call 555-123-4567 / (555) 123-4567.")
    assert [f.detail.split(" (")[0] for f in found] == ["email j***@example.com", "phone ***4567"]

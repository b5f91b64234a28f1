"""The served model's one input contract (pyfunc.inputs), and the length cap of its transform."""

import math

import numpy as np
import pandas as pd
import pytest

from pyfunc.inputs import REFUSAL, InputError, check_texts, problem
from pyfunc.model import texts_from_input
from pyfunc.text import LEGACY, SWITCHES, cap_length, clean_text, text_options
from ticketml.config import load_config
from ticketml.data.schema import transform_options


@pytest.mark.parametrize(
    "text, reason",
    [
        (None, "is null, not a string"),
        (math.nan, "is null, not a string"),
        (42, "is a number, not a string"),
        (True, "is a boolean, not a string"),
        (["a"], "is a list, not a string"),
        ("", "is empty"),
        (" \t\n", "is empty"),
        ("\u00a0\u00a0", "is empty"),  # non-breaking spaces
        ("\u200b\u200b", "is empty"),  # zero-width spaces: a 200 before
        ("\x00\x00", "is empty"),  # NUL only
        ("VPN \ud800 down", "contains a lone UTF-16 surrogate (not valid Unicode text)"),
    ],
)
def test_what_no_path_accepts(text, reason):
    assert problem(text) == (reason, 422)
    # the wording a caller recognises inside another error (a failed Spark task)
    assert (
        REFUSAL.search(f"PythonException: text[4] {reason}\n  at ...")
        .group(0)
        .startswith("text[4] ")
    )


def test_what_every_path_accepts_and_the_length_limit_where_a_path_sets_one():
    assert check_texts(["VPN\x00down", "а", np.str_("x")]) == ["VPN\x00down", "а", "x"]
    assert problem("x" * 30) == (None, 200)  # no limit of its own: the transform caps it
    assert problem("x" * 30, 20, "serve.max_text_chars") == (
        "is 30 characters; the limit is serve.max_text_chars=20",
        413,
    )
    assert REFUSAL.search("the text is fine, the limit is 30") is None
    with pytest.raises(InputError) as caught:
        check_texts(["fine", " "])
    assert str(caught.value) == "text[1] is empty" and caught.value.index == 1


def test_values_reach_the_contract_as_they_came():
    frame = pd.DataFrame({"text": ["a", None, 3]})
    assert texts_from_input(frame) == ["a", None, 3]
    assert texts_from_input({"text": None}) == [None]
    assert texts_from_input({"text": ["a", "b"]}) == ["a", "b"]
    assert texts_from_input([{"text": "a"}, "b"]) == ["a", "b"]
    with pytest.raises(InputError, match="'text' column"):
        texts_from_input(pd.DataFrame({"a": [1], "b": [2]}))


def test_the_transform_cuts_a_long_text_to_its_two_ends():
    text = "HEAD " + "x" * 50_000 + " TAIL"
    capped = cap_length(text, 20_000)
    assert len(capped) == 20_001 and capped.startswith("HEAD ") and capped.endswith(" TAIL")
    assert cap_length("short", 20_000) == "short" and cap_length(text, 0) == text
    defaults = transform_options(load_config())
    assert defaults["max_chars"] == 20_000 and LEGACY["max_chars"] == 0
    assert clean_text(text, defaults).endswith("TAIL") and len(clean_text(text, defaults)) <= 20_001
    # a transform stored before the cap existed serves uncapped, as it was evaluated
    assert text_options(dict.fromkeys(SWITCHES, True))["max_chars"] == 0
    with pytest.raises(ValueError, match="max_chars"):
        text_options(dict.fromkeys(SWITCHES, True) | {"max_chars": -1})
    with pytest.raises(ValueError, match=r"\['mask_phones', 'collapse_whitespace'\] missing"):
        text_options(dict.fromkeys(SWITCHES[:4], True))

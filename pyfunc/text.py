"""The one text transform: what `preprocess` does to training text is what every serving path
does to a request. Its options travel inside the exported model (`model_config.json`,
"text_transform"), so a model always serves with the transform it was trained with.

Torch-free and dependency-free: it runs in the served environment.
"""

from __future__ import annotations

import html
import re

TAG = re.compile(r"<[^>]{1,200}>")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
PHONE = re.compile(r"(?<!\w)\+?\d[\d\s().-]{7,}\d(?!\w)")
SPACE = re.compile(r"\s+")
SURROGATE = re.compile("[\ud800-\udfff]")
CYRILLIC = re.compile("[\u0400-\u04ff]")
LATIN = re.compile("[A-Za-z\u00c0-\u024f]")

# The switches, in order; their defaults live in one place, `preprocess.text` in
# ticketml/configs/preprocess.yaml, and every exported model carries the values it trained with.
SWITCHES = (
    "unescape_html",
    "strip_tags",
    "mask_emails",
    "mask_urls",
    "mask_phones",
    "collapse_whitespace",
)
OPTIONS = (*SWITCHES, "max_chars")
# What models exported before the transform travelled with them did to a request.
LEGACY = {k: False for k in SWITCHES} | {"max_chars": 0}


def text_options(options: dict | None) -> dict:
    """Validated options: every switch given (a bool), every key known, max_chars a whole number
    >= 0, where missing 0 (a model from before the cap serves as it was evaluated: uncapped)."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown text transform option(s) {unknown}; known: {list(OPTIONS)}")
    missing = [k for k in SWITCHES if k not in options]
    if missing:
        raise ValueError(f"text transform option(s) {missing} missing; expected: {list(OPTIONS)}")
    cap = options.pop("max_chars", 0)
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
        raise ValueError(f"max_chars={cap!r} must be a whole number >= 0 (0: no cap)")
    return {**{k: bool(options[k]) for k in SWITCHES}, "max_chars": cap}


def cap_length(text: str, max_chars: int) -> str:
    """The first and last halves of a text longer than `max_chars` (0: the whole text)."""
    if not max_chars or len(text) <= max_chars:
        return text
    head = max_chars // 2
    return text[:head] + "\n" + text[len(text) - (max_chars - head) :]


def clean_text(text: str, options: dict) -> str:
    """A text over options["max_chars"] cut to its two ends (`cap_length`), lone UTF-16
    surrogates → U+FFFD and NUL → space (always: the tokenizer needs valid text), then, as
    `options` say: HTML entities unescaped, tags removed, e-mails / URLs / phone numbers
    masked as [EMAIL] / [URL] / [PHONE], whitespace collapsed and stripped."""
    text = cap_length(str(text), int(options.get("max_chars", 0)))
    text = SURROGATE.sub("\ufffd", text).replace("\x00", " ")
    if options["unescape_html"]:
        text = html.unescape(text).replace("\\n", "\n")
        text = SURROGATE.sub("\ufffd", text).replace("\x00", " ")  # &#0; and &#xD800; too
    if options["strip_tags"]:
        text = TAG.sub(" ", text)
    if options["mask_emails"]:
        text = EMAIL.sub("[EMAIL]", text)
    if options["mask_urls"]:
        text = URL.sub("[URL]", text)
    if options["mask_phones"]:
        text = PHONE.sub("[PHONE]", text)
    if options["collapse_whitespace"]:
        text = SPACE.sub(" ", text).strip()
    return text


def script(text: str) -> str:
    """The writing system of a text: "cyrillic" where it has more Cyrillic letters than Latin
    ones, else "latin" (a text with neither too). The hybrid's blend may weigh its halves per
    script (an English vocabulary spells Russian letter by letter: ticketml.hybrid)."""
    return "cyrillic" if len(CYRILLIC.findall(text)) > len(LATIN.findall(text)) else "latin"


def scripts(texts) -> list[str]:
    """`script` of each text."""
    return [script(t) for t in texts]

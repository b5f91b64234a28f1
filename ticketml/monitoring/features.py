"""What the log keeps of a text when the text itself is not kept (`serve.log_text=false`): its
length, its language and how much of it the model's vocabulary knows. Computed the same way on
the training split, so live and reference figures compare."""

from __future__ import annotations

import hashlib
import re

TOKEN = re.compile(r"(?u)\b\w\w+\b")  # the TF-IDF baseline's tokens (pyfunc.tfidf.TOKEN)
WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
SAMPLE_CHARS = 5000  # a long ticket's language and vocabulary show in its first pages

STOPWORDS = {
    "en": "the and is to of in it for on with not this that be are you my we have was can".split(),
    "de": "der die das und ist nicht ich sie mit den ein eine zu auf für es wir von bitte ihr".split(),
    "fr": "le la les et est pas je vous de des une un pour que nous sur avec ne ce merci".split(),
    "es": "el la los las y es no de que en un una por para con se mi su del sobre estoy gracias".split(),
    "pt": "o os as e é não de que em um uma para com do da meu por obrigado está".split(),
    "it": "il lo gli e è non di che in un una per con del della mi sono grazie".split(),
    "nl": "de het een en is niet ik van dat op te met voor zijn wij u bedankt".split(),
}
WEIGHTS = {
    lang: {w: 1.0 / sum(w in other for other in STOPWORDS.values()) for w in words}
    for lang, words in STOPWORDS.items()
}
SCRIPTS = (  # (language, first, last code point): non-Latin scripts name the language alone
    ("ja", 0x3040, 0x30FF),
    ("ko", 0xAC00, 0xD7AF),
    ("zh", 0x4E00, 0x9FFF),
    ("ar", 0x0600, 0x06FF),
    ("el", 0x0370, 0x03FF),
    ("he", 0x0590, 0x05FF),
    ("th", 0x0E00, 0x0E7F),
    ("hi", 0x0900, 0x097F),
    ("ru", 0x0400, 0x04FF),
)
UKRAINIAN = set("іїєґ")


def text_hash(text: str) -> str:
    """The key of a text in the log and in feedback (whitespace-normalised, so a re-sent copy
    of a ticket matches)."""
    return hashlib.sha256(" ".join(text.split()).encode("utf-8", "surrogatepass")).hexdigest()


def detect_language(text: str) -> str:
    """An ISO 639-1 code from the script, or for Latin text from stopwords; `unknown` when
    neither says (a log dump, a stack trace)."""
    sample = text[:SAMPLE_CHARS]
    letters = [c for c in sample if c.isalpha()]
    if not letters:
        return "unknown"
    latin = sum(c < "\u0250" for c in letters)
    if latin < len(letters) / 2:
        counts: dict[str, int] = {}
        for c in letters:
            code = ord(c)
            for lang, low, high in SCRIPTS:
                if low <= code <= high:
                    counts[lang] = counts.get(lang, 0) + 1
                    break
        if not counts:
            return "unknown"
        lang = max(counts, key=counts.get)
        if lang == "ru" and UKRAINIAN & set(sample.lower()):
            return "uk"
        return lang
    words = WORD.findall(sample.lower())
    scores = {lang: sum(weights.get(w, 0.0) for w in words) for lang, weights in WEIGHTS.items()}
    best = max(scores, key=scores.get)
    return best if scores[best] >= 2.0 else "unknown"


def oov_share(text: str, vocabulary) -> float | None:
    """The share of the text's word tokens outside the model's TF-IDF vocabulary (None without
    one, or for a text without words)."""
    if vocabulary is None:
        return None
    tokens = TOKEN.findall(text[:SAMPLE_CHARS].lower())
    if not tokens:
        return None
    return round(sum(t not in vocabulary for t in tokens) / len(tokens), 4)


def text_features(text: str, vocabulary=None) -> dict:
    return {
        "text_sha256": text_hash(text),
        "text_chars": len(text),
        "language": detect_language(text),
        "oov_share": oov_share(text, vocabulary),
    }


def vocabulary_of(classifier) -> set | dict | None:
    """The served model's TF-IDF word vocabulary (a transformer-only model has none)."""
    tfidf = getattr(classifier, "tfidf", None)
    return tfidf.features.word_index if tfidf is not None else None

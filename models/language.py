"""Language identification with py3langid (its model ships inside the package), ISO 639-1 only.

py3langid's model also knows ISO 639-3-only languages (``pcm``, ``bcl``, ``wuu``...)
that short English tweets sometimes land on; the identifier is restricted to
the languages that have a two-letter ISO 639-1 code, so the output is always
ISO 639-1 or ``und``. ``MIN_CONFIDENCE`` was chosen on the *train* split of
the VADER tweets (a wrong code counted twice as bad as ``und``); the model card
reports the test split and the multilingual corpora.
"""

from __future__ import annotations

from functools import lru_cache

UNKNOWN = "und"
MIN_CHARS = 3
MIN_CONFIDENCE = 0.2


@lru_cache(maxsize=1)
def _identifier():  # loaded once per process
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages([code for code in identifier.nb_classes if len(code) == 2])
    return identifier


def detect_language(text: str | None, min_confidence: float = MIN_CONFIDENCE) -> str:
    """ISO 639-1 code, or ``und`` when the text is too short or the guess too weak."""
    if not text or len(text.strip()) < MIN_CHARS:
        return UNKNOWN
    code, confidence = _identifier().classify(text)
    return code if confidence >= min_confidence else UNKNOWN

"""Language identification with py3langid (its model ships inside the package)."""

from __future__ import annotations

from functools import lru_cache

UNKNOWN = "und"
MIN_CHARS = 3


@lru_cache(maxsize=1)
def _identifier():  # loaded once per process
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str | None, min_confidence: float = 0.5) -> str:
    """ISO 639-1 code, or ``und`` when the text is too short or the guess too weak."""
    if not text or len(text.strip()) < MIN_CHARS:
        return UNKNOWN
    code, confidence = _identifier().classify(text)
    return code if confidence >= min_confidence else UNKNOWN

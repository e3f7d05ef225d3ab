"""NLP enrichment: encoder, sentiment, emotion, touchpoints, language, PII."""

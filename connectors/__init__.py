"""Connectors: sources -> RawSignal -> Kafka (signals.raw)."""

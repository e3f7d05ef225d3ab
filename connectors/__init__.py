"""Connectors: sources -> RawSignal -> Kafka (signals.raw).

Imports the shared platform (touchpoint.core) and the contracts; never the worker's stages.
"""

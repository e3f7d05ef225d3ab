"""The shared platform: what connectors and the worker's stages both need.

Settings, Kafka client helpers, the metrics registry, dead-letter records,
pseudonymous identity, time parsing, checkpoints and the embedded broker.
Imports only the contracts (``touchpoint.schemas``), never connectors,
pipeline or models.
"""

"""Touchpoint: a streaming pipeline for customer-experience feedback.

This package is the import root and the composition root: the ``touchpoint``
command (:mod:`touchpoint.cli`), the embedded demo and ``touchpoint up`` wire
the layers below together. Each layer is a subpackage kept in its own
top-level folder of the repository (see pyproject.toml ``package-dir``):

* ``touchpoint.schemas``    contracts: Avro schemas and codec, the raw-signal rules, ClickHouse DDL
* ``touchpoint.models``     NLP models (imports nothing else of ours)
* ``touchpoint.core``       the shared platform: settings, Kafka helpers, metrics, dead letters,
                            identity, time (imports only contracts)
* ``touchpoint.connectors`` sources -> signals.raw (imports core and contracts)
* ``touchpoint.pipeline``   the worker's stages: enrich, sink, store, queries, API, report
                            (imports core, contracts and models; never connectors)

Only this package imports both connectors and pipeline. tests/unit/test_layers.py keeps it so.
"""

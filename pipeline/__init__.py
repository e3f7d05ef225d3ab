"""The worker's stages: the Faust app (enrich, sink), the ClickHouse store, metric queries, the API and the report.

Imports the shared platform (touchpoint.core), the contracts and the models; never touchpoint.connectors.
"""

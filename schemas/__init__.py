"""Contracts: Avro schemas and the codec that frames them, the raw-signal rules, the ClickHouse DDL.

Imports nothing else of ours.
"""

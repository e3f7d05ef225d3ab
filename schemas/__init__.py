"""Avro schemas, the codec that frames them, and the ClickHouse DDL."""

"""The Faust worker, the ClickHouse store, the CLI and the embedded stack."""

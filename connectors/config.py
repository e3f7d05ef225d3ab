"""The connectors config file that ``touchpoint connect CONFIG.yaml`` runs.

Shape (see deploy/connectors.example.yaml)::

    brand: acme                      # default brand for every connector
    connectors:
      - name: x-acme                 # unique; names the checkpoint file and metrics
        type: x_recent_search        # a Connector.name (connectors/social.py, reviews.py, rss.py)
        base_url: https://api.x.com  # optional; each type documents its default
        token_env: X_BEARER_TOKEN    # the env var holding the secret (never the secret itself)
        poll_interval_s: 60
        rate_limit_per_s: 1
        params: {query: "acme -is:retweet"}

Secrets live only in environment variables; the file names them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ConnectorConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    type: str
    base_url: str | None = None
    token_env: str | None = None
    brand: str | None = None
    poll_interval_s: float = Field(300.0, gt=0)
    rate_limit_per_s: float | None = Field(None, gt=0)
    max_retry_after_s: float = Field(120.0, ge=0)
    headers: dict[str, str] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _no_inline_secrets(self) -> "ConnectorConfig":
        if any(name.lower() == "authorization" for name in self.headers):
            raise ValueError(f"connector {self.name!r}: put the credential in an env var and name it with token_env")
        return self


class ConnectorsFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    brand: str | None = None
    connectors: list[ConnectorConfig]

    @model_validator(mode="after")
    def _unique_names(self) -> "ConnectorsFile":
        names = [c.name for c in self.connectors]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"connector names must be unique (each has its own checkpoint): {duplicates}")
        return self


def parse_config(data: dict[str, Any]) -> list[ConnectorConfig]:
    """Validated connector configs, the file's default brand filled in."""
    try:
        parsed = ConnectorsFile.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"connectors config is invalid:\n{exc}") from exc
    return [c if c.brand else c.model_copy(update={"brand": parsed.brand}) for c in parsed.connectors]


def load_config(path: str | Path) -> list[ConnectorConfig]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"connectors config {path} does not exist (see deploy/connectors.example.yaml)")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping with a `connectors:` list")
    return parse_config(data)


def connector_types() -> dict[str, type]:
    """Every registered connector type (imports the modules that define them)."""
    import touchpoint.connectors.delighted  # noqa: F401  (registers on import)
    import touchpoint.connectors.intercom  # noqa: F401
    import touchpoint.connectors.qualtrics  # noqa: F401
    import touchpoint.connectors.reviews  # noqa: F401
    import touchpoint.connectors.rss  # noqa: F401
    import touchpoint.connectors.social  # noqa: F401
    import touchpoint.connectors.surveymonkey  # noqa: F401
    from touchpoint.connectors.framework import REGISTRY

    return dict(REGISTRY)


def build_connector(config: ConnectorConfig, settings: Any) -> Any:
    types = connector_types()
    if config.type not in types:
        raise ValueError(f"connector {config.name!r}: unknown type {config.type!r}; known: {', '.join(sorted(types))}")
    return types[config.type](config, settings)

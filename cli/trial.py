"""Trial stacks (`demo`, `up`) run without production secrets: they make one, once, and say so."""

from __future__ import annotations

import os
import secrets

from rich.console import Console

from touchpoint.core.settings import Settings

SECRET_FILE = "customer-id-secret"


def with_trial_secret(settings: Settings, console: Console) -> Settings:
    """``settings`` with a customer-id secret: the configured one, else one kept in the data folder.

    Kept (mode 0600) so a second run gives every customer the same id, and
    announced once, when it is made; production processes never do this.
    """
    if settings.customer_id_secret:
        return settings
    path = settings.data_dir / SECRET_FILE
    if path.is_file():
        return settings.with_overrides(customer_id_secret=path.read_text(encoding="utf-8").strip())
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secret + "\n")
    console.print(
        f"generated a customer-id secret for this trial stack in {path} "
        "(production processes need TOUCHPOINT_CUSTOMER_ID_SECRET of their own)"
    )
    return settings.with_overrides(customer_id_secret=secret)

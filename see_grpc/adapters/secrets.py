"""The API key a server generates for itself when API_KEY is unset: it never runs open."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

KEY_FILE_NAME = "api_key"


def load_or_create_api_key(data_dir: Path) -> tuple[str, Path, bool]:
    """The stored key (creating it, mode 0600, on first start), its path, and whether it was just created."""
    path = data_dir / KEY_FILE_NAME
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text().strip()
        if not key:
            raise RuntimeError(f"the API key file {path} is empty; delete it to generate a new key") from None
        return key, path, False
    key = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key, path, True

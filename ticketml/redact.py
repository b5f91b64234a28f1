"""Credentials kept out of logs, params and error messages: database URLs' passwords, and the team
stack's own password wherever it appears (as is or URL-encoded)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote

# user:secret@ in a URL; the secret runs to the token's last "@" (a raw "@" or ":" inside it)
SECRET = re.compile(r"(://[^:/@\s]*:)(\S+)(@[^@\s]*)")


def mask(text: str) -> str:
    """`postgresql://user:secret@host` → `postgresql://user:***@host` (in any text), and the
    stack's own password wherever it appears, as is or URL-encoded."""
    text = SECRET.sub(r"\1***\3", str(text))
    password = os.environ.get("TICKETML_DB_PASSWORD") or env_file_value("TICKETML_DB_PASSWORD")
    for form in {password, quote(password, safe="")} if password else ():
        if len(form) >= 3:  # a one-letter "password" would mask every such letter
            text = text.replace(form, "***")
    return text


def env_file_value(name: str, path: Path = Path(".env")) -> str | None:
    if not path.is_file():
        return None
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == name:
            return value.strip().strip("'\"")
    return None

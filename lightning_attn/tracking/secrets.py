"""Secrets kept out of everything the toolkit prints, logs or records.

Two kinds are masked: the password of any ``scheme://user:password@host`` URL, and every secret value
this process knows of — the standard password variables (``PGPASSWORD``, ``MLFLOW_TRACKING_PASSWORD``,
``MLFLOW_TRACKING_TOKEN``, ``MLFLOW_AUTH_ADMIN_PASSWORD``) and the passwords of the URLs it was given
(:func:`register_url`). The second kind matters where a library prints a secret outside a URL, or a URL
in a form the pattern does not know.
"""

from __future__ import annotations

import contextlib
import os
import re
from urllib.parse import unquote, urlsplit

MASK = "***"
ENV_SECRETS = ("PGPASSWORD", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN", "MLFLOW_AUTH_ADMIN_PASSWORD")
_URL_WITH_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]+)@")
_MIN_LENGTH = 4  # shorter values would mask ordinary words
_known: set[str] = set()


def register(value: str | None) -> None:
    """Mask ``value`` wherever it appears from now on (and its URL-decoded form)."""
    for candidate in (value, unquote(value or "")):
        if candidate and len(candidate) >= _MIN_LENGTH:
            _known.add(candidate)


def register_url(url: str | None) -> None:
    """Mask the password of ``url`` everywhere, also where it is printed without the URL around it."""
    if url and "://" in url:
        with contextlib.suppress(ValueError):  # not a URL after all
            register(urlsplit(url).password)


def register_environment() -> None:
    for name in ENV_SECRETS:
        register(os.environ.get(name))


def mask_secrets(text: str) -> str:
    """``text`` with URL passwords and every registered secret replaced by ``***``."""
    text = _URL_WITH_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    for secret in sorted(_known, key=len, reverse=True):  # longest first: one may contain another
        if secret in text:
            text = text.replace(secret, MASK)
    return text


register_environment()


def gist(error: BaseException) -> str:
    """One line of what went wrong: the innermost cause's first line (drivers' errors come wrapped, e.g. in
    SQLAlchemy's ``.orig``), secrets masked."""
    seen = set()
    while id(error) not in seen and (error.__cause__ is not None or getattr(error, "orig", None) is not None):
        seen.add(id(error))
        error = error.__cause__ or error.orig
    text = str(error).strip()
    return mask_secrets(text.splitlines()[0] if text else type(error).__name__)

"""Checks that every connector's settings share: a base URL, a token, a request rate.

Each is an ``Annotated`` type for a pydantic field, so a connector's config declares
``base_url: BaseUrl = None`` instead of writing the check again. A failed check raises
``ValueError`` with a message that says what to write; the job loader prefixes the key.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, SecretStr, StrictFloat


def http_base_url(value: str | None) -> str | None:
    """A ``base_url`` setting checked and normalised (no trailing slash); ValueError if bad."""
    if value is None:
        return None
    import httpx  # here: a job file without a base_url loads no HTTP library (issue 12)

    try:
        url = httpx.URL(value.strip())
    except httpx.InvalidURL:
        raise ValueError(f"{value!r} is not a URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"must be an http:// or https:// URL with a host, got {value!r}")
    return str(url).rstrip("/")


def non_empty_secret(value: SecretStr) -> SecretStr:
    """A credential that is not blank (an unset or empty ``${VAR}`` would be sent as is)."""
    if not value.get_secret_value().strip():
        raise ValueError("is empty; is the environment variable it refers to set?")
    return value


def positive_rate(value: float | None) -> float | None:
    """A request rate (requests per second or per minute) above zero, or None for the default."""
    if value is not None and not value > 0:
        raise ValueError("must be greater than 0")
    return value


BaseUrl = Annotated[str | None, AfterValidator(http_base_url)]
"""An API root that overrides the documented host (an emulator, a proxy)."""
Token = Annotated[SecretStr, AfterValidator(non_empty_secret)]
"""A required credential, never blank."""
Rate = Annotated[StrictFloat | None, AfterValidator(positive_rate)]
"""An optional rate override, above zero (a number: ``true`` or ``"5"`` is refused)."""
PositiveRate = Annotated[StrictFloat, AfterValidator(positive_rate)]
"""A rate above zero (a number: ``true`` or ``"5"`` is refused)."""

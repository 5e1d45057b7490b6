"""Checks that every connector's settings share: a base URL, a token, a request rate.

Each is an ``Annotated`` type for a pydantic field, so a connector's config declares
``base_url: BaseUrl = None`` instead of writing the check again. A failed check raises
``ValueError`` with a message that says what to write; the job loader prefixes the key.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    SecretStr,
    StrictFloat,
    field_validator,
    model_validator,
)

_USERINFO = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*:)?//)?[^/?#]*@")
"""A URL's scheme and user information (``scheme://user:password@``), to mask."""


def masked_url(value: str) -> str:
    """``value`` with any user information (a user name or password) shown as ``***@``."""
    return _USERINFO.sub(lambda m: f"{m.group(1) or ''}***@", value.strip())


def nul_at(value: Any, where: str = "") -> str | None:
    """Where a NUL character hides in a job-file value (``""``: the value itself, else the
    sub-key or index, e.g. ``[2]`` or ``.rename``), or None. Text with a NUL cannot be a
    file path (the OS refuses it: "embedded null byte") nor sent in a header. A nested
    :class:`JobSection` is not entered: it checked its own keys, naming them."""
    if isinstance(value, JobSection):
        return None
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, str | PurePath):
        return where if "\x00" in str(value) else None
    if isinstance(value, BaseModel):
        value = dict(value)
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                return f"the key {shown_key(key)}" + (f" of {where.lstrip('.')}"
                                                      if where else "")
            found = nul_at(item, f"{where}.{key}")
            if found is not None:
                return found
    elif isinstance(value, list | tuple | set | frozenset):
        for i, item in enumerate(value):
            found = nul_at(item, f"{where}[{i}]")
            if found is not None:
                return found
    return None


def shown_key(key: str) -> str:
    """A job-file key as a message may show it: quoted, a NUL or any other control
    character escaped (``'ta\\x00gs'``), never the raw byte (it would cut or garble the
    line in a terminal or a log)."""
    return repr(key)


def _nul_problem(where: str) -> str:
    """The message for a NUL found at ``where`` (:func:`nul_at`'s answer)."""
    where = where.lstrip(".").strip()
    inside = f" in {where}" if where else ""
    return (f"contains a NUL character{inside}; remove it (a \\u0000 escape or a stray byte "
            "in the job file or in a ${VAR})")


class JobSection(BaseModel):
    """Base of every job-file model (a connector's ``[source]``/``[target]`` settings, the
    ``[mapping]`` and ``[run]`` tables): checks shared by every key, once.

    A NUL character (``"\\u0000"``) in any text value (a path, a URL, a name, a template,
    a token) is refused, naming the key: ``source.path: contains a NUL character``. The
    value is never echoed (it may be a secret)."""

    @model_validator(mode="before")
    @classmethod
    def _no_nul_key(cls, data: Any) -> Any:
        """A key of the section itself with a NUL (``"ke\\u0000ep" = true``) is refused as
        a NUL, by the same words as one in a value, before pydantic would call it an
        unknown key and show its raw byte."""
        if isinstance(data, dict):
            for key in data:
                if isinstance(key, str) and "\x00" in key:
                    raise ValueError(_nul_problem(f"the key {shown_key(key)}"))
        return data

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        where = nul_at(value)
        if where is not None:
            raise ValueError(_nul_problem(where))
        return value


def http_base_url(value: str | None) -> str | None:
    """A ``base_url`` setting checked and normalised (no trailing slash); ValueError if bad:
    not http(s), no host, or user information (``user:password@``: credentials belong in the
    token keys). The message masks user information as ``***@``."""
    if value is None:
        return None
    import httpx  # here: a job file without a base_url loads no HTTP library (issue 12)

    try:
        url = httpx.URL(value.strip())
    except httpx.InvalidURL:
        raise ValueError(f"{masked_url(value)!r} is not a URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("must be an http:// or https:// URL with a host, got "
                         f"{masked_url(value)!r}")
    if url.userinfo:
        # a password in the URL would be sent (Basic auth) and then blamed on the token
        raise ValueError(f"must not hold a user name or password (got {masked_url(value)!r}); "
                         "put credentials in the connector's token keys (README: The job "
                         "file) and give the URL without them")
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

"""The job file: TOML, `${VAR}` references expanded from the environment, validated once.

Errors name the offending key (``target.api_key: field required``) and say what to do; they
never echo a secret's value.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tomllib
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union
from urllib.parse import quote

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from connectors.errors import ConfigError
from connectors.plugin import ConnectorSettings
from connectors.settings import JobSection, shown_key
from mappings.fields import FieldRuleError, FieldRules, TagRules
from mappings.filters import FilterRules, parse_since, parse_size, path_glob, type_glob
from mappings.folders import (
    CollapsedPath,
    FolderOverflow,
    FolderRename,
    FolderRules,
    parse_root,
)
from mappings.locales import LocaleRules
from pipeline.registry import plugins, writable

if TYPE_CHECKING:
    ConnectorConfig = ConnectorSettings
else:
    # the real union is built from the registry by job_model(); see there
    ConnectorConfig = Any

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class FiltersConfig(JobSection):
    """``[mapping.filters]``: which source assets the job migrates (``mappings.filters``).

    Checked when the job file loads: a bad glob, size or date is exit 2 naming its key.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    content_types: tuple[str, ...] = ()
    exclude_content_types: tuple[str, ...] = ()
    min_size: Annotated[int | None, BeforeValidator(parse_size)] = None
    max_size: Annotated[int | None, BeforeValidator(parse_size)] = None
    updated_since: Annotated[datetime | None, BeforeValidator(parse_since)] = None
    only_referenced: StrictBool = False

    @field_validator("include", "exclude")
    @classmethod
    def _path_globs(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in patterns:
            path_glob(pattern)
        return patterns

    @field_validator("content_types", "exclude_content_types")
    @classmethod
    def _type_globs(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(type_glob(p) for p in patterns)

    @model_validator(mode="after")
    def _sizes_in_order(self) -> FiltersConfig:
        if (self.min_size is not None and self.max_size is not None
                and self.min_size > self.max_size):
            raise ValueError(f"min_size ({self.min_size:,} bytes) is over max_size "
                             f"({self.max_size:,} bytes): no asset could pass")
        return self

    def rules(self) -> FilterRules:
        return FilterRules(self.include, self.exclude, self.content_types,
                           self.exclude_content_types, self.min_size, self.max_size,
                           self.updated_since, self.only_referenced)


def _template_or_false(value: object) -> str | bool:
    """A ``[mapping.fields]`` value: a template (text) or ``false``; one message for
    anything else (``title = 5``), not one per member of the union."""
    if isinstance(value, str) or value is False:
        return value
    raise ValueError(f"got {_shown(value)}; give a template in quotes (e.g. "
                     "\"{title or filename_stem}\") or false to drop the field")


def _shown(value: object) -> str:
    """A job-file value as TOML spells it (``true``, ``"yes"``, ``5``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return str(value)


class TagsConfig(JobSection):
    """``[mapping.tags]``: keep, drop, rename and add tags (:class:`mappings.fields.TagRules`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    keep: StrictBool = True
    """false: the source's tags are not sent (fixed ``add`` tags still are)."""
    drop: list[str] = Field(default_factory=list)
    rename: dict[str, str] = Field(default_factory=dict)
    add: list[str] = Field(default_factory=list)


class MappingConfig(JobSection):
    model_config = ConfigDict(frozen=True, extra="forbid")
    folder_overflow: FolderOverflow = FolderOverflow.COLLAPSE
    locales: LocaleRules = LocaleRules()
    """``[mapping.locales]``: locale code map, default locale, missing-locale policy."""
    filters: FiltersConfig = FiltersConfig()
    folder_root: str = ""
    """Every folder goes under this target path (``"migrated/2026"``); ``""``: the root."""
    folder_rules: dict[str, str] = Field(default_factory=dict)
    """``[mapping.folder_rules]``: glob over source folder paths -> new path, in file order
    (see :class:`mappings.folders.FolderRename`)."""
    collapsed_path: CollapsedPath = CollapsedPath.NAME
    """Where the levels of a collapsed or merged folder go: ``name`` | ``tag`` |
    ``description``."""
    fields: dict[str, Annotated[str | bool, PlainValidator(_template_or_false)]] = Field(
        default_factory=dict)
    """``[mapping.fields]``: target field -> template, or false (:class:`FieldRules`)."""
    tags: TagsConfig = TagsConfig()

    @field_validator("folder_root")
    @classmethod
    def _root(cls, value: str) -> str:
        parse_root(value)
        return value

    @field_validator("folder_rules")
    @classmethod
    def _rules(cls, value: dict[str, str]) -> dict[str, str]:
        for pattern, replacement in value.items():
            try:
                FolderRename.parse(pattern, replacement)
            except ValueError as exc:
                raise ValueError(f"{pattern!r}: {exc}") from None
        return value

    def folders(self) -> FolderRules:
        """The folder rules as :func:`mappings.folders.plan_tree` takes them."""
        return FolderRules(
            root=parse_root(self.folder_root),
            renames=tuple(FolderRename.parse(p, r) for p, r in self.folder_rules.items()),
            collapsed_path=self.collapsed_path,
        )

    def field_rules(self) -> FieldRules:
        """The field and tag rules as :mod:`mappings.fields` applies them."""
        return FieldRules(
            fields=dict(self.fields),
            tags=TagRules(keep=self.tags.keep, drop=frozenset(self.tags.drop),
                          rename=dict(self.tags.rename), add=tuple(self.tags.add)),
        )


_IN_MEMORY = re.compile(r"^sqlite(\+\w+)?://(/(:memory:)?)?$")


class RunConfig(JobSection):
    model_config = ConfigDict(frozen=True, extra="forbid")
    state: str = "state/assetferry.db"
    """A file path (relative to the job file) or any SQLAlchemy URL."""
    concurrency: int = Field(default=8, ge=1, le=64, strict=True)

    @field_validator("state")
    @classmethod
    def _kept(cls, value: str) -> str:
        """An in-memory SQLite database keeps nothing: no resume, status or id map."""
        if _IN_MEMORY.match(value.strip()) or "mode=memory" in value:
            raise ValueError("an in-memory database keeps nothing (no resume, status or id "
                             "map); give a file path such as \"state/assetferry.db\" or a "
                             "server database URL")
        return value
    prune: StrictBool = False
    """sync only: delete from the target what was migrated and is gone from the source."""
    max_deletes: int = Field(default=100, ge=0, strict=True)
    """sync only: refuse to prune more than this many assets in one run."""
    on_conflict: Literal["skip", "source-wins", "fail"] = "skip"
    """An asset edited in the target since we wrote it (drift): ``skip`` leaves it and
    reports a conflict, ``source-wins`` writes the source's version over it, ``fail`` stops
    the run before anything is written."""
    full_listing_every: int = Field(default=7, ge=1, le=10_000, strict=True)
    """sync only: list the whole source at least every this many runs (others list only what
    changed since the last run, where the source can filter by update time); 1 = always."""
    map_file: str = ""
    """The live id/URL map (JSON Lines, relative to the job file); empty: beside a SQLite
    state file (``state/assetferry.map.jsonl``), none for a server state DB."""


class JobConfig(JobSection):
    model_config = ConfigDict(frozen=True, extra="forbid")
    source: ConnectorConfig
    target: ConnectorConfig
    mapping: MappingConfig = MappingConfig()
    run: RunConfig = RunConfig()

    def state_url(self) -> str:
        return self.run.state

    def route(self, source_scope: str, target_scope: str) -> str:
        return f"{self.source.connector}:{source_scope}->{self.target.connector}:{target_scope}"


_URL_SAFE = re.compile(r"(?:[A-Za-z0-9._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})*")


def url_part(value: str) -> str:
    """``value`` fit to stand in a URL's user name or password (RFC 3986 §3.2.1): as it is
    when it holds only characters allowed there (it may already be percent-encoded, as the
    README says), else percent-encoded whole, so a ``@ : / ? # %`` in a password from
    ``${VAR}`` can never move the host (the password's tail sent to DNS, shown as a host)."""
    return value if _URL_SAFE.fullmatch(value) else quote(value, safe="")


class MissingVariableError(ConfigError):
    """A ``${VAR}`` of the job file names an unset (or empty) environment variable: ``name``,
    ``key``, the job-file key that references it, and ``empty``: set, but to ``""``."""

    def __init__(self, message: str, *, name: str, key: str, empty: bool = False) -> None:
        super().__init__(message)
        self.name = name
        self.key = key
        self.empty = empty

    @property
    def state(self) -> str:
        """``"is set but empty"`` or ``"is not set"``, for a message."""
        return "is set but empty" if self.empty else "is not set"


class JobFileError(ConfigError):
    """The job file at ``path`` is missing, a folder, or unreadable."""

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message)
        self.path = path


def expand_env(value: Any, env: Mapping[str, str], where: str = "", *,
               required: bool = True, encode: Callable[[str], str] | None = None) -> Any:
    """Replace ``${VAR}`` in every string; a missing variable is a ConfigError naming the key.

    With ``required=False`` (commands that only read the state DB), a missing variable is
    left as the literal ``${VAR}``: nothing that needs it will be called. ``encode`` is
    applied to each variable's value (``url_part`` for the state URL).
    """
    if isinstance(value, dict):
        return {k: expand_env(v, env, f"{where}.{k}" if where else k, required=required)
                for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, env, f"{where}[{i}]", required=required)
                for i, v in enumerate(value)]
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env or env[name] == "":
                if not required:
                    return match.group(0)
                # never suggest writing the value into the file: secrets live in the env
                empty = name in env
                raise MissingVariableError(
                    f"{where}: environment variable {name} "
                    f"{'is set but empty' if empty else 'is not set'}. Export it with its "
                    f"value (export {name}=...) in the shell that runs assetferry.",
                    name=name, key=where, empty=empty)
            return env[name] if encode is None else encode(env[name])

        return _VAR.sub(sub, value)
    return value


@cache
def job_model() -> type[JobConfig]:
    """JobConfig whose ``source`` / ``target`` are the union of every registered config model,
    told apart by their ``connector`` key (built once, after the registry is read)."""
    configs = tuple(p.config for p in plugins().values())
    union: Any = Annotated[Union[configs], Field(discriminator="connector")]  # noqa: UP007
    model: type[JobConfig] = create_model("JobConfig", __base__=JobConfig,
                                          source=(union, ...), target=(union, ...))
    return model


_TYPE_ERRORS: Mapping[str, str] = {
    "bool_type": "must be true or false (without quotes)",
    "bool_parsing": "must be true or false (without quotes)",
    "int_type": "must be a whole number (without quotes)",
    "int_parsing": "must be a whole number (without quotes)",
    "int_from_float": "must be a whole number (without quotes)",
    "float_type": "must be a number (without quotes)",
    "float_parsing": "must be a number (without quotes)",
    "string_type": "must be text in quotes",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "list_type": 'must be a list, e.g. ["a", "b"]',
    "tuple_type": 'must be a list, e.g. ["a", "b"]',
}
"""What a key of the wrong TOML type must be, by pydantic error type."""

_UNION_MEMBER = re.compile(
    r"^(str|int|float|bool|none|[a-z-]+\[.*\]|[A-Z]\w*(Config|Rules))$")
"""A segment pydantic adds to an error's location to name the member of a union that
failed (``str``, ``dict[str,str]``, ``literal['site']``, ``PublishConfig``); not a key."""


def _kind(value: object) -> str:
    """What TOML type ``value`` is, for a message that must not echo it (a secret's key)."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    return "a table" if isinstance(value, dict) else "a list" \
        if isinstance(value, list) else type(value).__name__


def _format_errors(exc: ValidationError) -> str:
    """One line per key: the key (no union tags), the value given where it is no secret,
    and what is allowed (``run.prune: must be true or false (without quotes), got "yes"``)."""
    names = tuple(plugins())
    by_key: dict[str, list[str]] = {}
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        # drop pydantic's union tag ("target.contentstack.api_key" -> "target.api_key")
        if len(loc) >= 2 and loc[0] in ("source", "target") and loc[1] in names:
            loc.pop(1)
        # a key is shown escaped: a raw control byte (NUL...) would cut or garble the line
        loc = [part if part.isprintable() else shown_key(part) for part in loc
               if not _UNION_MEMBER.match(part)]
        key = ".".join(loc) or "(file)"
        msg = err["msg"]
        kind = err["type"]
        if kind == "extra_forbidden":
            msg = "unknown key (check its spelling against the README's job file section)"
        elif kind == "union_tag_invalid":
            msg = f"unknown connector; use one of: {', '.join(names)}"
        elif kind == "union_tag_not_found":
            msg = "missing 'connector' key"
        elif kind == "value_error":
            msg = msg.removeprefix("Value error, ")
        elif kind in _TYPE_ERRORS:
            # a string where text is due may be a secret's key: say its type, not its value
            given = _kind(err["input"]) if kind == "string_type" else _shown(err["input"])
            msg = f"{_TYPE_ERRORS[kind]}, got {given}"
        elif kind in ("literal_error", "enum"):
            msg = f"{msg.replace('Input should be', 'must be')}, got {_shown(err['input'])}"
        elif msg.startswith("Input should "):  # ranges and lengths: "greater than or equal..."
            # a string may be a secret (a token too short): say its type, not its value
            given = _kind(err["input"]) if isinstance(err["input"], str) else _shown(
                err["input"])
            msg = f"{msg.replace('Input should', 'must', 1)}, got {given}"
        if msg not in by_key.setdefault(key, []):
            by_key[key].append(msg)
    lines = [f"  {key}: {'; or '.join(msgs)}" for key, msgs in by_key.items()]
    return "invalid job file:\n" + "\n".join(lines)


def load_job(path: Path, env: Mapping[str, str] | None = None, *,
             secrets: bool = True, ledger: bool = True) -> JobConfig:
    """Read, expand and validate a job file. Relative paths are taken from the file's folder.

    ``secrets=False``: environment variables may be missing (``status``, ``export-map`` read
    only the state DB); the job must not be used to open a connection then. ``ledger=False``
    as well: the ``[run] state`` URL's may be missing too (``migrate --temporal``'s client,
    which never opens the ledger: its workers do); the state DB must not be opened then.
    Raises ConfigError naming the file or the key.
    """
    env = os.environ if env is None else env
    try:
        raw = tomllib.loads(job_text(path, read_job_bytes(path)))
    except FileNotFoundError:
        raise JobFileError(f"job file {path} not found", path=path) from None
    except IsADirectoryError:
        raise JobFileError(f"job file {path} is a folder; give the path of a .toml file",
                           path=path) from None
    except OSError as exc:
        raise JobFileError(f"job file {path} cannot be read: {exc.strerror or exc}",
                           path=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"job file {path} is not valid TOML: {exc}") from None
    _refuse_read_only_target(raw)  # before ${VAR}s: a missing token is not the problem
    run = raw.get("run")
    state = run.get("state") if isinstance(run, dict) else None
    raw = expand_env(raw, env, required=secrets)
    if isinstance(state, str):
        # status/export-map read the state DB too: a server's password in its URL is needed
        raw["run"]["state"] = expand_env(state, env, "run.state", required=ledger or secrets,
                                         encode=url_part if "://" in state else None)
    base = path.resolve().parent
    known = plugins()
    for side in ("source", "target"):
        section = raw.get(side)
        plugin = known.get(section.get("connector", "")) if isinstance(section, dict) else None
        if isinstance(section, dict) and plugin is not None:
            for key in plugin.path_keys:
                if key in section:
                    section[key] = str(base / str(section[key]))
    run = raw.get("run")
    if (isinstance(run, dict) and isinstance(run.get("state"), str) and "://" not in run["state"]
            and run["state"].strip()):  # an empty one stays empty: the state store names it
        _refuse_folder_name("run.state", run["state"], "assetferry.db")
        run["state"] = str(base / run["state"])
    elif (isinstance(run, dict) and isinstance(run.get("state"), str)
          and run["state"].startswith("sqlite") and "://" in run["state"]):
        # a SQLite URL names a file too: sqlite:///x/ would be the file x (its query, such
        # as ?mode=ro, is not part of the path)
        url = run["state"].split("?", 1)[0]
        if url.split("://", 1)[1].lstrip("/") not in ("", ":memory:"):
            _refuse_folder_name("run.state", url, "assetferry.db")
    elif isinstance(run, dict) and "state" not in run:
        run["state"] = str(base / RunConfig().state)
    elif run is None:
        raw["run"] = {"state": str(base / RunConfig().state)}
    if isinstance(run, dict) and isinstance(run.get("map_file"), str):
        if not run["map_file"].strip():
            raise ConfigError(
                "run.map_file: empty; leave the key out for the default (beside a SQLite "
                "state file, none for a server state database) or give a file path such as "
                "\"maps/ids.jsonl\"")
        _refuse_folder_name("run.map_file", run["map_file"], "ids.jsonl")
        if "\x00" not in run["map_file"]:  # else validation names it (no path has a NUL)
            run["map_file"] = str(base / Path(run["map_file"]).expanduser())
    # anything else under "run" (run = "x") is left for validation to name
    try:
        job = job_model().model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc)) from None
    _refuse_read_only_target({"target": {"connector": job.target.connector}})
    if getattr(job.source, "publish", None) is not None:
        raise ConfigError("source.publish: only a target publishes; move the key to [target] "
                          "(a Contentstack source's publish details are carried across to a "
                          "Contentstack target by default)")
    check_field_templates(job)
    check_local_paths(job)
    check_run_paths(job, path)
    return job


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
JOB_FILE_MAX = 1024 * 1024
"""Bytes a job file may have (1 MiB): a job file is a small TOML file; ``/dev/zero`` or a
mistaken video would otherwise be read into memory without end."""


def read_job_bytes(path: Path) -> bytes:
    """The job file's bytes, at most :data:`JOB_FILE_MAX`.

    Only a regular file (or a symlink to one) is read: a device (``/dev/zero``), FIFO or
    socket is refused before it is read (a FIFO would block, a device never end), as is a
    folder. Raises JobFileError naming the file and what to do; OSError (not found,
    permission) for the caller to word."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO: no wait
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(st.st_mode):
            kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode)
                    else "a socket" if stat.S_ISSOCK(st.st_mode) else "a device file")
            raise JobFileError(f"job file {path} is {kind}, not a regular file; give the path "
                               "of a .toml file", path=path)
        data = fh.read(JOB_FILE_MAX + 1)
    if len(data) > JOB_FILE_MAX:
        raise JobFileError(
            f"job file {path} is too large (over {JOB_FILE_MAX // (1024 * 1024)} MiB); a job "
            "file is a small TOML file: check that -c names the job file", path=path)
    return data


def _utf16_like(data: bytes) -> bool:
    """Whether ``data`` (no BOM) has the NUL pattern of UTF-16 text: mostly-ASCII UTF-16 has a
    NUL as every other byte (odd bytes in little-endian, even in big-endian) and the other
    bytes not NUL. A stray NUL in UTF-8 text is not that pattern."""
    sample = data[:64]
    if len(sample) < 4:
        return len(sample) == 2 and sample.count(0) == 1
    for nuls, chars in ((sample[1::2], sample[0::2]), (sample[0::2], sample[1::2])):
        if nuls.count(0) * 4 >= len(nuls) * 3 and chars.count(0) * 4 < len(chars):
            return True
    return False


def job_text(path: Path, data: bytes) -> str:
    """The job file's bytes as text. TOML is UTF-8 (toml.io, "Spec": "A TOML file must be a
    valid UTF-8 encoded Unicode document"); a UTF-8 byte order mark (Windows Notepad writes
    one) is dropped. ConfigError, one line saying how to save the file, for UTF-16 (a BOM or
    the NUL pattern of UTF-16 text), for a stray NUL byte (naming its line and column) and for
    bytes that are not UTF-8 (Latin-1, Windows-1252), naming the line."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if data.startswith(_UTF16_BOMS) or _utf16_like(data):
        raise ConfigError(f"job file {path} is UTF-16 text; TOML must be UTF-8: save it as "
                          "UTF-8 (in Notepad: Save as > Encoding > UTF-8)")
    nul = data.find(b"\x00")
    if nul >= 0:
        line_start = data.rfind(b"\n", 0, nul) + 1
        line = data[:nul].count(b"\n") + 1
        col = len(data[line_start:nul].decode("utf-8", "replace")) + 1
        raise ConfigError(f"job file {path} contains a NUL byte at line {line}, column {col}; "
                          "a job file is text: remove it (no TOML value may hold a NUL)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"job file {path} is not UTF-8 text: byte 0x{data[exc.start]:02x} on line {line} "
            "(Latin-1 or Windows-1252?); TOML must be UTF-8: save it as UTF-8 (e.g. iconv -f "
            "latin1 -t utf-8)") from None


def check_field_templates(job: JobConfig) -> None:
    """ConfigError naming the key for a ``[mapping.fields]`` template that cannot be read
    (unknown placeholder, unclosed brace...) before anything connects; whether the target
    has the field is checked against its declared fields when the plan starts."""
    try:
        job.mapping.field_rules().templates()
    except FieldRuleError as exc:
        raise ConfigError(f"invalid job file:\n  {exc}") from None


def _refuse_read_only_target(raw: Mapping[str, Any]) -> None:
    """ConfigError when the job file's target is a connector that can only be read."""
    target = raw.get("target")
    name = target.get("connector") if isinstance(target, dict) else None
    if not isinstance(name, str) or name not in plugins() or name in writable():
        return
    why = plugins()[name].read_only_reason or "it can only be read"
    raise ConfigError(f"target.connector: {name} cannot be written to: {why}. "
                      f"Targets: {', '.join(writable())}.")


def check_local_paths(job: JobConfig) -> None:
    """Refuse a local target folder inside the local source folder, or the source inside the
    target.

    The folders are the connectors' ``path_keys`` (the local folder's ``path``), compared
    resolved (symlinks followed, ``..`` removed). A target inside the source would be listed
    as part of the source on the next sync (its files and manifest copied into itself, one
    level deeper each time); a source inside the target would be pruned or overwritten as
    target content. Raises ConfigError naming the keys and saying what to do.
    """
    sources, targets = _folders(job, "source"), _folders(job, "target")
    for skey, source in sources:
        for tkey, target in targets:
            if source == target:
                where = "is the same folder as"
            elif target.is_relative_to(source):
                where = "is inside"
            elif source.is_relative_to(target):
                where = "contains"
            else:
                continue
            raise ConfigError(
                f"{tkey} ({target}) {where} {skey} ({source}): every sync would copy the "
                f"target into itself. Point {tkey} at a folder outside {skey} (and {skey} "
                f"outside {tkey}), e.g. a sibling folder."
            )


def _refuse_folder_name(key: str, text: str, example: str) -> None:
    """ConfigError when the path ``text`` of ``key`` names a folder by its spelling
    (``state = "nodir/"``): refused, never a file ``nodir`` made in its place."""
    from state.paths import names_a_folder

    why = names_a_folder(text)
    if why is not None:
        suggestion = text.rstrip("/" + os.sep) + "/" + example
        raise ConfigError(f"{key}: {text!r} {why}; name a file in it, e.g. "
                          f"{key.split('.')[-1]} = \"{suggestion}\"")


def check_run_paths(job: JobConfig, path: Path) -> None:
    """Refuse ``[run]`` paths that would destroy each other or the job file: the SQLite state
    database on the job file, ``map_file`` on the job file or on the state database (or one
    of its sidecars), a folder where a file goes. Checked when the job is loaded, before
    anything is written; ConfigError naming the key and what to do."""
    job_file = path.resolve()
    state = _sqlite_file(job.run.state)

    def is_state(p: Path) -> bool:  # the database or a sidecar (-wal, -shm, -journal)
        return state is not None and (p == state or (p.parent == state.parent and p.name
                                                     .startswith(state.name + "-")))

    # (a folder as the state database: the state store names it, before anything is written)
    if is_state(job_file):
        raise ConfigError(f"run.state: {state} is the job file (or one of the database's own "
                          "files); give another file path, such as \"state/assetferry.db\"")
    if not job.run.map_file:
        return
    live_map = Path(job.run.map_file).expanduser().resolve()
    if live_map.is_dir():
        raise ConfigError(f"run.map_file: {live_map} is a folder; give a file path in it, "
                          "such as \"maps/ids.jsonl\"")
    if live_map == job_file:
        raise ConfigError(f"run.map_file: {live_map} is the job file; writing the map there "
                          "would destroy it. Give another file path, such as "
                          "\"maps/ids.jsonl\"")
    if is_state(live_map):
        raise ConfigError(f"run.map_file: {live_map} is the state database (run.state) or "
                          "one of its own files; writing the map there would destroy the "
                          "ledger. Give another file path, such as \"maps/ids.jsonl\"")


def _sqlite_file(state: str) -> Path | None:
    """The SQLite file of ``[run] state`` (resolved), or None (a server database, or a URL
    the state store will name); SQLAlchemy is imported only for a ``sqlite://`` URL."""
    if not state.strip():
        return None
    if "://" not in state:
        return Path(state).expanduser().resolve()
    if not state.startswith("sqlite"):
        return None
    from state.paths import sqlite_files

    files = sqlite_files(state)
    return files[0] if files else None


def local_folders(job: JobConfig) -> list[tuple[str, Path]]:
    """``(key, resolved folder)`` of every local folder setting of the job, both sides."""
    return [*_folders(job, "source"), *_folders(job, "target")]


def _folders(job: JobConfig, side: str) -> list[tuple[str, Path]]:
    """``(key, resolved folder)`` for each local folder setting of one side."""
    config = getattr(job, side)
    plugin = plugins().get(config.connector)
    keys = plugin.path_keys if plugin is not None else ()
    return [(f"{side}.{key}", Path(str(getattr(config, key))).resolve()) for key in keys
            if getattr(config, key, None) is not None]

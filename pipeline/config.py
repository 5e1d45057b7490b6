"""The job file: TOML, `${VAR}` references expanded from the environment, validated once.

Errors name the offending key (``target.api_key: field required``) and say what to do; they
never echo a secret's value.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.contentstack.config import ContentstackConfig
from connectors.errors import ConfigError
from connectors.localfs import LocalConfig
from connectors.storyblok.config import StoryblokConfig
from mappings.folders import FolderOverflow

ConnectorConfig = Annotated[
    LocalConfig | ContentstackConfig | StoryblokConfig, Field(discriminator="connector")
]
SOURCES = ("local", "contentstack", "storyblok")
TARGETS = ("local", "contentstack", "storyblok")

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class MappingConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    folder_overflow: FolderOverflow = FolderOverflow.COLLAPSE


class RunConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    state: str = "state/assetferry.db"
    """A file path (relative to the job file) or any SQLAlchemy URL."""
    concurrency: int = Field(default=8, ge=1, le=64)
    prune: bool = False
    """sync only: delete from the target what was migrated and is gone from the source."""
    max_deletes: int = Field(default=100, ge=0)
    """sync only: refuse to prune more than this many assets in one run."""


class JobConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    source: ConnectorConfig
    target: ConnectorConfig
    mapping: MappingConfig = MappingConfig()
    run: RunConfig = RunConfig()

    def state_url(self) -> str:
        return self.run.state

    def route(self, source_scope: str, target_scope: str) -> str:
        return f"{self.source.connector}:{source_scope}->{self.target.connector}:{target_scope}"


def expand_env(value: Any, env: Mapping[str, str], where: str = "") -> Any:
    """Replace ``${VAR}`` in every string; a missing variable is a ConfigError naming the key."""
    if isinstance(value, dict):
        return {k: expand_env(v, env, f"{where}.{k}" if where else k) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env or env[name] == "":
                raise ConfigError(
                    f"{where}: environment variable {name} is not set. "
                    f"Export it (export {name}=...) before running, "
                    "or put the value in the job file."
                )
            return env[name]

        return _VAR.sub(sub, value)
    return value


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        # drop pydantic's union tag ("target.contentstack.api_key" -> "target.api_key")
        if len(loc) >= 2 and loc[0] in ("source", "target") and loc[1] in SOURCES + TARGETS:
            loc.pop(1)
        key = ".".join(loc) or "(file)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling against the README's job file section)"
        elif err["type"] == "union_tag_invalid":
            msg = f"unknown connector; use one of: {', '.join(SOURCES)}"
        elif err["type"] == "union_tag_not_found":
            msg = "missing 'connector' key"
        lines.append(f"  {key}: {msg}")
    return "invalid job file:\n" + "\n".join(lines)


def load_job(path: Path, env: Mapping[str, str] | None = None) -> JobConfig:
    """Read, expand and validate a job file. Relative paths are taken from the file's folder."""
    env = os.environ if env is None else env
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"job file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"job file {path} is not valid TOML: {exc}") from None
    raw = expand_env(raw, env)
    base = path.resolve().parent
    for side in ("source", "target"):
        section = raw.get(side)
        if isinstance(section, dict) and section.get("connector") == "local" and "path" in section:
            section["path"] = str(base / str(section["path"]))
    run = raw.get("run")
    if isinstance(run, dict) and isinstance(run.get("state"), str) and "://" not in run["state"]:
        run["state"] = str(base / run["state"])
    elif "run" not in raw or "state" not in raw.get("run", {}):
        raw.setdefault("run", {})["state"] = str(base / RunConfig().state)
    try:
        job = JobConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc)) from None
    if job.target.connector not in TARGETS:
        raise ConfigError(f"target.connector: {job.target.connector} cannot be written to")
    return job

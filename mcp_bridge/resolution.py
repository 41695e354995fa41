"""Decide which project answers a call: the 4-tier resolution chain.

1. an explicit `project_id` (UUID or name) — unknown is an error, never a
   silent fallback;
2. `.codebase-mcp/config.json` found from the session's working directory
   (up to 20 parent directories; parsed files cached by mtime); a project it
   names that the registry lacks is created;
3. the workflow-mcp server's active project, when WORKFLOW_MCP_URL is set
   (short timeout, answers cached, any failure falls through);
4. the `default` project.

Shared by the MCP tools, the REST API and the commands.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from config.access import READ, Grant, projects_named
from registry.exceptions import ProjectNotFound, RegistryError
from registry.models import Project
from registry.selectors import project_find, project_get
from registry.services import project_create, project_default_ensure

logger = logging.getLogger("codebase_mcp.resolution")

CONFIG_DIR = ".codebase-mcp"
CONFIG_FILE = "config.json"
MAX_PARENTS = 20


class ProjectConfigInvalid(RegistryError):
    code = "invalid_project_config"


@dataclass(frozen=True)
class SessionConfig:
    """A parsed `.codebase-mcp/config.json`."""

    path: str
    project_name: str
    project_id: str | None
    description: str
    auto_switch: bool
    strict_mode: bool
    version: str
    # Follow the project's repositories from inside runmcp (manage.py watch).
    watch: bool = False


@dataclass(frozen=True)
class ResolvedProject:
    """The project that answers, and how it was chosen."""

    project: Project
    tier: str  # "explicit" | "session_config" | "workflow_mcp" | "default"
    config_path: str | None = None

    def as_dict(self) -> dict:
        return {
            "id": str(self.project.id),
            "name": self.project.name,
            "database_name": self.project.database_name,
            "resolved_by": self.tier,
            "config_path": self.config_path,
        }


def session_config_find(*, directory: str | os.PathLike) -> Path | None:
    """Return the nearest config file at or above `directory` (20 parents at most)."""
    # Plain string paths and one stat per level: this runs on every tool call.
    current = os.path.abspath(directory)
    for _ in range(MAX_PARENTS + 1):
        candidate = os.path.join(current, CONFIG_DIR, CONFIG_FILE)
        try:
            if stat.S_ISREG(os.stat(candidate).st_mode):
                return Path(candidate)
        except OSError:
            pass
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent
    return None


_config_cache: dict[
    str, tuple[tuple[int, int], SessionConfig | ProjectConfigInvalid]
] = {}
_config_lock = threading.Lock()


def session_config_load(*, path: str | os.PathLike) -> SessionConfig:
    """Parse a config file, cached until its mtime or size changes.

    Raise ProjectConfigInvalid (naming the file) for bad JSON or wrong types.
    """
    key = str(path)
    try:
        stat = os.stat(key)
    except OSError:
        with _config_lock:
            _config_cache.pop(key, None)
        raise ProjectConfigInvalid(f"{key} has vanished.") from None
    stamp = (stat.st_mtime_ns, stat.st_size)
    with _config_lock:
        cached = _config_cache.get(key)
    if cached is None or cached[0] != stamp:
        try:
            parsed: SessionConfig | ProjectConfigInvalid = _parse_config(key)
        except ProjectConfigInvalid as exc:
            parsed = exc
        cached = (stamp, parsed)
        with _config_lock:
            _config_cache[key] = cached
    if isinstance(cached[1], ProjectConfigInvalid):
        raise cached[1]
    return cached[1]


_STRICT_TEXT = re.compile(r'"strict_mode"\s*:\s*true')


def _parse_config(path: str) -> SessionConfig:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _invalid(path, f"cannot be read ({exc})", strict=False) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # The file is unparsable, so read strict_mode from its raw text.
        raise _invalid(
            path, f"is not valid JSON ({exc})", strict=bool(_STRICT_TEXT.search(text))
        ) from None
    strict = isinstance(data, dict) and data.get("strict_mode") is True
    if not isinstance(data, dict):
        raise _invalid(path, "must hold a JSON object", strict=strict)
    project = data.get("project")
    if not isinstance(project, dict):
        raise _invalid(path, 'needs a "project" object with a "name"', strict=strict)
    name = project.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _invalid(path, '"project.name" must be a non-empty string', strict=strict)
    project_id = project.get("id")
    if project_id is not None:
        try:
            uuid.UUID(str(project_id))
        except ValueError:
            raise _invalid(path, '"project.id" must be a UUID', strict=strict) from None
    for flag in ("auto_switch", "strict_mode", "watch"):
        if flag in data and not isinstance(data[flag], bool):
            raise _invalid(path, f'"{flag}" must be true or false', strict=strict)
    for text_field in ("version", "description"):
        if text_field in data and not isinstance(data[text_field], str):
            raise _invalid(path, f'"{text_field}" must be a string', strict=strict)
    return SessionConfig(
        path=path,
        project_name=name.strip(),
        project_id=str(project_id) if project_id is not None else None,
        description=data.get("description", ""),
        auto_switch=data.get("auto_switch", True),
        strict_mode=strict,
        version=data.get("version", "1.0"),
        watch=data.get("watch", False),
    )


def session_watch_wanted(*, directory: str | os.PathLike) -> bool:
    """Return whether the session's config file asks runmcp to watch (`"watch": true`)."""
    path = session_config_find(directory=directory)
    if path is None:
        return False
    try:
        return session_config_load(path=path).watch
    except ProjectConfigInvalid:
        # project_resolve reports a broken file on the first tool call.
        return False


def _invalid(path: str, problem: str, *, strict: bool) -> ProjectConfigInvalid:
    error = ProjectConfigInvalid(
        f"{path} {problem}. Expected e.g. "
        '{"version": "1.0", "project": {"name": "my-project"}}.'
    )
    error.strict = strict
    return error


def _project_from_config(config: SessionConfig) -> Project:
    if config.project_id:
        project = project_find(reference=config.project_id)
        if project is not None:
            return project
    project = project_find(reference=config.project_name)
    if project is not None:
        return project
    logger.info("creating project %r named in %s", config.project_name, config.path)
    try:
        return project_create(name=config.project_name, description=config.description)
    except RegistryError:
        # Another session created it a moment ago.
        return project_get(reference=config.project_name)


_workflow_cache: dict[str, tuple[float, str | None]] = {}
_workflow_lock = threading.Lock()


def workflow_active_project() -> str | None:
    """Return the id or name of workflow-mcp's active project, or None.

    Ask WORKFLOW_MCP_URL (GET, JSON) with a short timeout; cache any answer,
    including "none", for WORKFLOW_MCP_CACHE_SECONDS so a slow or absent server
    costs at most one timeout per period.
    """
    url = settings.WORKFLOW_MCP_URL
    if not url:
        return None
    now = time.monotonic()
    with _workflow_lock:
        cached = _workflow_cache.get(url)
        if cached and now - cached[0] < settings.WORKFLOW_MCP_CACHE_SECONDS:
            return cached[1]
    answer = None
    try:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        with urllib.request.urlopen(
            request, timeout=settings.WORKFLOW_MCP_TIMEOUT
        ) as reply:
            answer = _active_project_reference(json.loads(reply.read(65536)))
    except (OSError, ValueError, urllib.error.URLError) as exc:
        logger.warning("workflow-mcp at %s did not answer usefully: %s", url, exc)
    with _workflow_lock:
        _workflow_cache[url] = (time.monotonic(), answer)
    return answer


def _active_project_reference(data: object) -> str | None:
    """Pick the project id or name out of workflow-mcp's answer."""
    if not isinstance(data, dict):
        return None
    nested = data.get("project") or data.get("active_project")
    if isinstance(nested, dict):
        data = nested
    for key in ("project_id", "id", "name", "project_name"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def workflow_cache_clear() -> None:
    """Forget cached workflow-mcp answers (tests, settings changes)."""
    with _workflow_lock:
        _workflow_cache.clear()


def project_resolve(
    *, project_id: str | None = None, working_directory: str | None = None
) -> ResolvedProject:
    """Return the project that answers a call, walking the four tiers in order."""
    if project_id is not None and str(project_id).strip():
        return ResolvedProject(
            project=project_get(reference=str(project_id)), tier="explicit"
        )
    if working_directory:
        config_path = session_config_find(directory=working_directory)
        if config_path is not None:
            try:
                config = session_config_load(path=config_path)
            except ProjectConfigInvalid as exc:
                if getattr(exc, "strict", False):
                    raise
                logger.warning("%s; ignoring it", exc)
            else:
                return ResolvedProject(
                    project=_project_from_config(config),
                    tier="session_config",
                    config_path=str(config_path),
                )
    reference = workflow_active_project()
    if reference:
        try:
            return ResolvedProject(
                project=project_get(reference=reference), tier="workflow_mcp"
            )
        except ProjectNotFound:
            logger.warning(
                "workflow-mcp's active project %r is not registered", reference
            )
    return ResolvedProject(project=project_default_ensure(), tier="default")


def projects_resolve(*, references: object, grant: Grant) -> list[Project]:
    """Return the projects a call over several projects names (no fallback tiers).

    Every MCP tool that takes `projects` passes them through here and nowhere
    else, with the caller's grant: stdio runs as the user (LOCAL, every
    project); over HTTP a scoped token reads only its projects, and an
    unknown name and one it does not list fail alike.
    """
    return projects_named(grant, references=references, permission=READ)

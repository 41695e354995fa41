"""Create, find, check and revoke API tokens.

A token reads `cbmcp_<prefix>_<secret>`: the prefix (8 hex digits) is stored
as it is and finds the row; the whole token is stored only as its SHA-256
digest, compared in constant time. The secret holds 256 random bits, so a
plain hash is enough: nothing about it can be guessed faster than the token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from registry.exceptions import InvalidApiToken
from registry.models import ApiToken, Project

TOKEN_SCHEME = "cbmcp"
# Longest bearer value looked at; a real token is about 60 characters.
MAX_TOKEN_LENGTH = 200
# last_used_at is written at most this often per token: not a write per call.
LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_NAME_LENGTH = 100


def _digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def apitoken_permission_check(*, permission: str) -> str:
    """Return `permission` when it is read, write or admin, else raise."""
    if permission not in ApiToken.PERMISSIONS:
        raise InvalidApiToken(
            f"{permission!r} is not a permission; use one of "
            f"{', '.join(ApiToken.PERMISSIONS)} (each includes the ones before)."
        )
    return permission


def apitoken_create(
    *,
    name: str,
    permission: str,
    projects: Iterable[Project] | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; return it and its plaintext, which is never stored.

    `projects=None` covers every project, present and future; otherwise the
    token covers exactly those listed (at least one).
    """
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME_LENGTH or "\x00" in name:
        raise InvalidApiToken(
            f"A token needs a name of 1 to {MAX_NAME_LENGTH} characters (who or "
            "what uses it), without NUL."
        )
    apitoken_permission_check(permission=permission)
    listed = None if projects is None else list(projects)
    if listed is not None and not listed:
        raise InvalidApiToken(
            "A token must cover at least one project; name them, or give it every "
            "project."
        )
    prefix = secrets.token_hex(4)
    plaintext = f"{TOKEN_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic(using="default"):
        token = ApiToken.objects.using("default").create(
            name=name,
            prefix=prefix,
            digest=_digest(plaintext),
            permission=permission,
            all_projects=listed is None,
        )
        if listed:
            token.projects.set(listed)
    return token, plaintext


def apitoken_authenticate(*, plaintext: str) -> ApiToken | None:
    """Return the live token `plaintext` is, or None (unknown, revoked, malformed)."""
    if not isinstance(plaintext, str) or len(plaintext) > MAX_TOKEN_LENGTH:
        return None
    scheme, _, rest = plaintext.partition("_")
    prefix, _, secret = rest.partition("_")
    if scheme != TOKEN_SCHEME or not prefix or not secret or not prefix.isalnum():
        return None
    token = (
        ApiToken.objects.using("default")
        .filter(prefix=prefix, revoked_at__isnull=True)
        .first()
    )
    if token is None or not hmac.compare_digest(token.digest, _digest(plaintext)):
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.using("default").filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def apitoken_project_ids(*, token: ApiToken) -> frozenset | None:
    """Return the ids of the projects a token covers; None for every project."""
    if token.all_projects:
        return None
    return frozenset(token.projects.using("default").values_list("id", flat=True))


def apitoken_get(*, reference: str) -> ApiToken:
    """Return a token by its prefix (or `cbmcp_<prefix>`), or raise InvalidApiToken."""
    text = str(reference).strip()
    if text.startswith(f"{TOKEN_SCHEME}_"):
        text = text.split("_")[1]
    token = ApiToken.objects.using("default").filter(prefix=text).first()
    if token is None:
        raise InvalidApiToken(
            f"No API token with prefix {reference!r}; `manage.py apitoken list` "
            "shows them."
        )
    return token


def apitoken_revoke(*, token: ApiToken) -> ApiToken:
    """Revoke a token now; it is refused from its next request on."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        ApiToken.objects.using("default").filter(pk=token.pk).update(
            revoked_at=token.revoked_at
        )
    return token


def apitoken_list() -> list[ApiToken]:
    """Return every token, revoked ones included, oldest first."""
    return list(ApiToken.objects.using("default").prefetch_related("projects").all())


def apitokens_configured() -> bool:
    """Return whether any token was ever created (revoked ones count).

    Once tokens exist, the HTTP interfaces require one: revoking the last
    token must not open them again.
    """
    return ApiToken.objects.using("default").exists()

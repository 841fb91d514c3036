"""Who may pull a share: bearer tokens per partner, profile files, and the checks made on every request.

A token is issued for one partner and lives ``days`` days, never past the end of the
day its policy expires (``expires_on``). It is valid while it is unrevoked, unexpired
and its partner's policy is still in force; all three are checked on every request, so
``lawlake share revoke`` takes effect at once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from lawlake import policy as policies_mod
from lawlake.catalog import utcnow
from lawlake.config import Settings
from lawlake.policy import Policy
from lawlake.sharing.errors import Forbidden, GrantError, Unauthenticated
from lawlake.sharing.store import Grant, ShareStore

__all__ = [
    "DEFAULT_DAYS",
    "IssuedToken",
    "policies_by_partner",
    "policy_in_force",
    "grant_token",
    "revoke_tokens",
    "profile_document",
    "write_profile",
    "authenticate",
    "check_grant",
]

DEFAULT_DAYS = 30


@dataclass(frozen=True)
class IssuedToken:
    """A freshly issued token (shown once) and its grant."""

    token: str
    grant: Grant


def policies_by_partner(policies: Iterable[Policy] | None = None) -> dict[str, Policy]:
    """Partner name → policy, from ``schemas/shares/`` unless given."""
    return {p.partner: p for p in (policies_mod.load_all() if policies is None else policies)}


def _local_date(now: datetime) -> date:
    # Policies are agreements dated in local time, as the share stage reads them (date.today()).
    return now.astimezone().date()


def policy_in_force(p: Policy, now: datetime) -> bool:
    return _local_date(now) <= p.expires_on


def _end_of(day: date) -> datetime:
    """The first instant after ``day`` ends, local time, as UTC."""
    return datetime.combine(day + timedelta(days=1), time(0)).astimezone().astimezone(UTC)


def grant_token(
    settings: Settings,
    partner: str,
    *,
    days: int = DEFAULT_DAYS,
    now: datetime | None = None,
    policies: Iterable[Policy] | None = None,
) -> IssuedToken:
    """Issue a token for ``partner`` valid ``days`` days (capped at its policy's expiry).

    ``now`` back-dates the grant (tests of expiry). Raises :class:`GrantError` for an
    unknown partner or an expired policy.
    """
    now = now or utcnow()
    known = policies_by_partner(policies)
    if partner not in known:
        raise GrantError(f"no share policy for partner {partner!r} (known: {', '.join(sorted(known)) or 'none'})")
    if days <= 0:
        raise GrantError("--days must be at least 1")
    p = known[partner]
    if not policy_in_force(p, now):
        raise GrantError(f"the share policy of {partner} expired on {p.expires_on}; renew the agreement before granting access")
    expires_at = min(now + timedelta(days=days), _end_of(p.expires_on))
    token, grant = ShareStore(settings.catalog_url).issue(partner, expires_at=expires_at, now=now)
    return IssuedToken(token, grant)


def revoke_tokens(settings: Settings, partner: str) -> int:
    """Revoke every token of ``partner``; return how many were still unrevoked."""
    return ShareStore(settings.catalog_url).revoke(partner)


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def profile_document(endpoint: str, issued: IssuedToken) -> dict:
    """The Delta Sharing profile (share credentials, version 1) for an issued token."""
    return {
        "shareCredentialsVersion": 1,
        "endpoint": endpoint.rstrip("/"),
        "bearerToken": issued.token,
        "expirationTime": _iso(issued.grant.expires_at),
    }


def _previous_grant(store: ShareStore, out: Path, partner: str) -> Grant | None:
    """The grant behind the token of an existing profile file of ``partner``, if any."""
    try:
        token = json.loads(out.read_text(encoding="utf-8")).get("bearerToken")
    except (OSError, ValueError, AttributeError):
        return None
    grant = store.by_token(token) if isinstance(token, str) and token else None
    return grant if grant is not None and grant.partner == partner else None


def write_profile(
    settings: Settings,
    partner: str,
    out: str | Path,
    *,
    endpoint: str,
    days: int = DEFAULT_DAYS,
    policies: Iterable[Policy] | None = None,
    rotate: bool = False,
) -> Path:
    """Issue a new token for ``partner`` and write its profile file at ``out`` (mode 0600; a new folder is made 0700).

    ``rotate`` revokes the token of the profile ``out`` held before, once the new one is
    written, so re-writing the same profile never leaves more than one live token behind.
    """
    out = Path(out)
    store = ShareStore(settings.catalog_url)
    previous = _previous_grant(store, out, partner) if rotate and out.exists() else None
    issued = grant_token(settings, partner, days=days, policies=policies)
    if not out.parent.exists():
        out.parent.mkdir(parents=True, mode=0o700)
    tmp = out.with_name(f".{out.name}.{issued.grant.grant_id}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(profile_document(endpoint, issued), f, indent=2)
        f.write("\n")
    os.replace(tmp, out)  # a fresh 0600 file in one step, never a wider mode or a half-written one
    if previous is not None and previous.revoked_at is None:
        store.revoke(partner, grant_ids=[previous.grant_id])
    return out


def check_grant(grant: Grant, policies: dict[str, Policy], now: datetime, *, refuse: type = Unauthenticated) -> Policy:
    """The grant's policy, if the grant may still be used; ``refuse`` is raised for a revoked or expired grant."""
    if grant.revoked_at is not None:
        raise refuse("the token has been revoked")
    if now >= grant.expires_at:
        raise refuse(f"the token expired at {_iso(grant.expires_at)}")
    p = policies.get(grant.partner)
    if p is None:
        raise Forbidden(f"partner {grant.partner} no longer has a share policy")
    if not policy_in_force(p, now):
        raise Forbidden(f"the share grant of {grant.partner} expired on {p.expires_on}")
    return p


def authenticate(store: ShareStore, header: str | None, policies: dict[str, Policy], now: datetime) -> tuple[Grant | None, Policy | None, Exception | None]:
    """The grant and policy behind an ``Authorization`` header, or the error to answer with.

    The grant is returned even when it is refused (revoked, expired), so the refusal is
    audited under its partner.
    """
    if not header:
        return None, None, Unauthenticated("missing bearer token (Authorization: Bearer <token>)")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None, None, Unauthenticated("malformed Authorization header; expected 'Bearer <token>'")
    grant = store.by_token(token.strip())
    if grant is None:
        return None, None, Unauthenticated("invalid bearer token")
    try:
        return grant, check_grant(grant, policies, now), None
    except (Unauthenticated, Forbidden) as exc:
        return grant, None, exc

"""API keys mapped to people and roles, for the services' HTTP APIs."""

from __future__ import annotations

import csv
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from fastapi import Depends, HTTPException, Security
from fastapi.security import APIKeyHeader

from shared.contract.envelope import Actor

ROLES: tuple[str, ...] = (
    "sales", "sales_director", "finance", "finance_director", "general_manager", "warehouse",
    "support", "auditor", "admin",
)
DEMO_KEYS_FILE = Path(__file__).resolve().parent.parent / "deploy" / "api-keys.demo.csv"


@dataclass(frozen=True, slots=True)
class Principal:
    user: str
    role: str

    def actor(self) -> Actor:
        """The person as the actor of the events their request appends."""
        return Actor(kind="user", id=self.user, role=self.role)


def load_api_keys(path: Path) -> dict[str, Principal]:
    """``key,user,role`` rows; unknown roles are refused so a typo cannot grant nothing silently."""
    keys: dict[str, Principal] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for lineno, row in enumerate(csv.DictReader(handle), start=2):
            role = (row.get("role") or "").strip()
            if role not in ROLES:
                raise ValueError(f"{path}:{lineno}: role {role!r} unknown; accepted: {ROLES}")
            keys[(row.get("key") or "").strip()] = Principal((row.get("user") or "").strip(), role)
    return keys


@lru_cache(maxsize=4)
def _keys(path: str) -> dict[str, Principal]:
    return load_api_keys(Path(path))


def keys_file() -> Path:
    """``OMS_API_KEYS_FILE`` or the demo keys (read per request: building the settings takes
    milliseconds, so it is done again only when the variable changes)."""
    return _keys_file(os.environ.get("OMS_API_KEYS_FILE"))


@lru_cache(maxsize=4)
def _keys_file(_variable: str | None) -> Path:
    from shared.settings import OmsSettings

    return OmsSettings().api_keys_file or DEMO_KEYS_FILE


_header = APIKeyHeader(name="X-API-Key", auto_error=False)


async def current_principal(key: str | None = Security(_header)) -> Principal:
    if not key:
        raise HTTPException(401, "missing X-API-Key header")
    principal = _keys(str(keys_file())).get(key)
    if principal is None:
        raise HTTPException(401, "unknown API key")
    return principal


def require_roles(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets through only the named roles (``admin`` always)."""

    async def check(principal: Principal = Depends(current_principal)) -> Principal:
        if principal.role != "admin" and roles and principal.role not in roles:
            raise HTTPException(
                403, f"role {principal.role!r} may not do this; needs one of: {', '.join(roles)}"
            )
        return principal

    return check

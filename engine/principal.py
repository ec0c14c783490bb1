"""Who is acting. Every service method takes one, so authorization and audit happen in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["admin", "developer", "viewer"]
_RANK = {"viewer": 0, "developer": 1, "admin": 2}


@dataclass(frozen=True, slots=True)
class Principal:
    actor: str  # username, "key:<name>", or "system"
    actor_type: Literal["user", "api_key", "system"]
    role: Role
    user_id: str = ""
    tenant: str = "default"
    ip: str = ""

    def can(self, role: Role) -> bool:
        """True when this principal's role is at least `role`."""
        return _RANK[self.role] >= _RANK[role]


SYSTEM = Principal(actor="system", actor_type="system", role="admin")

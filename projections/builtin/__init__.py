"""The built-in projections."""

from __future__ import annotations

from ..base import Projection
from .approvals import ApprovalsWithoutPurchases, StalledApprovals


def builtin_projections() -> list[Projection]:
    """A fresh instance of every built-in projection."""
    return [ApprovalsWithoutPurchases(), StalledApprovals()]

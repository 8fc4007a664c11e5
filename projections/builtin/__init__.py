"""The built-in projections."""

from __future__ import annotations

from ..base import Projection
from .approvals import ApprovalsWithoutPurchases, StalledApprovals
from .countermeasures import Countermeasures
from .formalization import FormalizationLag
from .policy_status import PolicyStatus


def builtin_projections() -> list[Projection]:
    """A fresh instance of every built-in projection."""
    return [ApprovalsWithoutPurchases(), StalledApprovals(), PolicyStatus(), FormalizationLag(), Countermeasures()]

"""The built-in projections."""

from __future__ import annotations

from ..base import Projection
from .activity import Activity
from .approvals import ApprovalsWithoutPurchases, StalledApprovals
from .countermeasures import Countermeasures
from .disputes import DisputedClaims
from .formalization import FormalizationLag
from .policy_status import PolicyStatus
from .timeline import Timeline


def builtin_projections() -> list[Projection]:
    """A fresh instance of every built-in projection."""
    return [
        ApprovalsWithoutPurchases(),
        StalledApprovals(),
        PolicyStatus(),
        FormalizationLag(),
        Countermeasures(),
        Timeline(),
        DisputedClaims(),
        Activity(),
    ]

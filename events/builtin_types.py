"""The built-in event types: one marshmallow schema per type and version, and the upcasters.

Field names are a contract with clients. Optional fields are stored only when given.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema

from .fields import DateText, EventRef, Int64, Number, StrictBoolean, Text, text_list

REQ: dict[str, Any] = {"required": True}
OPT: dict[str, Any] = {"allow_none": True}
SUMMARY = 5000


class EventSchema(Schema):
    """Base of every event payload schema: unknown fields are errors."""

    class Meta:
        unknown = RAISE


class PolicyAnnounced(EventSchema):
    policy_id = Text(max_length=200, **REQ)
    jurisdiction = Text(max_length=100, **REQ)
    authority = Text(**REQ)
    subject = Text(**REQ)
    counterparty = Text(max_length=100, **OPT)
    summary = Text(max_length=SUMMARY, **REQ)


class PolicyApproved(EventSchema):
    policy_id = Text(max_length=200, **REQ)
    jurisdiction = Text(max_length=100, **REQ)
    authority = Text(**REQ)
    subject = Text(**REQ)
    counterparty = Text(max_length=100, **REQ)
    conditions = text_list(**OPT)
    summary = Text(max_length=SUMMARY, **OPT)
    implements = EventRef(**OPT)


class PolicyAmended(EventSchema):
    policy_id = Text(max_length=200, **REQ)
    changes = Text(max_length=SUMMARY, **REQ)
    reason = Text(max_length=SUMMARY, **OPT)


class PolicySuspended(EventSchema):
    policy_id = Text(max_length=200, **REQ)
    reason = Text(max_length=SUMMARY, **REQ)


class PolicyRevoked(PolicySuspended):
    pass


class RulePublished(EventSchema):
    policy_id = Text(max_length=200, **REQ)
    citation = Text(**REQ)
    title = Text(max_length=1000, **REQ)
    effective_on = DateText(**REQ)
    implements = EventRef(**OPT)
    jurisdiction = Text(max_length=100, **OPT)
    authority = Text(**OPT)
    subject = Text(**OPT)
    counterparty = Text(max_length=100, **OPT)
    summary = Text(max_length=SUMMARY, **OPT)


class LicenseGranted(EventSchema):
    policy_id = Text(max_length=200, **REQ)
    licensee = Text(**REQ)
    subject = Text(**REQ)
    counterparty = Text(max_length=100, **REQ)
    quantity_cap = Int64(minimum=1, **OPT)
    jurisdiction = Text(max_length=100, **OPT)
    implements = EventRef(**OPT)
    summary = Text(max_length=SUMMARY, **OPT)


class LicenseDenied(LicenseGranted):
    reason = Text(max_length=SUMMARY, **OPT)


class ImportApprovalGranted(EventSchema):
    jurisdiction = Text(max_length=100, **REQ)
    authority = Text(**REQ)
    subject = Text(**REQ)
    buyers = text_list(**REQ)
    conditional = StrictBoolean(**REQ)
    conditions = text_list(**OPT)
    policy_id = Text(max_length=200, **OPT)
    summary = Text(max_length=SUMMARY, **OPT)


class OrderIntentReported(EventSchema):
    buyer = Text(**REQ)
    subject = Text(**REQ)
    quantity = Int64(minimum=1, **OPT)
    buyer_jurisdiction = Text(max_length=100, **OPT)
    policy_id = Text(max_length=200, **OPT)
    summary = Text(max_length=SUMMARY, **OPT)


class PurchaseOrderedV1(EventSchema):
    """Version 1, kept to read old records: `buyer_country` and `units`."""

    buyer = Text(**REQ)
    buyer_country = Text(max_length=100, **REQ)
    subject = Text(**REQ)
    units = Int64(minimum=1, **REQ)
    value = Number(minimum=0, **OPT)
    policy_id = Text(max_length=200, **OPT)


class PurchaseOrdered(EventSchema):
    buyer = Text(**REQ)
    buyer_jurisdiction = Text(max_length=100, **REQ)
    subject = Text(**REQ)
    quantity = Int64(minimum=1, **REQ)
    value = Number(minimum=0, **OPT)
    currency = Text(max_length=3, min_length=3, **OPT)
    policy_id = Text(max_length=200, **OPT)
    summary = Text(max_length=SUMMARY, **OPT)


class DeliveryCompleted(EventSchema):
    buyer = Text(**REQ)
    subject = Text(**REQ)
    quantity = Int64(minimum=1, **REQ)
    buyer_jurisdiction = Text(max_length=100, **OPT)
    policy_id = Text(max_length=200, **OPT)
    summary = Text(max_length=SUMMARY, **OPT)


class CountermeasureIssued(EventSchema):
    jurisdiction = Text(max_length=100, **REQ)
    authority = Text(**REQ)
    subject = Text(**REQ)
    measure = Text(max_length=SUMMARY, **REQ)
    formality = Text(choices=["formal", "informal_guidance"], **REQ)
    target_policy_id = Text(max_length=200, **OPT)


class StatementIssued(EventSchema):
    speaker = Text(**REQ)
    organisation = Text(**REQ)
    summary = Text(max_length=SUMMARY, **REQ)
    stance = Text(max_length=100, **OPT)
    subject = Text(**OPT)
    jurisdiction = Text(max_length=100, **OPT)


class ReportDisputed(EventSchema):
    event_id = EventRef(**REQ)
    by = Text(**REQ)
    summary = Text(max_length=SUMMARY, **REQ)


class EventRetracted(EventSchema):
    event_id = EventRef(**REQ)
    reason = Text(max_length=SUMMARY, **REQ)


def upcast_purchase_ordered_v1(data: dict[str, Any]) -> dict[str, Any]:
    """v1 → v2: `buyer_country` became `buyer_jurisdiction`, `units` became `quantity`."""
    out = {k: v for k, v in data.items() if k not in ("buyer_country", "units")}
    out["buyer_jurisdiction"] = data["buyer_country"]
    out["quantity"] = data["units"]
    return out


#: name → list of schemas, index i is schema_version i + 1 (the last is current).
BUILTIN_VERSIONS: dict[str, list[type[EventSchema]]] = {
    "PolicyAnnounced": [PolicyAnnounced],
    "PolicyApproved": [PolicyApproved],
    "PolicyAmended": [PolicyAmended],
    "PolicySuspended": [PolicySuspended],
    "PolicyRevoked": [PolicyRevoked],
    "RulePublished": [RulePublished],
    "LicenseGranted": [LicenseGranted],
    "LicenseDenied": [LicenseDenied],
    "ImportApprovalGranted": [ImportApprovalGranted],
    "OrderIntentReported": [OrderIntentReported],
    "PurchaseOrdered": [PurchaseOrderedV1, PurchaseOrdered],
    "DeliveryCompleted": [DeliveryCompleted],
    "CountermeasureIssued": [CountermeasureIssued],
    "StatementIssued": [StatementIssued],
    "ReportDisputed": [ReportDisputed],
    "EventRetracted": [EventRetracted],
}

#: (name, from_version) → function turning a payload of that version into the next one.
UPCASTERS = {("PurchaseOrdered", 1): upcast_purchase_ordered_v1}

#: the fields of the built-in types that name another event (EventRef fields); the
#: catalogue finds them per type, and such an event must be in the log or earlier in the batch.
REFERENCE_FIELDS = ("event_id", "implements")

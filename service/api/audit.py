"""Audit: prove the log was not rewritten (verify, digest) and that a projection's stored
state is what the log says (replay)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from events import Digest

from .. import usecases
from ..config import Config
from ..errors import RequestValidationError
from ..schemas import HASH, DigestSchema, JsonInt, ReplayRequestSchema, ReplayResultSchema, VerifyReportSchema
from .base import Blueprint, reply, services


class VerifyQuery(Schema):
    position = JsonInt(metadata={"description": "With `hash`: a digest kept earlier, to prove the log up to it"})
    hash = fields.String(
        validate=validate.Regexp(HASH["pattern"], error="must be the 64 lowercase hex digits of a digest's hash"),
        metadata={**HASH, "description": "The hash of that digest"},
    )


def blueprint(config: Config) -> Blueprint:
    blp = Blueprint("audit", __name__, url_prefix="/v1", description="Tamper evidence and replay checks.")

    @blp.route("/audit/verify")
    @blp.arguments(VerifyQuery, location="query")
    @blp.alt_response(200, schema=VerifyReportSchema, success=True)
    @blp.problems(503)
    @blp.requires("read", enforced=config.require_read_token)
    def verify(args: dict[str, Any]) -> Any:
        """Verify the hash chain

        Walks the whole log and reports the first position whose record no longer matches
        its hash (`ok` false). Given a digest kept earlier (`position` and `hash`), also
        proves the log up to it was not rewritten."""
        expected = None
        if ("position" in args) != ("hash" in args):
            missing = "hash" if "position" in args else "position"
            raise RequestValidationError({missing: ["send position and hash together (a digest kept earlier)"]})
        if "position" in args:
            expected = Digest(args["position"], args["hash"], None)
        return reply(usecases.verify_log(services(), expected).to_dict())

    @blp.route("/audit/digest")
    @blp.alt_response(200, schema=DigestSchema, success=True)
    @blp.problems(503)
    @blp.requires("read", enforced=config.require_read_token)
    def digest() -> Any:
        """Get the log digest

        The head of the log: keep it, and GET /v1/audit/verify?position=…&hash=… later
        proves nothing up to it changed."""
        return reply(usecases.log_digest(services()).to_dict())

    @blp.route("/audit/replay", methods=["POST"])
    @blp.arguments(ReplayRequestSchema, description="The projection to check, and optionally an instant")
    @blp.alt_response(200, schema=ReplayResultSchema, success=True)
    @blp.problems(400, 404, 413, 415, 503)
    @blp.requires("admin")
    def replay(body: dict[str, Any]) -> Any:
        """Replay a projection

        Rebuilds the projection in memory from the log (up to `as_of` if given) and compares
        it with the stored state: `match`, and the `differences` (at most 100)."""
        return reply(usecases.replay_projection(services(), body["projection"], body.get("as_of")))

    return blp

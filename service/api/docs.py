"""The API's own documentation: the OpenAPI document, and /docs, a page rendered from it on
the server (no JavaScript, no CDN, nothing fetched from elsewhere)."""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

from flask import current_app, render_template
from markupsafe import Markup, escape

from ..errors import PROBLEMS
from .base import Blueprint, reply

METHODS = ("get", "post", "put", "patch", "delete")
CODE = re.compile(r"`([^`]+)`")
SPEC_KEY = "policy_timeline.openapi"


def blueprint() -> Blueprint:
    blp = Blueprint("docs", __name__, description="This documentation.")

    @blp.route("/openapi.json")
    @blp.alt_response(200, success=True, schema={"type": "object"}, description="The OpenAPI 3 document")
    @blp.public
    def openapi_json() -> Any:
        """OpenAPI document

        Every endpoint, parameter, request body and response of this API."""
        return reply(openapi_document())

    @blp.route("/docs")
    @blp.alt_response(200, success=True, content_type="text/html", schema={"type": "string"}, description="HTML")
    @blp.public
    def docs_page() -> Any:
        """API documentation

        This API described for people, rendered from the OpenAPI document."""
        css = resources.files("service").joinpath("static/docs.css").read_text(encoding="utf-8")
        return render_template("docs.html", page=page_model(openapi_document()), css=Markup(css))

    return blp


def openapi_document() -> dict[str, Any]:
    """The app's OpenAPI document (rendered once; the app's routes do not change)."""
    cached: dict[str, Any] | None = current_app.extensions.get(SPEC_KEY)
    if cached is None:
        cached = current_app.extensions["policy_timeline.api"].spec.to_dict()
        current_app.extensions[SPEC_KEY] = cached
    return cached


# -- the page's model -----------------------------------------------------------------------
def page_model(spec: dict[str, Any]) -> dict[str, Any]:
    """What the template shows: operations grouped by tag, schemas, problem types."""
    groups: dict[str, list[dict[str, Any]]] = {t["name"]: [] for t in spec.get("tags", [])}
    for path, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method in METHODS:
            if method in item:
                op = item[method]
                tag = (op.get("tags") or ["other"])[0]
                groups.setdefault(tag, []).append(_operation(spec, path, method, op, shared))
    tags = {t["name"]: t.get("description", "") for t in spec.get("tags", [])}
    schemas = [_schema_entry(name, schema) for name, schema in sorted(spec["components"].get("schemas", {}).items())]
    return {
        "title": spec["info"]["title"],
        "version": spec["info"]["version"],
        "description": spec["info"].get("description", ""),
        "groups": [
            {"name": name, "description": tags.get(name, ""), "operations": ops} for name, ops in groups.items()
        ],
        "schemas": schemas,
        "problems": list(PROBLEMS.values()),
    }


def _operation(spec: dict[str, Any], path: str, method: str, op: dict[str, Any], shared: list[Any]) -> dict[str, Any]:
    scope = op.get("x-scope")
    security = op.get("security")
    if security == []:
        auth = "none"
    elif security and {} in security:
        auth = f"optional ({scope} scope when reads need a token)"
    else:
        auth = f"Bearer token with the {scope} scope" if scope else "none"
    body = None
    if "requestBody" in op:
        content_type, media = next(iter(op["requestBody"]["content"].items()))
        body = {"content_type": content_type, "type": type_html(media.get("schema", {}))}
    responses = []
    for status, response in sorted(op.get("responses", {}).items(), key=lambda item: item[0].replace("default", "9")):
        response = _resolve(spec, response)
        content = response.get("content", {})
        content_type, media = next(iter(content.items())) if content else ("", {})
        headers = ", ".join(sorted(response.get("headers", {})))
        responses.append(
            {
                "status": status,
                "description": inline(response.get("description", "")),
                "content_type": content_type,
                "type": type_html(media.get("schema", {})) if media else "",
                "headers": headers,
            }
        )
    params = []
    for p in [*shared, *op.get("parameters", [])]:
        p = _resolve(spec, p)
        params.append(
            {
                "name": p["name"],
                "in": p["in"],
                "required": p.get("required", False),
                "type": type_html(p.get("schema", {})),
                "description": inline(p.get("description", "")),
            }
        )
    anchor = f"op-{method}-{path.strip('/').replace('/', '-').replace('{', '').replace('}', '')}"
    return {
        "anchor": anchor,
        "method": method.upper(),
        "path": path,
        "summary": op.get("summary", ""),
        "description": inline(op.get("description", "")),
        "auth": auth,
        "parameters": params,
        "body": body,
        "responses": responses,
    }


def _resolve(spec: dict[str, Any], obj: Any) -> Any:
    while isinstance(obj, dict) and "$ref" in obj and obj["$ref"].startswith("#/components/"):
        section, name = obj["$ref"].split("/")[2:4]
        obj = spec["components"][section][name]
    return obj


def _schema_entry(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    required = set(schema.get("required", []))
    props = [
        {
            "name": prop,
            "type": type_html(sub),
            "required": prop in required,
            "description": inline(sub.get("description", "")),
        }
        for prop, sub in schema.get("properties", {}).items()
    ]
    return {"name": name, "description": inline(schema.get("description", "")), "properties": props}


def inline(text: str) -> Markup:
    """Escape a description, rendering `code` spans."""
    return Markup(CODE.sub(lambda m: f"<code>{m.group(1)}</code>", str(escape(text))))


def type_html(schema: dict[str, Any]) -> Markup:
    """A short, linked description of a JSON schema: `array of RecordedEvent`, `integer ≥ 0`…"""
    if not schema:
        return Markup("any JSON")
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return Markup('<a href="#schema-{0}">{0}</a>').format(name)
    if "oneOf" in schema:
        return Markup(" or ").join(type_html(s) for s in schema["oneOf"])
    kind = schema.get("type", "any")
    if kind == "array":
        text = Markup("array of ") + type_html(schema.get("items", {}))
    elif kind == "object" and isinstance(schema.get("additionalProperties"), dict) and schema["additionalProperties"]:
        text = Markup("object of ") + type_html(schema["additionalProperties"])
    else:
        text = escape(kind)
    notes = []
    if "enum" in schema:
        notes.append("one of " + ", ".join(str(v) for v in schema["enum"]))
    if "format" in schema:
        notes.append(schema["format"])
    if "minimum" in schema or "maximum" in schema:
        notes.append(f"{schema.get('minimum', '…')} – {schema.get('maximum', '…')}")
    if "maxLength" in schema:
        notes.append(f"≤ {schema['maxLength']} chars")
    if "pattern" in schema:
        notes.append(f"pattern {schema['pattern']}")
    if schema.get("nullable"):
        notes.append("nullable")
    if notes:
        text += Markup(' <span class="notes">({})</span>').format("; ".join(notes))
    return text

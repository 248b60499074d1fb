"""The OpenAPI 3.0 document, generated from the route table that also registers the Chalice routes.

Since both come from ``routes.ROUTES``, the document matches the routes by construction; body and response
schemas come from the pydantic models that validate them. Pydantic writes JSON Schema 2020-12, so schemas are
converted to OpenAPI 3.0's dialect (``nullable`` instead of a ``null`` type, ``enum`` instead of ``const``) and
their ``$defs`` hoisted into ``components/schemas``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from pydantic import BaseModel

from .errors import ERROR_SCHEMA, JSON, REASONS
from .web import Route

REF_TEMPLATE: Final = "#/components/schemas/{model}"
_PATH_PARAM: Final = re.compile(r"{([^}]+)}")
SECURITY_SCHEMES: Final[dict[str, Any]] = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT or service token <tokenId>_<secret>",
                   "description": "From POST /api/user/login, or a service token"},
    "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "mc_access_token"},
    "queryAuth": {"type": "apiKey", "in": "query", "name": "access_token"},
}
"""The three ways a token is accepted (any one); public operations say ``security: []``."""
SCHEMA_NAMES: Final = {"FieldModel": "Field"}
"""Component names that differ from the class name (``FieldModel`` avoids shadowing pydantic's ``Field``)."""


def to_oas30(schema: Any) -> Any:
    """Rewrite a JSON Schema 2020-12 fragment (as pydantic makes them) into OpenAPI 3.0's schema dialect."""
    if isinstance(schema, list):
        return [to_oas30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("$schema", "$defs", "examples"):
            continue
        if key == "const":
            out["enum"] = [value]
        elif key in ("properties", "patternProperties"):
            out[key] = {name: to_oas30(sub) for name, sub in value.items()}
        else:
            out[key] = to_oas30(value)
    if "examples" in schema and isinstance(schema["examples"], list) and schema["examples"]:
        out["example"] = schema["examples"][0]
    for combiner in ("anyOf", "oneOf"):
        options = out.get(combiner)
        if isinstance(options, list) and any(o == {"type": "null"} for o in options):
            rest = [o for o in options if o != {"type": "null"}]
            del out[combiner]
            if len(rest) == 1 and "$ref" not in rest[0]:
                out = {**rest[0], **out}
            elif len(rest) == 1:
                out["allOf"] = rest
            elif rest:
                out[combiner] = rest
            out["nullable"] = True
    if "$ref" in out and len(out) > 1:  # OpenAPI 3.0 ignores siblings of $ref
        ref = out.pop("$ref")
        out["allOf"] = [{"$ref": ref}]
    return out


class _Components:
    """Collects schemas under ``components/schemas``, each model once."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {"Error": copy.deepcopy(ERROR_SCHEMA)}

    def model(self, model: type[BaseModel]) -> dict[str, str]:
        name = SCHEMA_NAMES.get(model.__name__, model.__name__)
        if name not in self.schemas:
            schema = model.model_json_schema(by_alias=True, ref_template=REF_TEMPLATE)
            for def_name, definition in schema.pop("$defs", {}).items():
                self.schemas.setdefault(SCHEMA_NAMES.get(def_name, def_name), to_oas30(definition))
            self.schemas[name] = {**to_oas30(schema), "title": name}
        return {"$ref": REF_TEMPLATE.format(model=name)}

    def page(self, model: type[BaseModel]) -> dict[str, str]:
        name = f"{SCHEMA_NAMES.get(model.__name__, model.__name__)}Page"
        item = self.model(model)
        self.schemas.setdefault(name, {
            "type": "object",
            "required": ["count", "limit", "offset", "data"],
            "properties": {
                "count": {"type": "integer", "description": "Records matching the filters, before paging"},
                "limit": {"type": "integer"},
                "offset": {"type": "integer"},
                "data": {"type": "array", "items": item},
            },
        })
        return {"$ref": REF_TEMPLATE.format(model=name)}

    def schema(self, model: type[BaseModel] | None, schema: Mapping[str, Any] | None, page: bool = False) -> Any:
        if model is not None:
            return self.page(model) if page else self.model(model)
        return to_oas30(copy.deepcopy(dict(schema or {})))


def _error_response(status: int) -> dict[str, Any]:
    return {"description": REASONS.get(status, "Error"),
            "content": {JSON: {"schema": {"$ref": REF_TEMPLATE.format(model="Error")}}}}


def _operation(route: Route, components: _Components) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in _PATH_PARAM.findall(route.path)
    ]
    for param in route.params:
        parameters.append({"name": param.name, "in": param.location, "required": param.required,
                           "description": param.description, "schema": dict(param.schema)})
    responses: dict[str, Any] = {
        str(route.ok.status): {"description": route.ok.description, "content": {
            route.ok.content_type: {"schema": components.schema(route.ok.model, route.ok.schema, route.ok.page)}}},
    }
    codes = set(route.errors) | {500}
    if not route.public:
        codes |= {401, 403}
    if route.body is not None:
        codes |= {400, 413, 415}
    for code in sorted(codes):
        responses[str(code)] = _error_response(code)
    operation: dict[str, Any] = {
        "operationId": route.name,
        "summary": route.summary,
        "tags": [route.tag],
        "responses": responses,
    }
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        body_schema = components.schema(route.body.model, route.body.schema)
        if route.body.many and route.body.model is not None:
            body_schema = {"type": "array", "minItems": 1, "maxItems": route.body.many, "items": body_schema}
        media: dict[str, Any] = {"schema": body_schema}
        if route.body.example is not None:
            media["example"] = route.body.example
        content = {JSON: media} if JSON in route.content_types else {}
        content.update({kind: {"schema": {"type": "string", "format": "binary"}}
                        for kind in route.content_types if kind != JSON})  # file uploads
        operation["requestBody"] = {"required": True, "description": route.body.description, "content": content}
    if route.public:
        operation["security"] = []
    if route.role is not None:
        operation["description"] = f"Needs the {route.role.value} role (viewer < user < admin); below it: 403."
        operation["x-required-role"] = route.role.value
    return operation


def build_document(routes: Iterable[Route], *, title: str = "MyController Serverless API",
                   version: str = "0.1.0") -> dict[str, Any]:
    components = _Components()
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, components)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": title,
            "version": version,
            "description": "MyController v2's REST API (paths, verbs, list query, JSON names), served by "
                           "serverless functions. Errors are {status, message, field}.",
        },
        "paths": paths,
        "components": {"schemas": components.schemas, "securitySchemes": SECURITY_SCHEMES},
        "security": [{name: []} for name in SECURITY_SCHEMES],
    }


def operations(document: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation a document describes."""
    return {(method.upper(), path) for path, item in document.get("paths", {}).items() for method in item}

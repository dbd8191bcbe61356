"""OpenAPI 3 document of the REST routes, derived from the same descriptors as the routes themselves.

Input limits come from the buf.validate rules of the protos, the ones the server checks (see transport.validation):
`required`, `minLength`/`maxLength`, `minItems`/`maxItems`, `minimum`/`maximum`, enum values; what JSON Schema
cannot say (time ranges, Struct depth, finiteness) is in the field's `description`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from buf.validate import validate_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from see_grpc import __version__
from see_grpc.transport.calls import is_open_method
from see_grpc.transport.rest.routes import JSON, STREAM_BODY_TYPES, Route, build_routes
from see_grpc.transport.services import PROTO_FILES
from see_grpc.transport.validation import MAX_STRUCT_DEPTH

_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_INT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_SINT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
}
_STRUCT_LIMITS = f"At most {MAX_STRUCT_DEPTH} levels of nesting; numbers finite."
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string"},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True, "description": _STRUCT_LIMITS},
    "google.protobuf.Value": {"description": _STRUCT_LIMITS},
    "google.protobuf.Any": {"type": "object", "additionalProperties": True},
}
# buf.validate rules this generator turns into schema keywords; any other rule stops generation (see _checked).
_NUMBER_RULES = {"double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64"}
_SUPPORTED_RULES = {
    "required",
    "string",
    "repeated",
    "enum",
    "timestamp",
    *_NUMBER_RULES,
    "string.min_len",
    "string.max_len",
    "string.in",
    "repeated.min_items",
    "repeated.max_items",
    "repeated.items",
    "enum.defined_only",
    *(f"timestamp.{bound}" for bound in ("gt", "gte", "lt", "lte")),
    *(f"{kind}.{bound}" for kind in _NUMBER_RULES for bound in ("gt", "gte", "lt", "lte", "finite")),
}
HTTP_BODY = "google.api.HttpBody"
_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "code": {"type": "integer", "description": "gRPC status code number"},
        "message": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
    },
}


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {"Status": _ERROR_SCHEMA}

    def ref(self, descriptor: Descriptor) -> dict[str, Any]:
        if descriptor.full_name in _WELL_KNOWN:
            return _WELL_KNOWN[descriptor.full_name]
        name = descriptor.full_name
        if name not in self.components:
            self.components[name] = {}  # placeholder first: messages may refer to themselves
            self.components[name] = self._message(descriptor)
        return {"$ref": f"#/components/schemas/{name}"}

    def _message(self, descriptor: Descriptor, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
        fields = [f for f in descriptor.fields if f.name not in skip]
        schema: dict[str, Any] = {"type": "object", "properties": {f.name: self.field(f) for f in fields}}
        required = [f.name for f in fields if rules_of(f).required]
        if required:
            schema["required"] = required
        return schema

    def ref_status(self) -> dict[str, Any]:
        return {"$ref": "#/components/schemas/Status"}

    def body(self, descriptor: Descriptor, path_fields: frozenset[str]) -> dict[str, Any]:
        return self._message(descriptor, path_fields)

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            return {"type": "object", "additionalProperties": self.field(field.message_type.fields_by_name["value"])}
        rules = rules_of(field)
        if not field.is_repeated:
            return self._single(field, rules)
        schema: dict[str, Any] = {"type": "array", "items": self._single(field, rules.repeated.items)}
        if rules.repeated.HasField("min_items"):
            schema["minItems"] = rules.repeated.min_items
        if rules.repeated.HasField("max_items"):
            schema["maxItems"] = rules.repeated.max_items
        return schema

    def _single(self, field: FieldDescriptor, rules: validate_pb2.FieldRules) -> dict[str, Any]:
        """The schema of one value of the field, with the bounds its rules set."""
        if field.message_type is not None:
            schema = self.ref(field.message_type)
            return {**schema, "description": _time_range(rules.timestamp)} if rules.HasField("timestamp") else schema
        if field.enum_type is not None:
            return _enum(field.enum_type, exclude_unspecified=rules.required)
        schema = dict(_SCALARS[field.type])
        kind = rules.WhichOneof("type")
        if kind == "string":
            schema.update(_string_bounds(rules.string))
        elif kind in _NUMBER_RULES:
            schema.update(_number_bounds(getattr(rules, kind)))
        return schema


def rules_of(field: FieldDescriptor) -> validate_pb2.FieldRules:
    """The field's buf.validate rules (empty when it has none); refuses rules this generator cannot express."""
    rules: validate_pb2.FieldRules = field.GetOptions().Extensions[validate_pb2.field]
    check_translatable(rules, field.full_name)
    return rules


def check_translatable(rules: validate_pb2.FieldRules, where: str) -> None:
    """A rule the document would leave out must stop generation, not vanish from what clients are told."""
    unsupported = sorted(set(_rule_names(rules)) - _SUPPORTED_RULES)
    if unsupported:
        raise ValueError(f"{where}: OpenAPI generation does not translate the rules {unsupported}")


def _rule_names(rules: Message, prefix: str = "") -> list[str]:
    names: list[str] = []
    for field, value in rules.ListFields():
        name = f"{prefix}{field.name}"
        names.append(name)
        if field.message_type is not None and not prefix:  # one level: "string.max_len", not deeper
            names += _rule_names(value, f"{name}.")
    return names


def _string_bounds(rules: validate_pb2.StringRules) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    if rules.HasField("min_len"):
        bounds["minLength"] = rules.min_len
    if rules.HasField("max_len"):
        bounds["maxLength"] = rules.max_len
    allowed = getattr(rules, "in")  # "in" is a Python keyword: no attribute syntax for it
    if allowed:
        bounds["enum"] = list(allowed)
    return bounds


def _number_bounds(rules: Message) -> dict[str, Any]:
    """OpenAPI 3.0 keywords: exclusiveMinimum and exclusiveMaximum are booleans beside minimum and maximum."""
    bounds: dict[str, Any] = {}
    for rule, keyword, exclusive in (
        ("gt", "minimum", "exclusiveMinimum"),
        ("gte", "minimum", ""),
        ("lt", "maximum", "exclusiveMaximum"),
        ("lte", "maximum", ""),
    ):
        if rules.HasField(rule):
            bounds[keyword] = _number(getattr(rules, rule))
            if exclusive:
                bounds[exclusive] = True
    return bounds


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _time_range(rules: Message) -> str:
    phrases = [
        f"{words} {datetime.fromtimestamp(getattr(rules, rule).seconds, UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"
        for rule, words in (("gt", "after"), ("gte", "at or after"), ("lt", "before"), ("lte", "at or before"))
        if rules.HasField(rule)
    ]
    text = " and ".join(phrases)
    return f"{text[:1].upper()}{text[1:]}." if text else ""


def _enum(descriptor: EnumDescriptor, *, exclude_unspecified: bool) -> dict[str, Any]:
    """The values a request may use: every defined one (numbers outside them are refused), less 0 when required."""
    names = [value.name for value in descriptor.values if not (exclude_unspecified and value.number == 0)]
    return {"type": "string", "enum": names}


def _operation(route: Route, schemas: _Schemas) -> dict[str, Any]:
    method = route.method
    path_fields = frozenset(v.split(".")[0] for v in route.variables)
    operation: dict[str, Any] = {
        "operationId": f"{method.containing_service.name}_{method.name}",
        "tags": [method.containing_service.name],
        "parameters": [
            {"name": v, "in": "path", "required": True, "schema": _path_schema(method.input_type, v)}
            for v in route.variables
        ],
    }
    if route.body == "*":
        body_schema = schemas.body(method.input_type, path_fields)
    elif route.body:
        body_schema = schemas.field(method.input_type.fields_by_name[route.body])
    if route.body:
        types = STREAM_BODY_TYPES if method.client_streaming else (JSON,)
        operation["requestBody"] = {"required": True, "content": {t: {"schema": body_schema} for t in types}}
        if method.client_streaming:
            operation["requestBody"]["description"] = "Newline-delimited JSON: one request message a line."
    else:
        operation["parameters"] += [
            {"name": f.name, "in": "query", "required": False, "schema": schemas.field(f)}
            for f in method.input_type.fields
            if f.name not in path_fields and f.message_type is None
        ]
    operation["responses"] = {
        "200": _success(route, schemas),
        "default": {"description": "An error", "content": _json_content(schemas.ref_status())},
    }
    if is_open_method(route.grpc_method):
        operation["security"] = []
    return operation


def _path_schema(request: Descriptor, variable: str) -> dict[str, Any]:
    """A path variable is a non-empty string, bounded like the field it fills."""
    descriptor: Descriptor | None = request
    field: FieldDescriptor | None = None
    for name in variable.split("."):
        assert descriptor is not None, variable
        field = descriptor.fields_by_name[name]
        descriptor = field.message_type
    assert field is not None
    return {"type": "string", "minLength": 1, **_string_bounds(rules_of(field).string)}


def _success(route: Route, schemas: _Schemas) -> dict[str, Any]:
    method = route.method
    output = method.output_type
    answered = output.fields_by_name[route.response_body].message_type if route.response_body else output
    if answered is not None and answered.full_name == HTTP_BODY:
        # Served raw by the REST shim: the bytes in the content type the server picks (e.g. text/html), no JSON.
        return {"description": "OK", "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}
    schema = schemas.field(output.fields_by_name[route.response_body]) if route.response_body else schemas.ref(output)
    if method.server_streaming:
        schema = {"type": "object", "properties": {"result": schema, "error": schemas.ref_status()}}
        return {"description": "A stream of newline-delimited JSON objects", "content": _json_content(schema)}
    return {"description": "OK", "content": _json_content(schema)}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {JSON: {"schema": schema}}


def build_openapi() -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for route in build_routes(PROTO_FILES):
        paths.setdefault(route.template, {})[route.http_method.lower()] = _operation(route, schemas)
    return {
        "openapi": "3.0.3",
        "info": {"title": "SEE, the Strategy Execution Engine", "version": __version__},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
        "security": [{"ApiKey": []}],
    }

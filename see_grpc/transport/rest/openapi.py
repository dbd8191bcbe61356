"""OpenAPI 3 document of the REST routes, derived from the same descriptors as the routes themselves."""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from see_grpc import __version__
from see_grpc.transport.calls import is_open_method
from see_grpc.transport.rest.routes import Route, build_routes
from see_grpc.transport.services import PROTO_FILES

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
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string"},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.Any": {"type": "object", "additionalProperties": True},
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
        properties = {f.name: self.field(f) for f in descriptor.fields if f.name not in skip}
        return {"type": "object", "properties": properties}

    def ref_status(self) -> dict[str, Any]:
        return {"$ref": "#/components/schemas/Status"}

    def body(self, descriptor: Descriptor, path_fields: frozenset[str]) -> dict[str, Any]:
        return self._message(descriptor, path_fields)

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            return {"type": "object", "additionalProperties": self.field(field.message_type.fields_by_name["value"])}
        if field.message_type is not None:
            schema = self.ref(field.message_type)
        elif field.enum_type is not None:
            schema = _enum(field.enum_type)
        else:
            schema = dict(_SCALARS[field.type])
        if field.is_repeated:
            return {"type": "array", "items": schema}
        return schema


def _enum(descriptor: EnumDescriptor) -> dict[str, Any]:
    return {"type": "string", "enum": [value.name for value in descriptor.values]}


def _operation(route: Route, schemas: _Schemas) -> dict[str, Any]:
    method = route.method
    path_fields = frozenset(v.split(".")[0] for v in route.variables)
    operation: dict[str, Any] = {
        "operationId": f"{method.containing_service.name}_{method.name}",
        "tags": [method.containing_service.name],
        "parameters": [
            {"name": v, "in": "path", "required": True, "schema": {"type": "string"}} for v in route.variables
        ],
    }
    if route.body == "*":
        body_schema = schemas.body(method.input_type, path_fields)
    elif route.body:
        body_schema = schemas.field(method.input_type.fields_by_name[route.body])
    if route.body:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body_schema}}}
    else:
        operation["parameters"] += [
            {"name": f.name, "in": "query", "required": False, "schema": schemas.field(f)}
            for f in method.input_type.fields
            if f.name not in path_fields and f.message_type is None
        ]
    operation["responses"] = {
        "200": _success(route, schemas),
        "default": {"description": "An error", "content": {"application/json": {"schema": schemas.ref_status()}}},
    }
    if is_open_method(route.grpc_method):
        operation["security"] = []
    return operation


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
    return {"application/json": {"schema": schema}}


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

"""HTTP routes derived from the google.api.http annotations of the service descriptors.

Follows grpc-gateway's template grammar: literal segments, `{field.path}` and `{field=pattern/*}` variables,
`*` and `**` wildcards, and a trailing custom verb (`:stop`). An annotated RPC gets a route with no other code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import FileDescriptor, MethodDescriptor

HTTP_METHODS = ("get", "put", "post", "delete", "patch")
JSON = "application/json"
# A client-streaming route takes one request message a line (newline-delimited JSON).
STREAM_BODY_TYPES = ("application/x-ndjson", JSON)


class TemplateError(ValueError):
    """An http annotation whose path template cannot be parsed."""


@dataclass(frozen=True)
class Route:
    http_method: str  # upper case
    template: str
    pattern: re.Pattern[str]
    variables: tuple[str, ...]  # field paths, in the order of the pattern's groups
    body: str  # "", "*" or a field name
    response_body: str
    method: MethodDescriptor

    @property
    def grpc_method(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(path)
        if found is None:
            return None
        return {field: unquote(value) for field, value in zip(self.variables, found.groups(), strict=True)}


def _segment_regex(segment: str) -> str:
    if segment == "*":
        return "[^/]+"
    if segment == "**":
        return ".+"
    if not re.fullmatch(r"[A-Za-z0-9._~\-]+", segment):
        raise TemplateError(f"unsupported literal segment {segment!r}")
    return re.escape(segment)


def compile_template(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """The regex of a path template and the field paths its groups capture."""
    if not template.startswith("/"):
        raise TemplateError(f"template {template!r} must start with '/'")
    path, verb = template, ""
    tail = template.rsplit("/", 1)[-1]
    if ":" in tail.rsplit("}", 1)[-1]:
        path, verb = template.rsplit(":", 1)
    parts: list[str] = []
    variables: list[str] = []
    for token in re.split(r"/(?![^{]*\})", path[1:]):
        variable = re.fullmatch(r"\{([A-Za-z_][\w.]*)(?:=([^}]+))?\}", token)
        if variable:
            variables.append(variable.group(1))
            inner = variable.group(2) or "*"
            parts.append("(" + "/".join(_segment_regex(s) for s in inner.split("/")) + ")")
        else:
            parts.append(_segment_regex(token))
    regex = "/" + "/".join(parts) + (":" + re.escape(verb) if verb else "")
    return re.compile(regex), tuple(variables)


def _routes_of(method: MethodDescriptor, rule: http_pb2.HttpRule) -> list[Route]:
    routes: list[Route] = []
    kind = rule.WhichOneof("pattern")
    if kind in HTTP_METHODS:
        verb, template = kind.upper(), getattr(rule, kind)
    elif kind == "custom":
        verb, template = rule.custom.kind.upper(), rule.custom.path
    else:
        raise TemplateError(f"{method.full_name}: http rule without a pattern")
    pattern, variables = compile_template(template)
    routes.append(Route(verb, template, pattern, variables, rule.body, rule.response_body, method))
    for extra in rule.additional_bindings:
        routes.extend(_routes_of(method, extra))
    return routes


def build_routes(files: list[FileDescriptor]) -> list[Route]:
    """Every annotated method of every service in the files, literal-heavy templates first."""
    routes: list[Route] = []
    for file in files:
        for service in file.services_by_name.values():
            for method in service.methods:
                options = method.GetOptions()
                if options.HasExtension(annotations_pb2.http):
                    routes.extend(_routes_of(method, options.Extensions[annotations_pb2.http]))
    # More specific (fewer variables, longer) templates win, as in grpc-gateway's mux.
    return sorted(routes, key=lambda r: (len(r.variables), -len(r.template)))

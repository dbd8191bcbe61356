"""Offline checks of the Helm chart in helm/see: no helm CLI and no cluster exist here.

`helm template` and `helm lint` are replaced by three steps:

1. Render. The values (values.yaml plus --set style overrides) are checked against values.schema.json, as Helm
   does. A small renderer of exactly the Go-template subset the chart uses (TEMPLATE_SUBSET below) renders the
   templates. Anything else is refused with file and line, so a construct it does not understand can never pass
   silently. It is stricter than Helm: a value that is not set is an error where Helm would render "".
2. Validate. Every rendered document is parsed as YAML (duplicate keys refused) and validated with
   kubernetes_validate's strict schemas (unknown fields rejected) for the pinned Kubernetes versions.
3. Project checks: Chart.yaml, gRPC probes on the grpc port, both ports on the Service, no secret values anywhere,
   every variable the service reads (see_grpc/config.py) provided by the ConfigMap or a secret reference,
   consistency with the Dockerfile, and that the optional objects follow their switches.

The chart is rendered as several variants: the defaults, plus --set style overrides that switch everything on.

    python tools/helm_check.py [--chart DIR] [--set KEY=VALUE ...] [--show]

Exit status 0 when every check passes, 1 when one fails.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import re
import sys
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import jsonschema  # type: ignore[import-untyped,unused-ignore]
import kubernetes_validate
import kubernetes_validate.utils
import yaml  # type: ignore[import-untyped,unused-ignore]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CHART = ROOT / "helm" / "see"
CONFIG_MODULE = ROOT / "see_grpc" / "config.py"
PYPROJECT = ROOT / "pyproject.toml"
DOCKERFILE = ROOT / "Dockerfile"

# The oldest Kubernetes minor the chart supports and the newest one kubernetes-validate 1.37.0 ships schemas for.
K8S_VERSIONS = ("1.30", "1.37")

TEMPLATE_SUBSET = (
    "{{ pipeline }}, {{- and -}} trim markers, {{/* comments */}}; "
    'if / else / end; range $key, $value := <map or list> / end; define "name" / end (in _*.tpl only); '
    'terms: . .Field.Path $ $.Path $var $var.Path "string" 123 true false; '
    "functions: include, quote, default, toYaml, nindent, printf (%s %d %v), trunc, trimSuffix, contains, not, "
    "eq (two values of one basic type)"
)

# The variables the platform's service docs and the contract name (see_grpc/config.py adds SEE's own).
CONTRACT_VARIABLES = frozenset(
    {
        "LOG_LEVEL",
        "DEBUG_MODE",
        "HOST",
        "PORT",
        "GRPC_PORT",
        "API_KEY",
        "SERVICE_API_KEY",
        "ANALYSIS_ENGINE_URL",
        "FEATURE_STORE_URL",
        "TRADING_GATEWAY_URL",
        "RISK_MANAGEMENT_URL",
        "PORTFOLIO_MANAGEMENT_URL",
        "MONITORING_SERVICE_URL",
        "REDIS_URL",
        "REDIS_PASSWORD",
        "DATABASE_URL",
        "MAX_CONCURRENT_STRATEGIES",
        "STRATEGIES_DIR",
        "BACKTEST_DATA_DIR",
        "DATA_DIR",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "SHUTDOWN_GRACE_SECONDS",
    }
)
SECRET_VARIABLES = frozenset({"API_KEY", "SERVICE_API_KEY", "REDIS_PASSWORD", "DATABASE_URL", "OANDA_API_TOKEN"})
SECRET_LIKE_NAME = re.compile(r"(?i)(password|passwd|secret|token|api_?key|credential)")
URL_WITH_PASSWORD = re.compile(r"://[^/@\s:]*:[^/@\s]+@")  # redis://:pw@host too
TMP_DIR = "/tmp"  # noqa: S108 - only compared with the mount paths in the rendered Deployment
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
COMPONENT = "app.kubernetes.io/component"
DASK_COMPONENTS = ("dask-scheduler", "dask-worker")
SEMVER = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


T = TypeVar("T")


class TemplateError(Exception):
    """A construct outside the supported subset, or a template that Helm would fail on or render differently."""


class CheckError(Exception):
    """The rendered chart is not shaped as a check expects (e.g. no Deployment at all)."""


# ---------------------------------------------------------------------------------------------------------------------
# Lexing: text and {{ actions }}, with Go's trim markers applied.


@dataclass(frozen=True)
class Action:
    body: str
    trim_left: bool
    trim_right: bool
    where: str


Piece = str | Action


def lex(source: str, name: str) -> list[Piece]:
    """Split a template into text and actions, alternating (text first and last, possibly empty)."""
    pieces: list[Piece] = []
    position = 0
    while (start := source.find("{{", position)) >= 0:
        where = f"{name}:{source.count(chr(10), 0, start) + 1}"
        end = source.find("}}", start + 2)
        if end < 0:
            raise TemplateError(f"{where}: '{{{{' is never closed")
        pieces.append(source[position:start])
        pieces.append(parse_action(source[start + 2 : end], where))
        position = end + 2
    pieces.append(source[position:])
    return apply_trim_markers(pieces)


def parse_action(inner: str, where: str) -> Action:
    trim_left = inner.startswith("-")
    if trim_left:
        if not inner[1:2].isspace():
            raise TemplateError(f"{where}: write '{{{{- ' with a space after the dash")
        inner = inner[1:]
    trim_right = inner.endswith("-")
    if trim_right:
        if not inner[-2:-1].isspace():
            raise TemplateError(f"{where}: write ' -}}}}' with a space before the dash")
        inner = inner[:-1]
    body = inner.strip()
    if not body:
        raise TemplateError(f"{where}: empty action")
    return Action(body, trim_left, trim_right, where)


def apply_trim_markers(pieces: list[Piece]) -> list[Piece]:
    """'{{-' removes all white space before the action, '-}}' all white space after it (as in Go)."""
    result = list(pieces)
    for index, piece in enumerate(result):
        if not isinstance(piece, Action):
            continue
        before, after = result[index - 1], result[index + 1]
        if piece.trim_left and isinstance(before, str):
            result[index - 1] = before.rstrip(" \t\r\n")
        if piece.trim_right and isinstance(after, str):
            result[index + 1] = after.lstrip(" \t\r\n")
    return result


# ---------------------------------------------------------------------------------------------------------------------
# Pipelines: `term`, `function arg ...`, joined by `|` (the value on the left becomes the last argument).


@dataclass(frozen=True)
class Const:
    value: object


@dataclass(frozen=True)
class FieldRef:
    base: str  # "." (dot), "$" (the root) or "$name" (a range variable)
    path: tuple[str, ...]


@dataclass(frozen=True)
class FuncName:
    name: str


Term = Const | FieldRef | FuncName
Command = tuple[Term, ...]


@dataclass(frozen=True)
class Pipeline:
    commands: tuple[Command, ...]
    text: str
    where: str


TERM_PATTERN = re.compile(
    r"""(?P<string>"(?:[^"\\\n]|\\.)*")
      | (?P<pipe>\|)
      | (?P<number>-?\d+)
      | (?P<var>\$(?:[A-Za-z_]\w*)?)(?P<varpath>(?:\.[A-Za-z_]\w*)*)
      | (?P<field>(?:\.[A-Za-z_]\w*)+|\.)
      | (?P<ident>[A-Za-z_]\w*)""",
    re.VERBOSE,
)


def tokenize_pipeline(text: str, where: str) -> Iterator[Term | None]:
    """Terms of a pipeline; None stands for `|`. Anything else (parentheses, `:=`, floats ...) is refused."""
    position = 0
    while position < len(text):
        if text[position].isspace():
            position += 1
            continue
        match = TERM_PATTERN.match(text, position)
        ends_badly = match is not None and match.lastgroup != "pipe" and not ends_term(text, match.end())
        if match is None or ends_badly:
            raise TemplateError(f"{where}: cannot read {text[position:]!r} in {{{{ {text} }}}} ({TEMPLATE_SUBSET})")
        position = match.end()
        yield term_from_match(match, where)


def ends_term(text: str, position: int) -> bool:
    return position == len(text) or text[position] in " \t\r\n|"


def term_from_match(match: re.Match[str], where: str) -> Term | None:
    kind = match.lastgroup if match.lastgroup != "varpath" else "var"
    word = match.group(0)
    if kind == "pipe":
        return None
    if kind == "string":
        try:
            return Const(json.loads(word))
        except json.JSONDecodeError:
            raise TemplateError(f"{where}: unsupported escape in string {word}") from None
    if kind == "number":
        return Const(int(word))
    if kind == "var":
        base, path = match.group("var"), match.group("varpath")
        return FieldRef(base, tuple(path.split(".")[1:]))
    if kind == "field":
        return FieldRef(".", tuple(word.split(".")[1:]) if word != "." else ())
    if word in ("true", "false"):
        return Const(word == "true")
    if word not in FUNCTIONS and word != "include":
        raise TemplateError(f"{where}: unknown function or keyword {word!r} ({TEMPLATE_SUBSET})")
    return FuncName(word)


def parse_pipeline(text: str, where: str) -> Pipeline:
    commands: list[Command] = []
    current: list[Term] = []
    for term in [*tokenize_pipeline(text, where), None]:
        if term is not None:
            current.append(term)
            continue
        if not current:
            raise TemplateError(f"{where}: empty command in {{{{ {text} }}}}")
        commands.append(check_command(tuple(current), first=not commands, where=where))
        current = []
    return Pipeline(tuple(commands), text, where)


def check_command(command: Command, *, first: bool, where: str) -> Command:
    head, args = command[0], command[1:]
    if isinstance(head, FuncName):
        if any(isinstance(arg, FuncName) for arg in args):
            raise TemplateError(f"{where}: a function as an argument needs parentheses, which are not supported")
        return command
    if args:
        raise TemplateError(f"{where}: {head} is a value, not a function; it cannot take arguments")
    if not first:
        raise TemplateError(f"{where}: cannot pipe into a value")
    return command


# ---------------------------------------------------------------------------------------------------------------------
# Parsing: a tree of text, output, if and range nodes; define blocks collected apart.


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Output:
    pipeline: Pipeline


@dataclass(frozen=True)
class If:
    condition: Pipeline
    then: tuple[Node, ...]
    otherwise: tuple[Node, ...]


@dataclass(frozen=True)
class Range:
    key: str
    value: str
    source: Pipeline
    body: tuple[Node, ...]


Node = Text | Output | If | Range

COMMENT = re.compile(r"^/\*.*\*/$", re.DOTALL)
IF = re.compile(r"^if\s+(.+)$", re.DOTALL)
RANGE = re.compile(r"^range\s+\$([A-Za-z_]\w*)\s*,\s*\$([A-Za-z_]\w*)\s*:=\s*(.+)$", re.DOTALL)
DEFINE = re.compile(r'^define\s+"([^"]+)"$')
UNSUPPORTED = re.compile(r"^(else\s+\S|with\b|block\b|template\b|range\b|break\b|continue\b|define\b|\$\w*\s*:?=)")


@dataclass
class Parser:
    pieces: list[Piece]
    position: int = 0
    defines: dict[str, tuple[Node, ...]] = field(default_factory=dict)

    def parse_file(self, *, helpers: bool) -> tuple[Node, ...]:
        nodes = self.parse_block(stop=(), top_level=True)
        if helpers and any(not (isinstance(node, Text) and not node.text.strip()) for node in nodes):
            raise TemplateError("a _*.tpl file may hold only define blocks and comments")
        if not helpers and self.defines:
            raise TemplateError("define blocks belong in a _*.tpl file")
        return nodes

    def parse_block(self, stop: tuple[str, ...], top_level: bool = False) -> tuple[Node, ...]:
        nodes: list[Node] = []
        while self.position < len(self.pieces):
            piece = self.pieces[self.position]
            self.position += 1
            if isinstance(piece, str):
                if piece:
                    nodes.append(Text(piece))
                continue
            if piece.body in ("end", "else"):
                if piece.body not in stop:
                    raise TemplateError(f"{piece.where}: unexpected {{{{ {piece.body} }}}}")
                self.position -= 1
                return tuple(nodes)
            node = self.parse_action(piece, top_level)
            if node is not None:
                nodes.append(node)
        if stop:
            raise TemplateError(f"missing {{{{ end }}}} (expected one of {stop})")
        return tuple(nodes)

    def parse_action(self, action: Action, top_level: bool) -> Node | None:
        body, where = action.body, action.where
        if COMMENT.match(body):
            return None
        if match := DEFINE.match(body):
            if not top_level:
                raise TemplateError(f"{where}: define inside another block")
            self.defines[match.group(1)] = self.parse_until_end(where)
            return None
        if match := IF.match(body):
            return self.parse_if(parse_pipeline(match.group(1), where), where)
        if match := RANGE.match(body):
            source = parse_pipeline(match.group(3), where)
            return Range(match.group(1), match.group(2), source, self.parse_until_end(where))
        if UNSUPPORTED.match(body):
            raise TemplateError(f"{where}: {{{{ {body} }}}} is outside the supported subset ({TEMPLATE_SUBSET})")
        return Output(parse_pipeline(body, where))

    def parse_if(self, condition: Pipeline, where: str) -> If:
        then = self.parse_block(stop=("else", "end"))
        otherwise: tuple[Node, ...] = ()
        if self.take() == "else":
            otherwise = self.parse_until_end(where)
        return If(condition, then, otherwise)

    def parse_until_end(self, where: str) -> tuple[Node, ...]:
        nodes = self.parse_block(stop=("end",))
        if self.take() != "end":
            raise TemplateError(f"{where}: block is never closed with {{{{ end }}}}")
        return nodes

    def take(self) -> str:
        """Consume the else/end action parse_block stopped at."""
        piece = self.pieces[self.position]
        self.position += 1
        return piece.body if isinstance(piece, Action) else ""


# ---------------------------------------------------------------------------------------------------------------------
# Values and functions, with Helm's (Go's and sprig's) semantics for the supported subset.


class _Missing:
    def __repr__(self) -> str:
        return "<not set>"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Builtin:
    """.Release, .Chart and the root: a missing field is an error, as on a Go struct (unlike .Values, a map)."""

    name: str
    fields: Mapping[str, Any]


def is_empty(value: Any) -> bool:
    """sprig's `empty` and Go's template truth: nil, false, 0, "" and empty collections are empty."""
    if value is MISSING or value is None:
        return True
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value == 0
    if isinstance(value, str | dict | list):
        return len(value) == 0
    return False


def go_number(value: float, where: str) -> str:
    """How Go prints a number from values.yaml (a float64): refuse what Helm would print as 1e+06."""
    number = float(value)
    if number != 0 and not 1e-4 <= abs(number) < 1e6:
        raise TemplateError(f"{where}: Helm prints {value} in exponent form; quote it in values.yaml")
    return str(int(number)) if number.is_integer() else repr(number)


def to_text(value: Any, where: str, what: str) -> str:
    if value is MISSING or value is None:
        raise TemplateError(f"{where}: {what} is not set (Helm would render it empty); set it in values.yaml")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return go_number(value, where)
    if isinstance(value, str):
        return value
    raise TemplateError(f"{where}: {what} is a {type(value).__name__}; render collections with toYaml")


def expect(args: Sequence[Any], count: int, name: str, where: str) -> Sequence[Any]:
    if len(args) != count:
        raise TemplateError(f"{where}: {name} takes {count} argument(s), got {len(args)}")
    return args


def expect_type(value: Any, kind: type[T], name: str, where: str) -> T:
    if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
        raise TemplateError(f"{where}: {name} needs a {kind.__name__}, got {value!r}")
    return value


def fn_quote(args: Sequence[Any], where: str) -> str:
    (value,) = expect(args, 1, "quote", where)
    return json.dumps(to_text(value, where, "the quoted value"), ensure_ascii=False)


def fn_default(args: Sequence[Any], where: str) -> Any:
    fallback, given = expect(args, 2, "default", where)
    return fallback if is_empty(given) else given


def normalise(value: Any) -> Any:
    """Helm turns values.yaml numbers into float64 and toYaml prints integral ones without a fraction."""
    if isinstance(value, dict):
        return {key: normalise(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalise(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def fn_to_yaml(args: Sequence[Any], where: str) -> str:
    (value,) = expect(args, 1, "toYaml", where)
    if not isinstance(value, dict | list):
        raise TemplateError(f"{where}: toYaml of {value!r}: only maps and lists are supported (use quote)")
    dumped: str = yaml.safe_dump(normalise(value), default_flow_style=False, sort_keys=True, allow_unicode=True)
    return dumped.rstrip("\n")


def fn_nindent(args: Sequence[Any], where: str) -> str:
    spaces, text = expect(args, 2, "nindent", where)
    pad = " " * expect_type(spaces, int, "nindent's width", where)
    return "\n" + pad + expect_type(text, str, "nindent's text", where).replace("\n", "\n" + pad)


def fn_printf(args: Sequence[Any], where: str) -> str:
    if not args:
        raise TemplateError(f"{where}: printf needs a format")
    fmt, values = expect_type(args[0], str, "printf's format", where), list(args[1:])
    verbs = re.findall(r"%(.)", fmt)
    if any(verb not in "sdv" for verb in verbs) or len(verbs) != len(values):
        raise TemplateError(f"{where}: printf {fmt!r} with {len(values)} argument(s): only %s %d %v, one each")
    parts = iter(values)

    def one(match: re.Match[str]) -> str:
        value = next(parts)
        if match.group(1) == "s":
            return expect_type(value, str, "printf %s", where)
        if match.group(1) == "d":
            return str(expect_type(value, int, "printf %d", where))
        return to_text(value, where, "printf's argument")

    return re.sub(r"%(.)", one, fmt)


def fn_trunc(args: Sequence[Any], where: str) -> str:
    length, text = expect(args, 2, "trunc", where)
    if expect_type(length, int, "trunc's length", where) < 0:
        raise TemplateError(f"{where}: trunc with a negative length is not supported")
    return expect_type(text, str, "trunc's text", where)[:length]


def fn_trim_suffix(args: Sequence[Any], where: str) -> str:
    suffix, text = (expect_type(arg, str, "trimSuffix", where) for arg in expect(args, 2, "trimSuffix", where))
    return text[: -len(suffix)] if suffix and text.endswith(suffix) else text


def fn_contains(args: Sequence[Any], where: str) -> bool:
    part, text = (expect_type(arg, str, "contains", where) for arg in expect(args, 2, "contains", where))
    return part in text


def fn_not(args: Sequence[Any], where: str) -> bool:
    (value,) = expect(args, 1, "not", where)
    return is_empty(value)


def fn_eq(args: Sequence[Any], where: str) -> bool:
    left, right = expect(args, 2, "eq", where)

    def kind(value: Any) -> str:
        if isinstance(value, bool):
            return "bool"
        if isinstance(value, int | float):
            return "number"
        if isinstance(value, str):
            return "string"
        raise TemplateError(f"{where}: eq compares strings, numbers or booleans, not {value!r}")

    if kind(left) != kind(right):  # Go's text/template refuses these too ("incompatible types for comparison")
        raise TemplateError(f"{where}: eq of {left!r} and {right!r}: incompatible types")
    return bool(left == right)


FUNCTIONS: dict[str, Callable[[Sequence[Any], str], Any]] = {
    "quote": fn_quote,
    "default": fn_default,
    "toYaml": fn_to_yaml,
    "nindent": fn_nindent,
    "printf": fn_printf,
    "trunc": fn_trunc,
    "trimSuffix": fn_trim_suffix,
    "contains": fn_contains,
    "not": fn_not,
    "eq": fn_eq,
}


# ---------------------------------------------------------------------------------------------------------------------
# Evaluation.


@dataclass(frozen=True)
class Scope:
    dot: Any
    root: Any
    variables: Mapping[str, Any]


@dataclass
class Renderer:
    defines: dict[str, tuple[Node, ...]]
    depth: int = 0

    def render(self, nodes: Sequence[Node], scope: Scope) -> str:
        return "".join(self.render_node(node, scope) for node in nodes)

    def render_node(self, node: Node, scope: Scope) -> str:
        if isinstance(node, Text):
            return node.text
        if isinstance(node, Output):
            value = self.evaluate(node.pipeline, scope)
            return to_text(value, node.pipeline.where, repr(node.pipeline.text))
        if isinstance(node, If):
            chosen = node.otherwise if is_empty(self.evaluate(node.condition, scope)) else node.then
            return self.render(chosen, scope)
        return self.render_range(node, scope)

    def render_range(self, node: Range, scope: Scope) -> str:
        source = self.evaluate(node.source, scope)
        if source is MISSING or source is None:
            return ""
        if isinstance(source, dict):
            items: list[tuple[Any, Any]] = sorted(source.items())  # Go ranges over a map in key order
        elif isinstance(source, list):
            items = list(enumerate(source))
        else:
            raise TemplateError(f"{node.source.where}: cannot range over {source!r}")
        parts = []
        for key, value in items:
            variables = {**scope.variables, node.key: key, node.value: value}
            parts.append(self.render(node.body, Scope(value, scope.root, variables)))
        return "".join(parts)

    def evaluate(self, pipeline: Pipeline, scope: Scope) -> Any:
        value: Any = MISSING
        for index, command in enumerate(pipeline.commands):
            head = command[0]
            if not isinstance(head, FuncName):
                value = self.term(head, scope, pipeline.where)
                continue
            args = [self.term(arg, scope, pipeline.where) for arg in command[1:]]
            if index > 0:
                args.append(value)
            value = self.call(head.name, args, pipeline.where)
        return value

    def term(self, term: Term, scope: Scope, where: str) -> Any:
        if isinstance(term, Const):
            return term.value
        if isinstance(term, FuncName):
            raise TemplateError(f"{where}: function {term.name} used as a value")
        if term.base == ".":
            start = scope.dot
        elif term.base == "$":
            start = scope.root
        elif term.base[1:] in scope.variables:
            start = scope.variables[term.base[1:]]
        else:
            raise TemplateError(f"{where}: undefined variable {term.base}")
        return lookup(start, term, where)

    def call(self, name: str, args: list[Any], where: str) -> Any:
        if name == "include":
            return self.include(args, where)
        return FUNCTIONS[name](args, where)

    def include(self, args: Sequence[Any], where: str) -> str:
        name, context = expect(args, 2, "include", where)
        if name not in self.defines:
            raise TemplateError(f"{where}: no template named {name!r}")
        if self.depth > 20:
            raise TemplateError(f"{where}: include nested too deeply (a loop?)")
        self.depth += 1
        try:
            return self.render(self.defines[name], Scope(context, context, {}))
        finally:
            self.depth -= 1


def lookup(value: Any, ref: FieldRef, where: str) -> Any:
    walked = ref.base
    for key in ref.path:
        if isinstance(value, Builtin):
            if key not in value.fields:
                raise TemplateError(f"{where}: {walked} ({value.name}) has no field {key}")
            value = value.fields[key]
        elif isinstance(value, dict):
            value = value.get(key, MISSING)
        elif value is MISSING or value is None:
            raise TemplateError(f"{where}: {walked} is not set, so {walked}.{key} fails (in Helm too)")
        else:
            raise TemplateError(f"{where}: cannot read field {key} of {walked}, a {type(value).__name__}")
        walked = f"{walked.rstrip('.')}.{key}"
    return value


# ---------------------------------------------------------------------------------------------------------------------
# The chart: loading, values with --set style overrides, rendering.


@dataclass(frozen=True)
class Chart:
    directory: Path
    metadata: dict[str, Any]
    values: dict[str, Any]
    values_schema: dict[str, Any]  # values.schema.json: Helm itself refuses values that do not match it
    templates: dict[str, str]  # "templates/deployment.yaml" -> source


@dataclass(frozen=True)
class Manifest:
    source: str
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("kind"))

    @property
    def name(self) -> str:
        return str(self.body.get("metadata", {}).get("name"))

    @property
    def title(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class Rendered:
    variant: str
    values: dict[str, Any]
    files: dict[str, str]
    manifests: list[Manifest]
    notes: str


def find_duplicate_keys(node: Any, where: str) -> list[str]:
    """PyYAML keeps the last of two equal keys silently; Kubernetes and Helm reject or mangle them."""
    problems: list[str] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                problems.append(f"{where}:{key_node.start_mark.line + 1}: duplicate key {key!r}")
            seen.add(key)
            problems.extend(find_duplicate_keys(value_node, where))
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            problems.extend(find_duplicate_keys(item, where))
    return problems


def load_yaml_documents(text: str, where: str) -> list[Any]:
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise TemplateError(f"{where}: not valid YAML: {exc}") from None
    problems = [problem for node in nodes for problem in find_duplicate_keys(node, where)]
    if problems:
        raise TemplateError("; ".join(problems))
    return documents


def load_mapping(path: Path) -> dict[str, Any]:
    documents = load_yaml_documents(path.read_text(encoding="utf-8"), str(path))
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise TemplateError(f"{path}: expected one YAML mapping")
    return documents[0]


def load_chart(directory: Path) -> Chart:
    templates: dict[str, str] = {}
    for path in sorted((directory / "templates").rglob("*")):
        if path.is_file():
            templates[path.relative_to(directory).as_posix()] = path.read_text(encoding="utf-8")
    schema = json.loads((directory / "values.schema.json").read_text(encoding="utf-8"))
    metadata, values = load_mapping(directory / "Chart.yaml"), load_mapping(directory / "values.yaml")
    return Chart(directory, metadata, values, schema, templates)


def parse_set_value(raw: str) -> Any:
    """Like `helm --set`: true/false, null and integers are typed; everything else is a string."""
    if raw in ("true", "false"):
        return raw == "true"
    if raw == "null":
        return None
    if re.fullmatch(r"-?[1-9]\d*|0", raw):
        return int(raw)
    return raw


def apply_override(values: dict[str, Any], assignment: str) -> None:
    key, separator, raw = assignment.partition("=")
    if not separator or not re.fullmatch(r"[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*", key):
        raise TemplateError(f"--set {assignment!r}: expected key.path=value (list indexes are not supported)")
    *parents, last = key.split(".")
    target = values
    for part in parents:
        child = target.setdefault(part, {})
        if not isinstance(child, dict):
            raise TemplateError(f"--set {assignment!r}: {part} is not a map")
        target = child
    value = parse_set_value(raw)
    if value is None:
        target.pop(last, None)  # Helm deletes a key set to null
    else:
        target[last] = value


def merged_values(chart: Chart, overrides: Sequence[str]) -> dict[str, Any]:
    """values.yaml with the overrides applied, refused (as by Helm) when they do not match values.schema.json."""
    values = copy.deepcopy(chart.values)
    for assignment in overrides:
        apply_override(values, assignment)
    validator = jsonschema.Draft7Validator(chart.values_schema)
    errors = sorted(validator.iter_errors(values), key=lambda error: str(list(error.absolute_path)))
    if errors:
        problems = [f"{'.'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}" for error in errors]
        raise TemplateError("values do not match values.schema.json: " + "; ".join(problems))
    return values


CHART_FIELDS = {"name": "Name", "version": "Version", "appVersion": "AppVersion", "description": "Description"}


def root_context(chart: Chart, values: dict[str, Any], release: str) -> Builtin:
    chart_fields = {go: chart.metadata.get(key, "") for key, go in CHART_FIELDS.items()}
    release_fields = {"Name": release, "Namespace": "default", "Service": "Helm", "IsInstall": True}
    return Builtin(
        "the root",
        {"Values": values, "Release": Builtin(".Release", release_fields), "Chart": Builtin(".Chart", chart_fields)},
    )


def parse_templates(chart: Chart) -> tuple[dict[str, tuple[Node, ...]], dict[str, tuple[Node, ...]]]:
    """Returns (define blocks from _*.tpl, parsed files to render)."""
    defines: dict[str, tuple[Node, ...]] = {}
    files: dict[str, tuple[Node, ...]] = {}
    for name, source in chart.templates.items():
        base = name.rsplit("/", 1)[-1]
        helpers = base.startswith("_")
        if not (helpers and base.endswith(".tpl")) and base != "NOTES.txt" and not base.endswith((".yaml", ".yml")):
            raise TemplateError(f"{name}: unexpected file in templates/ (expected *.yaml, _*.tpl or NOTES.txt)")
        parser = Parser(lex(source, name))
        try:
            nodes = parser.parse_file(helpers=helpers)
        except TemplateError as exc:
            raise (exc if str(exc).startswith(name) else TemplateError(f"{name}: {exc}")) from None
        for define, body in parser.defines.items():
            if define in defines:
                raise TemplateError(f"{name}: template {define!r} is defined twice")
            defines[define] = body
        if not helpers:
            files[name] = nodes
    return defines, files


def render_files(chart: Chart, values: dict[str, Any], release: str = "see") -> dict[str, str]:
    """Every template except the _*.tpl helpers, rendered as text (what `helm template` prints)."""
    defines, files = parse_templates(chart)
    root = root_context(chart, values, release)
    renderer = Renderer(defines)
    return {name: renderer.render(nodes, Scope(root, root, {})) for name, nodes in files.items()}


def render_chart(chart: Chart, overrides: Sequence[str] = (), release: str = "see", variant: str = "") -> Rendered:
    values = merged_values(chart, overrides)
    files = render_files(chart, values, release)
    manifests: list[Manifest] = []
    for name, text in files.items():
        if not name.endswith("NOTES.txt"):
            manifests.extend(manifests_from(text, name))
    notes = next((text for name, text in files.items() if name.endswith("NOTES.txt")), "")
    return Rendered(variant or "custom", values, files, manifests, notes)


def manifests_from(text: str, source: str) -> list[Manifest]:
    manifests = []
    for document in load_yaml_documents(text, source):
        if document is None:
            continue  # Helm drops empty documents (a template switched off)
        if not isinstance(document, dict) or not {"apiVersion", "kind", "metadata"} <= document.keys():
            raise TemplateError(f"{source}: a document without apiVersion, kind and metadata: {document!r}")
        manifests.append(Manifest(source, document))
    return manifests


# ---------------------------------------------------------------------------------------------------------------------
# Schema validation (kubernetes_validate, strict: unknown fields are errors).


def check_schema_versions(versions: Sequence[str]) -> list[str]:
    shipped = {kubernetes_validate.utils.major_minor(v) for v in kubernetes_validate.utils.all_versions()}
    return [f"kubernetes-validate ships no schemas for Kubernetes {v}" for v in versions if v not in shipped]


LABEL_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
# The Prometheus Operator's Duration (monitoring.coreos.com CRDs).
DURATION = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
}
# Custom resources kubernetes-validate ships no schema for: the part of their CRD's schema the chart may use, strict
# (anything else the chart renders is refused, as an unknown field would be).
CUSTOM_RESOURCE_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "ServiceMonitor"},
            "metadata": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "labels": LABEL_MAP, "annotations": LABEL_MAP},
            },
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["selector", "endpoints"],
                "properties": {
                    "selector": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"matchLabels": LABEL_MAP},
                    },
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["port"],
                            "properties": {
                                "port": {"type": "string"},
                                "path": {"type": "string", "pattern": "^/"},
                                "scheme": {"enum": ["http", "https"]},
                                "interval": DURATION,
                                "scrapeTimeout": DURATION,
                            },
                        },
                    },
                },
            },
        },
    },
}


def schema_problems(manifest: Manifest, versions: Sequence[str] = K8S_VERSIONS) -> list[str]:
    custom = CUSTOM_RESOURCE_SCHEMAS.get((str(manifest.body.get("apiVersion")), manifest.kind))
    if custom is not None:
        errors = jsonschema.Draft7Validator(custom).iter_errors(manifest.body)
        return [
            f"{manifest.title} ({manifest.source}): {'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}"
            for e in errors
        ]
    problems = []
    for version in versions:
        try:
            kubernetes_validate.validate(manifest.body, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            location = ".".join(str(part) for part in exc.path) or "(top level)"
            problems.append(f"{manifest.title} ({manifest.source}), Kubernetes {version}: {location}: {exc.message}")
        except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as exc:
            problems.append(f"{manifest.title} ({manifest.source}), Kubernetes {version}: {exc.message}")
    return problems


def check_schemas(rendered: Rendered) -> list[str]:
    return [problem for manifest in rendered.manifests for problem in schema_problems(manifest)]


# ---------------------------------------------------------------------------------------------------------------------
# Project checks. Each takes the rendered chart and returns problems (an empty list when all is well).


def objects(rendered: Rendered, kind: str) -> list[dict[str, Any]]:
    return [manifest.body for manifest in rendered.manifests if manifest.kind == kind]


def labels_of(body: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = body["metadata"].get("labels") or {}
    return labels


def single(rendered: Rendered, kind: str) -> dict[str, Any]:
    """The server's one object of a kind. The chart's add-ons (Dask) label theirs with app.kubernetes.io/component;
    the server's own objects have no component."""
    found = [body for body in objects(rendered, kind) if COMPONENT not in labels_of(body)]
    if len(found) != 1:
        raise CheckError(f"expected exactly one {kind} of the server, found {len(found)}")
    return found[0]


def component(rendered: Rendered, kind: str, name: str) -> dict[str, Any]:
    found = [body for body in objects(rendered, kind) if labels_of(body).get(COMPONENT) == name]
    if len(found) != 1:
        raise CheckError(f"expected exactly one {kind} of component {name}, found {len(found)}")
    return found[0]


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def pod_spec(rendered: Rendered) -> dict[str, Any]:
    spec: dict[str, Any] = single(rendered, "Deployment")["spec"]["template"]["spec"]
    return spec


def main_container(rendered: Rendered) -> dict[str, Any]:
    containers: list[dict[str, Any]] = pod_spec(rendered)["containers"]
    if len(containers) != 1:
        raise CheckError(f"expected one container in the Deployment, found {len(containers)}")
    return containers[0]


def config_data(rendered: Rendered) -> dict[str, str]:
    data: dict[str, str] = single(rendered, "ConfigMap").get("data", {})
    return data


def container_ports(rendered: Rendered) -> dict[str, int]:
    return {port.get("name", ""): port["containerPort"] for port in main_container(rendered).get("ports", [])}


def check_ports_and_probes(rendered: Rendered) -> list[str]:
    container, ports, config = main_container(rendered), container_ports(rendered), config_data(rendered)
    problems = []
    if sorted(ports) != ["grpc", "http"]:
        problems.append(f"container ports are named {sorted(ports)}, expected exactly grpc and http")
    expected = {"grpc": config.get("GRPC_PORT"), "http": config.get("PORT")}
    for name, setting in expected.items():
        if str(ports.get(name)) != str(setting):
            problems.append(f"container port {name} is {ports.get(name)} but the ConfigMap says {setting}")
    for probe_name in ("startupProbe", "readinessProbe", "livenessProbe"):
        problems.extend(probe_problems(probe_name, container.get(probe_name), ports.get("grpc")))
    return problems


def probe_problems(name: str, probe: dict[str, Any] | None, grpc_port: int | None) -> list[str]:
    if probe is None:
        return [f"{name} is missing"]
    others = {"httpGet", "tcpSocket", "exec"} & probe.keys()
    if "grpc" not in probe or others:
        return [f"{name} must be a native gRPC probe, has {sorted(others) or 'no handler'}"]
    problems = []
    if probe["grpc"].get("port") != grpc_port:
        problems.append(f"{name} checks port {probe['grpc'].get('port')}, the grpc container port is {grpc_port}")
    if name == "readinessProbe" and probe["grpc"].get("service", "") != "":
        problems.append(f'{name} must ask for the overall status (service "")')
    return problems


def check_service(rendered: Rendered) -> list[str]:
    service, ports = single(rendered, "Service"), container_ports(rendered)
    by_name = {port.get("name"): port for port in service["spec"].get("ports", [])}
    problems = []
    for name in ("grpc", "http"):
        port = by_name.get(name)
        if port is None:
            problems.append(f"the Service has no port named {name}")
        elif port.get("targetPort") not in (name, ports.get(name)):
            problems.append(f"Service port {name} targets {port.get('targetPort')}, not the container's {name} port")
    selector = service["spec"].get("selector", {})
    labels = single(rendered, "Deployment")["spec"]["template"]["metadata"].get("labels", {})
    if not selector or any(labels.get(key) != value for key, value in selector.items()):
        problems.append(f"the Service selector {selector} does not select the pods ({labels})")
    return problems


def check_no_secret_values(rendered: Rendered) -> list[str]:
    secrets = objects(rendered, "Secret")
    problems = [f"the chart renders a Secret ({s['metadata']['name']}); it may only reference one" for s in secrets]
    for key, value in config_data(rendered).items():
        if key in SECRET_VARIABLES or SECRET_LIKE_NAME.search(key):
            problems.append(f"the ConfigMap holds {key}; secrets come from secretKeyRef only")
        if URL_WITH_PASSWORD.search(str(value)):
            problems.append(f"the ConfigMap's {key} has a password in its URL")
    for item in main_container(rendered).get("env", []):
        name, reference = item.get("name", ""), item.get("valueFrom", {}).get("secretKeyRef")
        if name in SECRET_VARIABLES and (reference is None or "value" in item):
            problems.append(f"env {name} must come from a secretKeyRef, not a value")
        elif "value" in item and (SECRET_LIKE_NAME.search(name) or URL_WITH_PASSWORD.search(str(item["value"]))):
            problems.append(f"env {name} has a literal value that looks secret")
        if reference is not None and reference.get("optional") is not True:
            problems.append(f"env {name}: secretKeyRef must be optional: true (the service runs without it)")
    problems.extend(secret_values_in(rendered.values, "values"))
    return problems


def secret_values_in(values: Any, path: str) -> list[str]:
    """A non-empty string under a secret-like key anywhere in the values (existingSecret holds names only)."""
    if not isinstance(values, dict):
        return []
    problems = []
    for key, value in values.items():
        here = f"{path}.{key}"
        if here.startswith("values.existingSecret"):
            continue
        if isinstance(value, str) and value and SECRET_LIKE_NAME.search(str(key)):
            problems.append(f"{here} holds a secret-looking value; put it in the Secret instead")
        if isinstance(value, str) and URL_WITH_PASSWORD.search(value):
            problems.append(f"{here} has a password in a URL")
        problems.extend(secret_values_in(value, here))
    return problems


def settings_variables(config_module: Path = CONFIG_MODULE) -> frozenset[str]:
    """The variables see_grpc.config.Settings reads: its annotated fields, upper-cased (no env_prefix)."""
    tree = ast.parse(config_module.read_text(encoding="utf-8"))
    settings = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings"), None)
    if settings is None:
        raise CheckError(f"{config_module}: no class Settings")
    if "env_prefix" in ast.unparse(settings):
        raise CheckError(f"{config_module}: Settings uses env_prefix, which this check does not understand")
    names = [
        node.target.id.upper()
        for node in settings.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id != "model_config"
    ]
    return frozenset(names)


def check_environment(rendered: Rendered) -> list[str]:
    container, configmap = main_container(rendered), single(rendered, "ConfigMap")
    read_by_service = settings_variables()
    from_config = set(config_data(rendered))
    from_secret = {item["name"] for item in container.get("env", []) if "secretKeyRef" in item.get("valueFrom", {})}
    sources = [ref["configMapRef"]["name"] for ref in container.get("envFrom", []) if "configMapRef" in ref]
    problems = []
    if sources != [configmap["metadata"]["name"]]:
        problems.append(f"envFrom reads ConfigMaps {sources}, expected [{configmap['metadata']['name']}]")
    for name in sorted((read_by_service | CONTRACT_VARIABLES) - from_config - from_secret):
        problems.append(f"{name} is read by the service but neither in the ConfigMap nor a secret reference")
    for name in sorted(SECRET_VARIABLES - from_secret):
        problems.append(f"{name} must be a secretKeyRef")
    for name in sorted(from_config - read_by_service):
        problems.append(f"the ConfigMap sets {name}, which see_grpc/config.py does not read (a typo?)")
    return problems


def dockerfile_facts(dockerfile: Path = DOCKERFILE) -> dict[str, str]:
    text = dockerfile.read_text(encoding="utf-8")
    facts = {}
    for key, pattern in (("user", r"^USER\s+(\d+)"), ("expose", r"^EXPOSE\s+(.+)$"), ("data", r"DATA_DIR=(\S+)")):
        match = re.search(pattern, text, re.MULTILINE)
        if match is None:
            raise CheckError(f"{dockerfile}: cannot find {pattern}")
        facts[key] = match.group(1).strip()
    return facts


def check_runtime(rendered: Rendered) -> list[str]:
    pod, container, config = pod_spec(rendered), main_container(rendered), config_data(rendered)
    image = dockerfile_facts()
    mounts = {mount["mountPath"]: mount["name"] for mount in container.get("volumeMounts", [])}
    problems = []
    if config.get("DATA_DIR") not in mounts:
        problems.append(f"nothing is mounted at DATA_DIR {config.get('DATA_DIR')} (mounts: {sorted(mounts)})")
    if config.get("DATA_DIR") != image["data"]:
        problems.append(f"DATA_DIR is {config.get('DATA_DIR')} but the image's is {image['data']}")
    if container.get("securityContext", {}).get("readOnlyRootFilesystem") is not True or TMP_DIR not in mounts:
        problems.append("the root filesystem must be read-only with a writable /tmp volume")
    grace, shutdown = pod.get("terminationGracePeriodSeconds", 30), float(config.get("SHUTDOWN_GRACE_SECONDS", 20))
    if not grace > shutdown:
        problems.append(f"terminationGracePeriodSeconds {grace} must exceed SHUTDOWN_GRACE_SECONDS {shutdown:g}")
    security = pod.get("securityContext", {})
    if security.get("runAsNonRoot") is not True or str(security.get("runAsUser")) != image["user"]:
        problems.append(f"pods must run as non-root uid {image['user']} (the image's USER), got {security}")
    if "fsGroup" not in security:
        problems.append("the pod needs an fsGroup so the data volume is writable")
    exposed = set(image["expose"].split())
    if {str(port) for port in container_ports(rendered).values()} != exposed:
        problems.append(f"container ports {container_ports(rendered)} differ from the image's EXPOSE {exposed}")
    return problems


def check_switches(rendered: Rendered) -> list[str]:
    values, problems = rendered.values, []
    deployment, pod = single(rendered, "Deployment"), pod_spec(rendered)
    hpas, claims = objects(rendered, "HorizontalPodAutoscaler"), objects(rendered, "PersistentVolumeClaim")
    persistence, autoscaling = values["persistence"], values["autoscaling"]
    if bool(hpas) != bool(autoscaling["enabled"]) or ("replicas" in deployment["spec"]) == bool(hpas):
        problems.append("the HPA must render exactly when autoscaling.enabled, and then replace spec.replicas")
    for hpa in hpas:
        if hpa["spec"]["scaleTargetRef"]["name"] != deployment["metadata"]["name"]:
            problems.append("the HPA does not scale the Deployment")
    wants_claim = bool(persistence["enabled"]) and not persistence.get("existingClaim")
    if bool(claims) != wants_claim:
        problems.append("the PVC must render exactly when persistence.enabled and no existingClaim is given")
    data: dict[str, Any] = next((volume for volume in pod.get("volumes", []) if volume["name"] == "data"), {})
    claim = data.get("persistentVolumeClaim", {}).get("claimName")
    expected_claim = persistence.get("existingClaim") or (claims[0]["metadata"]["name"] if claims else None)
    if bool(persistence["enabled"]) != (claim is not None) or (claim is not None and claim != expected_claim):
        problems.append(f"the data volume uses claim {claim}, expected {expected_claim}")
    scaled = bool(hpas) or deployment["spec"].get("replicas", 1) > 1
    if scaled and claim is not None and persistence.get("accessMode") == "ReadWriteOnce":
        problems.append("several replicas cannot share a ReadWriteOnce data volume: disable persistence or use RWX")
    accounts = objects(rendered, "ServiceAccount")
    if bool(accounts) != bool(values["serviceAccount"]["create"]):
        problems.append("the ServiceAccount must render exactly when serviceAccount.create")
    if accounts and pod.get("serviceAccountName") != accounts[0]["metadata"]["name"]:
        problems.append("the pods do not use the ServiceAccount the chart creates")
    return problems


def check_metrics(rendered: Rendered) -> list[str]:
    values, problems = rendered.values["metrics"], []
    annotations = single(rendered, "Deployment")["spec"]["template"]["metadata"].get("annotations") or {}
    if values["podAnnotations"]:
        expected = {"prometheus.io/scrape": "true", "prometheus.io/path": "/metrics"}
        expected["prometheus.io/port"] = str(container_ports(rendered).get("http"))
        wrong = {key: annotations.get(key) for key, value in expected.items() if annotations.get(key) != value}
        if wrong:
            problems.append(f"the pod's scrape annotations are {wrong}, expected {expected}")
    elif "prometheus.io/scrape" in annotations and "prometheus.io/scrape" not in rendered.values["podAnnotations"]:
        problems.append("scrape annotations on the pod although metrics.podAnnotations is false")
    monitors = objects(rendered, "ServiceMonitor")
    if len(monitors) != int(bool(values["serviceMonitor"]["enabled"])):
        problems.append("one ServiceMonitor must render exactly when metrics.serviceMonitor.enabled")
    server = single(rendered, "Service")
    for monitor in monitors:
        selector = monitor["spec"]["selector"].get("matchLabels", {})
        chosen = [svc["metadata"]["name"] for svc in objects(rendered, "Service") if selects(selector, labels_of(svc))]
        if chosen != [server["metadata"]["name"]]:
            problems.append(f"the ServiceMonitor selects Services {chosen}, expected only the server's")
        ports = {port.get("name") for port in server["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            if endpoint["port"] != "http" or endpoint.get("path") != "/metrics" or "http" not in ports:
                problems.append(f"the ServiceMonitor endpoint {endpoint} is not /metrics on the http port")
        if not values["serviceMonitor"]["labels"].items() <= labels_of(monitor).items():
            problems.append("the ServiceMonitor lacks metrics.serviceMonitor.labels")
    return problems


def check_dask(rendered: Rendered) -> list[str]:
    values, config = rendered.values["dask"], config_data(rendered)
    addons = sorted(
        f"{m.kind}/{labels_of(m.body).get(COMPONENT)}"
        for m in rendered.manifests
        if m.kind != "ServiceMonitor" and COMPONENT in labels_of(m.body)
    )
    expected = ["Deployment/dask-scheduler", "Deployment/dask-worker", "Service/dask-scheduler"]
    if addons != (expected if values["enabled"] else []):
        return [f"dask.enabled is {values['enabled']} but the chart renders add-ons {addons}"]
    if not values["enabled"]:
        given = rendered.values["config"]["DASK_SCHEDULER_ADDRESS"]
        return [] if config.get("DASK_SCHEDULER_ADDRESS") == given else ["DASK_SCHEDULER_ADDRESS is not config's value"]
    service = component(rendered, "Service", "dask-scheduler")
    comm: dict[str, Any] = next((p for p in service["spec"]["ports"] if p.get("name") == "tcp-comm"), {})
    address = f"tcp://{service['metadata']['name']}:{comm.get('port')}"
    problems = []
    if config.get("DASK_SCHEDULER_ADDRESS") != address:
        problems.append(
            f"DASK_SCHEDULER_ADDRESS is {config.get('DASK_SCHEDULER_ADDRESS')!r}, the scheduler is {address}"
        )
    scheduler, workers = (component(rendered, "Deployment", name) for name in DASK_COMPONENTS)
    if not selects(service["spec"]["selector"], scheduler["spec"]["template"]["metadata"]["labels"]):
        problems.append("the scheduler's Service does not select the scheduler's pods")
    worker = workers["spec"]["template"]["spec"]["containers"][0]
    if worker.get("args", [None])[0] != address:
        problems.append(f"the workers connect to {worker.get('args', [None])[0]!r}, not {address}")
    if workers["spec"].get("replicas") != values["worker"]["replicas"]:
        problems.append("the worker Deployment does not have dask.worker.replicas replicas")
    for deployment in (scheduler, workers):
        pod = deployment["spec"]["template"]["spec"]
        mounts = {m["mountPath"] for c in pod["containers"] for m in c.get("volumeMounts", [])}
        secure = all(c.get("securityContext", {}).get("readOnlyRootFilesystem") is True for c in pod["containers"])
        if pod.get("securityContext", {}).get("runAsNonRoot") is not True or not secure or TMP_DIR not in mounts:
            problems.append(f"{deployment['metadata']['name']} must run non-root, read-only, with a writable /tmp")
    return problems


def check_selectors(rendered: Rendered) -> list[str]:
    """Each Deployment and Service selects the pods of exactly one Deployment (Dask pods are never the server's)."""
    deployments = objects(rendered, "Deployment")
    pods = {d["metadata"]["name"]: d["spec"]["template"]["metadata"].get("labels", {}) for d in deployments}
    selectors = [(f"Deployment/{d['metadata']['name']}", d["spec"]["selector"]["matchLabels"]) for d in deployments]
    selectors += [
        (f"Service/{s['metadata']['name']}", s["spec"].get("selector", {})) for s in objects(rendered, "Service")
    ]
    problems = []
    for title, selector in selectors:
        chosen = sorted(name for name, labels in pods.items() if selects(selector, labels))
        if len(chosen) != 1:
            problems.append(f"{title} selects the pods of {chosen or 'no Deployment'}, expected exactly one")
    return problems


def check_metadata(rendered: Rendered) -> list[str]:
    problems = []
    for manifest in rendered.manifests:
        labels = manifest.body["metadata"].get("labels", {})
        if not {"app.kubernetes.io/name", "app.kubernetes.io/instance", "helm.sh/chart"} <= labels.keys():
            problems.append(f"{manifest.title} lacks the chart's standard labels")
        if not DNS_LABEL.match(manifest.name):
            problems.append(f"{manifest.title}: the name is not a DNS label of 63 characters at most")
    if not rendered.notes.strip():
        problems.append("NOTES.txt renders empty")
    return problems


def check_chart_metadata(chart: Chart, pyproject: Path = PYPROJECT) -> list[str]:
    meta, problems = chart.metadata, []
    project_version = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
    expected = {"apiVersion": "v2", "name": "see", "type": "application", "appVersion": project_version}
    for key, value in expected.items():
        if str(meta.get(key)) != value:
            problems.append(f"Chart.yaml {key} is {meta.get(key)!r}, expected {value!r}")
    if not SEMVER.match(str(meta.get("version"))):
        problems.append(f"Chart.yaml version {meta.get('version')!r} is not SemVer 2")
    return problems


PROJECT_CHECKS: tuple[tuple[str, Callable[[Rendered], list[str]]], ...] = (
    ("Kubernetes schemas (strict)", check_schemas),
    ("ports grpc/http and gRPC probes on the grpc port", check_ports_and_probes),
    ("Service exposes both ports and selects the pods", check_service),
    ("no secret values (ConfigMap, env, values)", check_no_secret_values),
    ("every variable the service reads is provided", check_environment),
    ("runtime matches the image (uid, ports, DATA_DIR, /tmp, grace)", check_runtime),
    ("optional objects follow their switches", check_switches),
    ("metrics: scrape annotations and ServiceMonitor on /metrics of the http port", check_metrics),
    ("dask: scheduler and workers follow dask.enabled, DASK_SCHEDULER_ADDRESS reaches them", check_dask),
    ("every selector picks the pods of exactly one Deployment", check_selectors),
    ("labels, names, NOTES.txt", check_metadata),
)


def run_checks(rendered: Rendered) -> list[tuple[str, list[str]]]:
    results = []
    for title, check in PROJECT_CHECKS:
        try:
            results.append((title, check(rendered)))
        except (CheckError, KeyError, TypeError, ValueError, AttributeError) as exc:
            results.append((title, [f"could not run: {type(exc).__name__}: {exc}"]))
    return results


# ---------------------------------------------------------------------------------------------------------------------
# Variants and the command line.


@dataclass(frozen=True)
class Variant:
    name: str
    overrides: tuple[str, ...]
    release: str = "see"


VARIANTS = (
    Variant("default", ()),
    Variant(
        "everything-enabled",
        (
            "autoscaling.enabled=true",
            "strategy.type=RollingUpdate",
            "persistence.accessMode=ReadWriteMany",
            "persistence.storageClass=shared-nfs",
            "podAnnotations.team=quant",
            "podLabels.team=quant",
            "nodeSelector.pool=trading",
            "serviceAccount.annotations.owner=quant",
            "image.tag=0.1.0-rc1",
            "metrics.serviceMonitor.enabled=true",
            "metrics.serviceMonitor.labels.release=kube-prometheus-stack",
            "dask.enabled=true",
            "dask.worker.replicas=4",
        ),
    ),
    Variant(
        "autoscaled-ephemeral",
        ("autoscaling.enabled=true", "persistence.enabled=false", "metrics.podAnnotations=false"),
    ),
    Variant(
        "external-dask",
        ("config.DASK_SCHEDULER_ADDRESS=tcp://dask.analytics:8786", "dask.image.repository=registry.local/see-dask"),
    ),
    Variant(
        "external-objects",
        (
            "fullnameOverride=trading-see",
            "serviceAccount.create=false",
            "serviceAccount.name=trading",
            "existingSecret.name=see-credentials",
            "persistence.existingClaim=see-data",
        ),
        release="prod",
    ),
)


@dataclass
class Report:
    problems: int = 0
    manifests: int = 0

    def say(self, line: str) -> None:
        print(line)

    def result(self, title: str, problems: Sequence[str]) -> None:
        self.problems += len(problems)
        self.say(f"  {'ok  ' if not problems else 'FAIL'} {title}")
        for problem in problems:
            self.say(f"       - {problem}")


def check_variant(chart: Chart, variant: Variant, report: Report, show: bool) -> None:
    described = ", ".join(variant.overrides) or "no overrides"
    report.say(f"variant {variant.name} (release {variant.release}; {described})")
    try:
        rendered = render_chart(chart, variant.overrides, variant.release, variant.name)
    except TemplateError as exc:
        report.result("render", [str(exc)])
        return
    report.manifests += len(rendered.manifests)
    titles = ", ".join(sorted(manifest.title for manifest in rendered.manifests))
    report.say(f"  rendered {titles}; NOTES.txt {len(rendered.notes.splitlines())} lines")
    for title, problems in run_checks(rendered):
        report.result(title, problems)
    if show:
        for name, text in rendered.files.items():
            print(f"---\n# Source: {name}\n{text.strip()}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render and validate the SEE Helm chart offline.")
    parser.add_argument("--chart", type=Path, default=DEFAULT_CHART, help="chart directory (default helm/see)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="key.path=value, repeatable")
    parser.add_argument("--show", action="store_true", help="print the rendered files, like helm template")
    args = parser.parse_args(argv)

    report = Report()
    chart = load_chart(args.chart)
    report.say(f"chart {args.chart} ({len(chart.templates)} template files)")
    report.say(f"template subset: {TEMPLATE_SUBSET}")
    report.say(f"schemas: kubernetes-validate {kubernetes_validate.__version__}, strict, Kubernetes {K8S_VERSIONS}")
    chart_problems = check_chart_metadata(chart) + check_schema_versions(K8S_VERSIONS)
    report.result("Chart.yaml (apiVersion v2, name see, SemVer version, appVersion = pyproject)", chart_problems)
    variants = list(VARIANTS)
    if args.overrides:
        variants.append(Variant("command-line", tuple(args.overrides)))
    for variant in variants:
        check_variant(chart, variant, report, args.show)
    verdict = "PASS" if report.problems == 0 else "FAIL"
    print(f"{verdict}: {len(variants)} variants, {report.manifests} manifests, {report.problems} problem(s)")
    return 0 if report.problems == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""The Helm chart (helm/see), rendered and validated offline by tools/helm_check.py (there is no helm CLI here)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.unit

TOOL = Path(__file__).resolve().parents[2] / "tools" / "helm_check.py"


def _load_tool() -> ModuleType:
    """tools/ is not a package: load the script from its path (registered first, for its dataclasses)."""
    spec = importlib.util.spec_from_file_location("helm_check", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


hc = _load_tool()

SCALED = ("autoscaling.enabled=true", "persistence.enabled=false")


@pytest.fixture(scope="module")
def chart() -> Any:
    return hc.load_chart(hc.DEFAULT_CHART)


def render(chart: Any, *overrides: str) -> Any:
    return hc.render_chart(chart, overrides)


def kinds(rendered: Any) -> list[str]:
    return sorted(manifest.kind for manifest in rendered.manifests)


def tiny_chart(template: str, values: dict[str, Any] | None = None) -> Any:
    """A one-template chart in memory, to exercise the renderer on its own."""
    return hc.Chart(
        directory=Path("."),
        metadata={"name": "t", "version": "0.1.0", "appVersion": "1.0"},
        values=values or {},
        values_schema={},
        templates={"templates/t.yaml": template},
    )


def render_text(template: str, values: dict[str, Any] | None = None) -> str:
    """Render one template with the renderer alone (no YAML parsing, no manifests)."""
    chart = tiny_chart(template, values)
    text: str = hc.render_files(chart, chart.values)["templates/t.yaml"]
    return text


# --- the chart as shipped -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", hc.VARIANTS, ids=lambda variant: variant.name)
def test_every_variant_passes_every_check(chart: Any, variant: Any) -> None:
    rendered = hc.render_chart(chart, variant.overrides, variant.release, variant.name)
    assert rendered.manifests
    assert {title: problems for title, problems in hc.run_checks(rendered) if problems} == {}


def test_chart_metadata_matches_the_project(chart: Any) -> None:
    assert chart.metadata["apiVersion"] == "v2"
    assert chart.metadata["name"] == "see"
    assert chart.metadata["version"] == "0.1.0"
    assert chart.metadata["appVersion"] == "0.1.0"
    assert hc.check_chart_metadata(chart) == []


def test_default_render_has_the_expected_objects(chart: Any) -> None:
    assert kinds(render(chart)) == ["ConfigMap", "Deployment", "PersistentVolumeClaim", "Service", "ServiceAccount"]


def test_deployment_has_two_named_ports_and_grpc_probes(chart: Any) -> None:
    rendered = render(chart)
    container = hc.main_container(rendered)
    assert container["ports"] == [
        {"name": "grpc", "containerPort": 50051, "protocol": "TCP"},
        {"name": "http", "containerPort": 8003, "protocol": "TCP"},
    ]
    services = {"startupProbe": "liveness", "readinessProbe": "", "livenessProbe": "liveness"}
    for probe, service in services.items():
        assert container[probe]["grpc"] == {"port": 50051, "service": service}
        assert not {"httpGet", "tcpSocket", "exec"} & container[probe].keys()
    assert container["image"] == "see:0.1.0"


def test_service_exposes_grpc_and_http(chart: Any) -> None:
    service = hc.single(render(chart), "Service")
    ports = {port["name"]: (port["port"], port["targetPort"]) for port in service["spec"]["ports"]}
    assert ports == {"grpc": (50051, "grpc"), "http": (8003, "http")}
    assert service["spec"]["type"] == "ClusterIP"


def test_secrets_are_optional_references_and_never_values(chart: Any) -> None:
    rendered = render(chart, "existingSecret.name=see-credentials")
    env = {item["name"]: item for item in hc.main_container(rendered)["env"]}
    assert set(env) == {"API_KEY", "SERVICE_API_KEY", "REDIS_PASSWORD", "DATABASE_URL", "OANDA_API_TOKEN"}
    for name, item in env.items():
        assert "value" not in item
        assert item["valueFrom"]["secretKeyRef"] == {"name": "see-credentials", "key": name, "optional": True}
    assert "Secret" not in kinds(rendered)
    assert not hc.SECRET_VARIABLES & set(hc.config_data(rendered))


def test_configmap_holds_every_non_secret_variable(chart: Any) -> None:
    data = hc.config_data(render(chart))
    assert set(data) == (hc.CONTRACT_VARIABLES | hc.settings_variables()) - hc.SECRET_VARIABLES
    assert all(isinstance(value, str) for value in data.values())
    assert data["DATA_DIR"] == "/var/lib/see"
    assert hc.settings_variables() <= set(data) | hc.SECRET_VARIABLES


def test_hpa_renders_only_when_enabled(chart: Any) -> None:
    default = render(chart)
    assert "HorizontalPodAutoscaler" not in kinds(default)
    assert hc.single(default, "Deployment")["spec"]["replicas"] == 1

    scaled = render(chart, *SCALED)
    hpa = hc.single(scaled, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "see"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 4)
    assert "replicas" not in hc.single(scaled, "Deployment")["spec"]


def test_pvc_follows_persistence(chart: Any) -> None:
    claim = hc.single(render(chart), "PersistentVolumeClaim")
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert "PersistentVolumeClaim" not in kinds(render(chart, "persistence.enabled=false"))
    existing = render(chart, "persistence.existingClaim=mine")
    assert "PersistentVolumeClaim" not in kinds(existing)
    volumes = {volume["name"]: volume for volume in hc.pod_spec(existing)["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": "mine"}


def test_release_name_and_overrides_shape_the_names(chart: Any) -> None:
    assert hc.single(hc.render_chart(chart, (), "prod"), "Deployment")["metadata"]["name"] == "prod-see"
    assert hc.single(hc.render_chart(chart, (), "see-live"), "Deployment")["metadata"]["name"] == "see-live"
    assert hc.single(render(chart, "fullnameOverride=x"), "Service")["metadata"]["name"] == "x"


DASK = ("dask.enabled=true", "dask.worker.replicas=3")


def test_pods_carry_scrape_annotations_unless_switched_off(chart: Any) -> None:
    pod = hc.single(render(chart, "podAnnotations.team=quant"), "Deployment")["spec"]["template"]["metadata"]
    assert pod["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8003",
        "prometheus.io/path": "/metrics",
        "team": "quant",
    }
    off = hc.single(render(chart, "metrics.podAnnotations=false"), "Deployment")["spec"]["template"]["metadata"]
    assert "annotations" not in off


def test_service_monitor_renders_only_when_enabled(chart: Any) -> None:
    assert "ServiceMonitor" not in kinds(render(chart))
    rendered = render(chart, "metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prom", *DASK)
    monitor = hc.single(rendered, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1" and monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]
    assert hc.check_schemas(rendered) == [] and hc.check_metrics(rendered) == []


def test_dask_is_off_by_default_and_wired_when_on(chart: Any) -> None:
    assert hc.config_data(render(chart))["DASK_SCHEDULER_ADDRESS"] == ""
    rendered = render(chart, *DASK)
    assert kinds(rendered) == sorted([*kinds(render(chart)), "Deployment", "Deployment", "Service"])
    assert hc.config_data(rendered)["DASK_SCHEDULER_ADDRESS"] == "tcp://see-dask-scheduler:8786"
    workers = hc.component(rendered, "Deployment", "dask-worker")
    assert workers["spec"]["replicas"] == 3
    container = workers["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "see:0.1.0" and container["command"] == ["dask", "worker"]
    assert container["args"][:5] == ["tcp://see-dask-scheduler:8786", "--nworkers", "1", "--nthreads", "2"]
    assert hc.check_dask(rendered) == [] and hc.check_selectors(rendered) == []


# --- the checks catch mistakes ------------------------------------------------------------------------------------


def test_a_service_monitor_field_outside_the_crd_subset_is_refused(chart: Any) -> None:
    monitor = next(
        m for m in render(chart, "metrics.serviceMonitor.enabled=true").manifests if m.kind == "ServiceMonitor"
    )
    monitor.body["spec"]["endpoints"][0]["intervall"] = "30s"
    monitor.body["spec"]["endpoints"][0]["interval"] = "half a minute"
    problems = " ".join(hc.schema_problems(monitor))
    assert "intervall" in problems and "half a minute" in problems


def test_dask_pods_the_server_would_select_are_caught(chart: Any) -> None:
    rendered = render(chart, *DASK)
    scheduler = hc.component(rendered, "Deployment", "dask-scheduler")
    scheduler["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] = "see"
    assert any("Service/see selects" in problem for problem in hc.check_selectors(rendered))


def test_a_wrong_scheduler_address_is_caught(chart: Any) -> None:
    rendered = render(chart, *DASK)
    hc.config_data(rendered)["DASK_SCHEDULER_ADDRESS"] = "tcp://elsewhere:8786"
    assert any("DASK_SCHEDULER_ADDRESS" in problem for problem in hc.check_dask(rendered))


def test_a_wrong_field_type_fails_schema_validation(chart: Any) -> None:
    deployment = next(m for m in render(chart).manifests if m.kind == "Deployment")
    assert hc.schema_problems(deployment) == []
    deployment.body["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "fifty"
    problems = hc.schema_problems(deployment)
    assert len(problems) == len(hc.K8S_VERSIONS)
    assert "containerPort" in problems[0] and "'fifty' is not of type 'integer'" in problems[0]


def test_an_unknown_field_fails_strict_validation(chart: Any) -> None:
    rendered = render(chart, "probes.liveness.periodSecnds=5")
    assert any("periodSecnds" in problem for problem in hc.check_schemas(rendered))


def test_values_outside_the_schema_are_refused(chart: Any) -> None:
    with pytest.raises(hc.TemplateError, match="tagg"):
        render(chart, "image.tagg=1")
    with pytest.raises(hc.TemplateError, match="API_KEY"):
        render(chart, "config.API_KEY=hunter2")
    with pytest.raises(hc.TemplateError, match="replicaCount"):
        render(chart, "replicaCount=many")


def test_a_password_in_a_url_is_caught(chart: Any) -> None:
    problems = hc.check_no_secret_values(render(chart, "config.REDIS_URL=redis://user:pw@redis:6379/0"))
    assert any("REDIS_URL" in problem and "password" in problem for problem in problems)


def test_scaling_on_a_read_write_once_volume_is_refused(chart: Any) -> None:
    problems = hc.check_switches(render(chart, "autoscaling.enabled=true"))
    assert any("ReadWriteOnce" in problem for problem in problems)


def test_main_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert hc.main([]) == 0
    assert "PASS" in capsys.readouterr().out
    assert hc.main(["--set", "probes.readiness.periodSecnds=5"]) == 1
    assert "FAIL" in capsys.readouterr().out


# --- the renderer -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "a: {{ .Values.x | upper }}",
        "{{ with .Values.x }}a: 1{{ end }}",
        "{{ if .Values.x }}a{{ else if .Values.y }}b{{ end }}",
        '{{ include "x" (dict) }}',
        "{{ $x := 1 }}",
        "{{ tpl .Values.x . }}",
        "{{ range .Values.list }}- {{ . }}{{ end }}",
        '{{ template "x" . }}',
        "a: {{-.Values.x }}",
        "a: {{ .Values.x }",
        "{{ if .Values.x }}a: 1",
        "a: 1{{ end }}",
        "a: {{ 1.5 }}",
        "a: {{ .Values.x | quote | .Values.y }}",
        '{{ define "x" }}a{{ end }}',
    ],
)
def test_an_unknown_construct_is_refused(template: str) -> None:
    with pytest.raises(hc.TemplateError):
        render_text(template, {"x": "v", "y": "w", "list": [1]})


def test_a_value_that_is_not_set_is_refused() -> None:
    with pytest.raises(hc.TemplateError, match="not set"):
        render_text("a: {{ .Values.missing }}")
    with pytest.raises(hc.TemplateError, match="not set"):
        render_text("a: {{ .Values.missing.deeper | default 1 }}")
    with pytest.raises(hc.TemplateError, match="no field"):
        render_text("a: {{ .Release.Nmae }}")
    assert render_text('a: {{ .Values.missing | default "d" }}') == "a: d"


def test_a_number_helm_prints_in_exponent_form_is_refused() -> None:
    assert render_text("a: {{ .Values.n }}", {"n": 999999}) == "a: 999999"
    assert render_text("a: {{ .Values.n }}", {"n": 20.0}) == "a: 20"
    with pytest.raises(hc.TemplateError, match="exponent"):
        render_text("a: {{ .Values.n }}", {"n": 1000000})


def test_trim_markers_and_functions_follow_go_and_sprig() -> None:
    template = (
        "m:\n"
        "  {{- if .Values.on }}\n"
        "  on: {{ .Values.on | quote }}\n"
        "  {{- else }}\n"
        "  off: true\n"
        "  {{- end }}\n"
        "  {{- range $k, $v := .Values.map }}\n"
        "  {{ $k }}: {{ $v | quote }}\n"
        "  {{- end }}\n"
        "  y:\n"
        "    {{- toYaml .Values.map | nindent 4 }}\n"
        '  n: {{ printf "%s-%s" .Release.Name .Chart.Name | trunc 4 | trimSuffix "-" }}\n'
        '  c: {{ contains "b" "abc" }} {{ not .Values.on }} {{ .Values.zero | default 7 }}\n'
    )
    values = {"on": True, "map": {"b": 2, "a": "x y"}, "zero": 0}
    assert render_text(template, values) == (
        'm:\n  on: "true"\n  a: "x y"\n  b: "2"\n  y:\n    a: x y\n    b: 2\n  n: see\n  c: true false 7\n'
    )


def test_eq_compares_values_of_one_type_as_go_does() -> None:
    template = '{{ if eq .Values.name "a" }}yes{{ else }}no{{ end }} {{ eq .Values.n 2 }}'
    assert render_text(template, {"name": "a", "n": 3}) == "yes false"
    with pytest.raises(hc.TemplateError, match="incompatible types"):
        render_text('{{ eq .Values.n "2" }}', {"n": 2})


def test_include_renders_a_define_with_its_own_context() -> None:
    chart = tiny_chart('name: {{ include "t.name" . }}\n', {"suffix": "web"})
    chart.templates["templates/_helpers.tpl"] = (
        '{{/* comment */}}\n{{- define "t.name" -}}\n{{ .Chart.Name }}-{{ .Values.suffix }}\n{{- end }}\n'
    )
    files = hc.render_files(chart, chart.values)
    assert files == {"templates/t.yaml": "name: t-web\n"}


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(hc.TemplateError, match="duplicate key 'a'"):
        hc.render_chart(tiny_chart("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  a: '1'\n  a: '2'\n"))

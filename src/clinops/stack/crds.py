"""Third-party CRDs the operator writes to, fetched from their publishers into the cache, never into the repo."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from clinops.stack.fetch import FETCH_TIMEOUT_S, _exclusive, _publish, _run, cache_root
from clinops.stack.process import StackError

if TYPE_CHECKING:
    from clinops.stack.controlplane import ControlPlane

FLINK_OPERATOR_VERSION = "1.10.0"
FLINK_OPERATOR_POM = Path(__file__).resolve().parents[3] / "scripts" / "flink-operator" / "pom.xml"
# The API jar holds one CRD per kind and apiextensions version; -v1 is the apiextensions.k8s.io/v1 form.
FLINK_DEPLOYMENT_ENTRY = "META-INF/fabric8/flinkdeployments.flink.apache.org-v1.yml"
PROMETHEUS_OPERATOR_VERSION = "v0.85.0"
PROMETHEUS_OPERATOR_MODULE = "github.com/prometheus-operator/prometheus-operator"
PROMETHEUS_OPERATOR_CRDS = (
    "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
    "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
    "example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml",
)
# The operator writes ServiceMonitors and PrometheusRules; the chart also PodMonitors (pods no Service fronts).
OPERATOR_MONITORING_KINDS = ("servicemonitors", "prometheusrules")
STRIMZI_VERSION = "0.48.0"
# Strimzi publishes no CRD files to Maven Central, only its model classes (io.strimzi:api) and, up to 0.45.0, the
# generator its release build runs over them. The 0.45.0 generator renders the 0.48.0 classes whole but for the
# one annotation added since, @CelValidation: the fixtures lack two CEL rules (metricsConfig of type
# jmxPrometheusExporter needs valueFrom; Cruise Control's metrics type), which the chart always satisfies.
STRIMZI_CRD_GENERATOR_VERSION = "0.45.0"
STRIMZI_POM = Path(__file__).resolve().parents[3] / "scripts" / "strimzi" / "pom.xml"
# The kinds the chart renders, each model class to the file the generator writes its CRD to.
STRIMZI_KINDS = {
    "io.strimzi.api.kafka.model.kafka.Kafka": "kafkas.kafka.strimzi.io.yaml",
    "io.strimzi.api.kafka.model.nodepool.KafkaNodePool": "kafkanodepools.kafka.strimzi.io.yaml",
    "io.strimzi.api.kafka.model.topic.KafkaTopic": "kafkatopics.kafka.strimzi.io.yaml",
}


def flink_deployment_crd(version: str = FLINK_OPERATOR_VERSION) -> Path:
    """The FlinkDeployment CRD from ``flink-kubernetes-operator-api`` on Maven Central."""
    home = cache_root() / f"flink-operator-{version}"
    crd = home / Path(FLINK_DEPLOYMENT_ENTRY).name
    if crd.is_file():
        return crd
    with _exclusive(home):
        if crd.is_file():
            return crd
        if not FLINK_OPERATOR_POM.is_file():
            raise StackError(f"{FLINK_OPERATOR_POM} not found: the FlinkDeployment CRD is fetched from the source tree")
        staging = home.with_name(f"{home.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        _run(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(FLINK_OPERATOR_POM),
                "initialize",
                f"-Dflink-operator.version={version}",
                f"-Dcrd.cache={staging / 'jar'}",
            ],
            f"fetching flink-kubernetes-operator-api {version} from Maven Central",
        )
        jar = staging / "jar" / f"flink-kubernetes-operator-api-{version}.jar"
        with zipfile.ZipFile(jar) as archive:
            try:
                (staging / crd.name).write_bytes(archive.read(FLINK_DEPLOYMENT_ENTRY))
            except KeyError:
                listed = [n for n in archive.namelist() if n.startswith("META-INF/fabric8/")]
                raise StackError(f"{jar.name} has no {FLINK_DEPLOYMENT_ENTRY}; its CRDs: {listed}") from None
        shutil.rmtree(staging / "jar")
        _publish(staging, home)
    return crd


def _module_dir(module: str, version: str) -> Path:
    command = ["go", "mod", "download", "-json", f"{module}@{version}"]
    try:
        # -modcacherw keeps the module cache deletable by a plain `rm -rf`.
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=FETCH_TIMEOUT_S,
            check=False,
            env={**os.environ, "GOFLAGS": "-modcacherw"},
        )
    except FileNotFoundError as exc:
        raise StackError(f"downloading {module}@{version}: go is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"downloading {module}@{version}: no result after {FETCH_TIMEOUT_S}s") from exc
    # go prints its JSON (with an Error field) on stdout even when it fails.
    try:
        answer = json.loads(result.stdout)
    except ValueError:
        answer = {}
    if result.returncode != 0 or "Dir" not in answer:
        detail = answer.get("Error") or (result.stdout + result.stderr).strip()[-2000:]
        raise StackError(f"downloading {module}@{version} from the Go module proxy failed: {detail}")
    return Path(answer["Dir"])


def prometheus_operator_crds(
    version: str = PROMETHEUS_OPERATOR_VERSION, kinds: Iterable[str] = OPERATOR_MONITORING_KINDS
) -> list[Path]:
    """CRDs of the prometheus-operator Go module by plural (ServiceMonitor and PrometheusRule unless told)."""
    home = cache_root() / f"prometheus-operator-{version}"
    cached = [home / Path(entry).name for entry in PROMETHEUS_OPERATOR_CRDS]
    wanted = [crd for kind in kinds for crd in cached if crd.name == f"monitoring.coreos.com_{kind}.yaml"]
    if all(crd.is_file() for crd in cached):
        return wanted
    with _exclusive(home):
        if all(crd.is_file() for crd in cached):
            return wanted
        source = _module_dir(PROMETHEUS_OPERATOR_MODULE, version)
        staging = home.with_name(f"{home.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for entry in PROMETHEUS_OPERATOR_CRDS:
            if not (source / entry).is_file():
                raise StackError(f"{PROMETHEUS_OPERATOR_MODULE}@{version} has no {entry}")
            shutil.copyfile(source / entry, staging / Path(entry).name)
        _publish(staging, home)
    return wanted


def strimzi_crds(version: str = STRIMZI_VERSION, generator: str = STRIMZI_CRD_GENERATOR_VERSION) -> list[Path]:
    """Kafka, KafkaNodePool and KafkaTopic CRDs generated from Strimzi's ``io.strimzi:api`` classes."""
    home = cache_root() / f"strimzi-{version}"
    crds = [home / name for name in STRIMZI_KINDS.values()]
    if all(crd.is_file() for crd in crds):
        return crds
    with _exclusive(home):
        if all(crd.is_file() for crd in crds):
            return crds
        if not STRIMZI_POM.is_file():
            raise StackError(f"{STRIMZI_POM} not found: the Strimzi CRDs are generated from the source tree")
        staging = home.with_name(f"{home.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        classpath = staging / "classpath"
        _run(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(STRIMZI_POM),
                "initialize",
                f"-Dstrimzi.version={version}",
                f"-Dstrimzi.crd-generator.version={generator}",
                f"-Dstrimzi.cache={classpath}",
            ],
            f"fetching io.strimzi:api {version} and crd-generator {generator} from Maven Central",
        )
        # The flags of Strimzi's own build for its install files: apiextensions v1 CRDs serving v1beta2.
        _run(
            [
                "java",
                "-cp",
                f"{classpath}/*",
                "io.strimzi.crdgenerator.CrdGenerator",
                "--label",
                "app:strimzi",
                "--label",
                "strimzi.io/crd-install:true",
                "--target-kube",
                "1.16+",
                "--crd-api-version",
                "v1",
                "--api-versions",
                "v1beta2",
                "--storage-version",
                "v1beta2",
                "--yaml",
                *(f"{model}={staging / name}" for model, name in STRIMZI_KINDS.items()),
            ],
            f"generating the Strimzi {version} CRDs",
        )
        shutil.rmtree(classpath)
        _publish(staging, home)
    return crds


def third_party_crds() -> list[Path]:
    """FlinkDeployment, ServiceMonitor and PrometheusRule CRDs, fetched on first use."""
    return [flink_deployment_crd(), *prometheus_operator_crds()]


def chart_crds() -> list[Path]:
    """Every third-party CRD the clinops chart renders resources of: the operator's, PodMonitor and Strimzi's."""
    return [*third_party_crds(), *prometheus_operator_crds(kinds=("podmonitors",)), *strimzi_crds()]


def established(plane: ControlPlane, name: str) -> bool:
    try:
        crd = plane.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
    except StackError:
        return False
    conditions = crd.get("status", {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def install(plane: ControlPlane, paths: Iterable[Path], *, timeout: float = 60.0) -> list[str]:
    """Server-side apply each CRD file (the FlinkDeployment CRD outgrows client-side apply's annotation) and wait
    until every one is Established; their names."""
    names: list[str] = []
    for path in paths:
        names.extend(d["metadata"]["name"] for d in yaml.safe_load_all(path.read_text()) if d)
        plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    for name in names:
        plane.wait_for(functools.partial(established, plane, name), f"Established CRD {name}", timeout)
    return names


if __name__ == "__main__":
    try:
        for path in chart_crds():
            print(path)
    except StackError as exc:
        sys.exit(f"error: {exc}")

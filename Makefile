# clinops entry points. Everything installs from the package registries into caches outside the repo.
SHELL := /bin/bash
CACHE ?= $(HOME)/.cache/clinops
PYTHON ?= python3.11
UV_VERSION := 0.13.8
UV := $(CACHE)/tools/uv-$(UV_VERSION)/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_CACHE_DIR ?= $(HOME)/.cache/uv
export UV_LINK_MODE := copy

# vegeta: the open-loop HTTP load generator of the serving benchmark, built from the Go module proxy.
VEGETA_VERSION := v12.12.0
VEGETA := $(CACHE)/tools/vegeta-$(VEGETA_VERSION)/vegeta

CORE_ENV := .venv
CORE_STAMP := $(CORE_ENV)/.synced

# The stream env: apache-flink from the same lock, apart from the core env (DESIGN §5). Tests and benchmarks run
# in the core env and start Flink jobs with $(STREAM_ENV)/bin/python.
STREAM_ENV := .venv-flink
STREAM_STAMP := $(STREAM_ENV)/.synced
# Flink's own version is the apache-flink pin; the jars PyFlink lacks (Kafka SQL connector 5.0.0-2.2, Parquet,
# Hadoop client, S3 plugin) are paired with it in scripts/flink/pom.xml.
FLINK_VERSION := $(shell sed -n 's/.*"apache-flink==\([0-9.]*\)".*/\1/p' pyproject.toml)
FLINK_CACHE := $(CACHE)/flink-$(FLINK_VERSION)
FLINK_STAMP := $(FLINK_CACHE)/.fetched
# The drift job's Java functions (scripts/flink-udf), built by Maven under the cache (never inside the repository)
# and shipped with the connector jars; a change to a source or the pom rebuilds them.
FLINK_UDF_SOURCES := scripts/flink-udf/pom.xml $(shell find scripts/flink-udf/src -name '*.java')
FLINK_UDF_BUILD := $(FLINK_CACHE)/build/flink-udf

# The bench control plane (DESIGN §7): etcd, the Kubernetes binaries, kwok and helm built from the Go module proxy at
# the pins of scripts/k8s/versions.env; the script rebuilds only a binary whose pin changed.
include scripts/k8s/versions.env
K8S_CACHE := $(CACHE)/k8s-$(KUBERNETES_VERSION)
K8S_STAMP := $(K8S_CACHE)/.built
# Third-party CRDs the operator writes to (FlinkDeployment from Maven Central, ServiceMonitor and PrometheusRule from
# the prometheus-operator Go module) and the chart renders (PodMonitor; Strimzi's Kafka, KafkaNodePool and KafkaTopic
# generated from io.strimzi:api on Maven Central), fetched into the cache at the pins of clinops.stack.crds: e2e
# fixtures only.
CRD_FIXTURES_STAMP := $(CACHE)/.crd-fixtures
# promtool from Debian's prometheus package (the distribution's build, no Go toolchain run), for `promtool test
# rules` over the chart's alerts. The pin is the bookworm package's version: a point release that replaces it makes
# the download fail loudly rather than test with another promtool.
PROMETHEUS_DEB_VERSION := 2.42.0+ds-5+deb12u1
PROMTOOL := $(CACHE)/promtool-$(PROMETHEUS_DEB_VERSION)/promtool
export CLINOPS_PROMTOOL := $(PROMTOOL)

.PHONY: demo test test-unit test-integration test-e2e lint bench env clean stack stream-env flink-jars controlplane crds crd-fixtures promtool
.DEFAULT_GOAL := demo

$(UV):
	$(PYTHON) -m venv $(CACHE)/tools/uv-$(UV_VERSION)
	$(CACHE)/tools/uv-$(UV_VERSION)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The core env follows uv.lock exactly; it is re-synced whenever the project metadata changes.
$(CORE_STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON) --extra core --extra dev
	touch $@

env: $(CORE_STAMP)

$(STREAM_STAMP): pyproject.toml uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(STREAM_ENV) $(UV) sync --frozen --python $(PYTHON) --extra stream
	touch $@

stream-env: $(STREAM_STAMP)

$(FLINK_STAMP): scripts/flink/pom.xml $(FLINK_UDF_SOURCES)
	rm -rf $(FLINK_CACHE)/jars $(FLINK_CACHE)/plugins  # no jar of a previous pairing stays on the classpath
	mvn --batch-mode --quiet -f scripts/flink/pom.xml initialize -Dflink.version=$(FLINK_VERSION) -Dflink.cache=$(FLINK_CACHE)
	mvn --batch-mode --quiet -f scripts/flink-udf/pom.xml package -Dflink.version=$(FLINK_VERSION) \
	  -Dudf.build.directory=$(FLINK_UDF_BUILD)
	cp $(FLINK_UDF_BUILD)/clinops-flink-udf.jar $(FLINK_CACHE)/jars/
	touch $@

flink-jars: $(FLINK_STAMP)

$(K8S_STAMP): scripts/k8s/versions.env scripts/k8s/gen_wrapper.py
	$(PYTHON) scripts/k8s/gen_wrapper.py --cache $(CACHE)
	touch $@

controlplane: $(K8S_STAMP)

$(CRD_FIXTURES_STAMP): scripts/flink-operator/pom.xml scripts/strimzi/pom.xml src/clinops/stack/crds.py | $(CORE_STAMP)
	$(CORE_ENV)/bin/python -m clinops.stack.crds
	touch $@

crd-fixtures: $(CRD_FIXTURES_STAMP)

# apt-get download needs no root, only a package index that lists the pin; the index is refreshed once if it does not.
$(PROMTOOL):
	rm -rf $(@D).partial && mkdir -p $(@D).partial
	cd $(@D).partial && { apt-get download prometheus=$(PROMETHEUS_DEB_VERSION) \
	  || { apt-get update -qq && apt-get download prometheus=$(PROMETHEUS_DEB_VERSION); }; }
	dpkg-deb -x $(@D).partial/prometheus_*.deb $(@D).partial/root
	mv $(@D).partial/root/usr/bin/promtool $(@D).partial/promtool
	rm -rf $(@D).partial/root $(@D).partial/*.deb
	$(@D).partial/promtool --version >/dev/null
	rm -rf $(@D) && mv $(@D).partial $(@D)

promtool: $(PROMTOOL)

# The CRDs are generated from the spec models (DESIGN §8), the operator's RBAC rules from clinops_operator.rbac,
# each also into the charts that ship them; tests/unit/test_crds.py fails when any copy is stale.
crds: $(CORE_STAMP)
	$(CORE_ENV)/bin/python -m clinops.specs.crd manifests/crds
	$(CORE_ENV)/bin/python -m clinops.specs.crd charts/clinops-crds/crds
	$(CORE_ENV)/bin/python -m clinops_operator.rbac --write manifests/operator
	$(CORE_ENV)/bin/python -m clinops_operator.rbac --write charts/clinops/files

demo: $(CORE_STAMP)
	$(CORE_ENV)/bin/clinops demo

lint: $(CORE_STAMP)
	$(CORE_ENV)/bin/ruff check src operators pipelines tests benchmarks
	$(CORE_ENV)/bin/ruff format --check src operators pipelines tests benchmarks
	$(CORE_ENV)/bin/mypy

test: lint $(STREAM_STAMP) $(FLINK_STAMP) $(K8S_STAMP) $(CRD_FIXTURES_STAMP) $(PROMTOOL)
	$(CORE_ENV)/bin/pytest

test-unit: $(CORE_STAMP)
	$(CORE_ENV)/bin/pytest -m unit || [ $$? -eq 5 ]  # 5: the tier has no tests yet

test-integration: $(CORE_STAMP) $(STREAM_STAMP) $(FLINK_STAMP)
	$(CORE_ENV)/bin/pytest -m integration || [ $$? -eq 5 ]  # 5: the tier has no tests yet

test-e2e: $(CORE_STAMP) $(K8S_STAMP) $(CRD_FIXTURES_STAMP) $(PROMTOOL)
	$(CORE_ENV)/bin/pytest -m e2e || [ $$? -eq 5 ]  # 5: the tier has no tests yet

# Kafka, MinIO and an MLflow server on MinIO in the foreground; prints the exports to use them; Ctrl-C stops all.
stack: $(CORE_STAMP)
	$(CORE_ENV)/bin/clinops stack up

$(VEGETA):
	GOBIN=$(dir $@) GOFLAGS=-modcacherw go install github.com/tsenart/vegeta/v12@$(VEGETA_VERSION)

bench: $(CORE_STAMP) $(STREAM_STAMP) $(FLINK_STAMP) $(VEGETA)
	@for script in benchmarks/bench_*.py; do VEGETA=$(VEGETA) $(CORE_ENV)/bin/python $$script; done

clean:
	rm -rf $(CORE_ENV) $(STREAM_ENV) .clinops .pytest_cache .mypy_cache .ruff_cache

"""The training pipeline: validate → split → tune → fit → evaluate → register → promote.

No `from __future__ import annotations` here: KFP reads the component signatures at runtime.
"""

from kfp import compiler, dsl
from kfp.dsl import Dataset, Input, Model, Output

# The platform image carries clinops and its core runtime; components import from it, never pip-install.
PLATFORM_IMAGE = "ghcr.io/clinops/platform:0.1.0"
PIPELINE_NAME = "clinops-training"


@dsl.component(base_image=PLATFORM_IMAGE, install_kfp_package=False)
def start_run(spec_json: str, job_name: str, tracking_uri: str) -> str:
    from clinops.training import steps

    return steps.start_run(spec_json, job_name, tracking_uri)


@dsl.component(base_image=PLATFORM_IMAGE, install_kfp_package=False)
def validate_dataset(spec_json: str, run_id: str, tracking_uri: str, lake_root: str, dataset: Output[Dataset]):
    from clinops.training import steps

    steps.validate_dataset(spec_json, run_id, tracking_uri, lake_root, dataset.path)


@dsl.component(base_image=PLATFORM_IMAGE, install_kfp_package=False)
def split_dataset(
    spec_json: str,
    run_id: str,
    tracking_uri: str,
    dataset: Input[Dataset],
    train: Output[Dataset],
    test: Output[Dataset],
):
    from clinops.training import steps

    steps.split_dataset(spec_json, run_id, tracking_uri, dataset.path, train.path, test.path)


@dsl.component(base_image=PLATFORM_IMAGE, install_kfp_package=False)
def tune(spec_json: str, run_id: str, tracking_uri: str, train: Input[Dataset]) -> str:
    from clinops.training import steps

    return steps.tune(spec_json, run_id, tracking_uri, train.path)


@dsl.component(base_image=PLATFORM_IMAGE, install_kfp_package=False)
def fit_final(
    spec_json: str, run_id: str, tracking_uri: str, train: Input[Dataset], best_json: str, model: Output[Model]
):
    from clinops.training import steps

    steps.fit_final(spec_json, run_id, tracking_uri, train.path, best_json, model.path)


@dsl.component(base_image=PLATFORM_IMAGE, install_kfp_package=False)
def evaluate(spec_json: str, run_id: str, tracking_uri: str, model: Input[Model], test: Input[Dataset]) -> str:
    from clinops.training import steps

    return steps.evaluate(spec_json, run_id, tracking_uri, model.path, test.path)


@dsl.component(base_image=PLATFORM_IMAGE, install_kfp_package=False)
def register(
    spec_json: str, run_id: str, tracking_uri: str, job_name: str, model: Input[Model], train: Input[Dataset]
) -> str:
    from clinops.training import steps

    return steps.register(spec_json, run_id, tracking_uri, job_name, model.path, train.path)


@dsl.component(base_image=PLATFORM_IMAGE, install_kfp_package=False)
def promote(
    spec_json: str, run_id: str, tracking_uri: str, version: str, test: Input[Dataset], metrics_json: str
) -> str:
    from clinops.training import steps

    return steps.promote(spec_json, run_id, tracking_uri, version, test.path, metrics_json)


@dsl.pipeline(name=PIPELINE_NAME, description="Train, tune, evaluate, register and promote a clinops model.")
def training_pipeline(spec_json: str, job_name: str, tracking_uri: str, lake_root: str) -> str:
    run = start_run(spec_json=spec_json, job_name=job_name, tracking_uri=tracking_uri)
    common = {"spec_json": spec_json, "run_id": run.output, "tracking_uri": tracking_uri}
    data = validate_dataset(**common, lake_root=lake_root)
    split = split_dataset(**common, dataset=data.outputs["dataset"])
    search = tune(**common, train=split.outputs["train"])
    fitted = fit_final(**common, train=split.outputs["train"], best_json=search.output)
    scored = evaluate(**common, model=fitted.outputs["model"], test=split.outputs["test"])
    version = register(**common, job_name=job_name, model=fitted.outputs["model"], train=split.outputs["train"])
    decision = promote(**common, version=version.output, test=split.outputs["test"], metrics_json=scored.output)
    return decision.output


def compile_pipeline(path: str) -> None:
    """Write the KFP IR YAML that the operator submits on a cluster."""
    compiler.Compiler().compile(training_pipeline, package_path=path)

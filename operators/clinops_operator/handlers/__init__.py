"""The operator's kopf handlers, one module per kind; importing this package registers them and the startup hook."""

from clinops_operator import settings
from clinops_operator.handlers import drift_monitor, model_deployment, training_job

__all__ = ["drift_monitor", "model_deployment", "settings", "training_job"]

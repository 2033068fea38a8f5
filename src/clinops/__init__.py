"""clinops: a Kubernetes-native MLOps platform for clinical machine learning."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("clinops")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

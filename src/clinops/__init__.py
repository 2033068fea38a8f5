"""clinops: a Kubernetes-native MLOps platform for clinical machine learning."""

"""The clinops operator: reconciles TrainingJob, ModelDeployment and DriftMonitor into cluster objects."""

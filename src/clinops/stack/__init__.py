"""The real-component bench: Kafka (KRaft), MinIO and an MLflow server, fetched into a cache and run locally."""

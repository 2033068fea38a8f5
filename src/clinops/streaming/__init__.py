"""Kafka ingestion into the lake and, under flink/, the PyFlink stream jobs."""

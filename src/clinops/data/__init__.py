"""Synthetic clinical data, record schemas, validation and quality scoring."""

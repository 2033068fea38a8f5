"""Pydantic models of the clinops custom resources: the one source of CRD schemas, samples and CLI input."""

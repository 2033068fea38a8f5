"""Model serving: the FastAPI server, request schemas, fast scorers, canary routing and the prediction log."""

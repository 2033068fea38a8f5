"""Pure functions from typed specs to the manifests of the objects the operator owns."""

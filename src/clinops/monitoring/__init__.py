"""Drift statistics and reference profiles (pure numpy/scipy: shared by the batch and the stream runtime)."""

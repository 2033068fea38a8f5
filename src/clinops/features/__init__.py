"""Feature definitions and offline feature tables."""

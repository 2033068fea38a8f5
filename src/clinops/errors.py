"""The base of every error clinops reports to a user as one readable line."""


class ClinopsError(Exception):
    """An expected failure with a message fit for a user: bad input, an unreachable service, missing data."""

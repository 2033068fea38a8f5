"""Which loaded version answers a request: the primary, or the canary for a stable share of sticky keys."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from clinops.serving.model import ServableModel

PRIMARY = "primary"
CANARY = "canary"
# Buckets of the key space: a traffic share is honoured to 0.01 percentage points.
BUCKETS = 10_000


def bucket(key: str) -> int:
    """A stable bucket for a key: the same on every replica, across restarts and Python versions."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


@dataclass(frozen=True)
class Routing:
    """Everything one request needs, read once per request; a reload replaces the whole object.

    Holding one reference for the whole request is what keeps a request on one version while a swap happens.
    """

    primary: ServableModel
    canary: ServableModel | None = None
    canary_percent: float = 0.0

    def variant_for(self, key: str | None) -> tuple[str, ServableModel]:
        if self.canary is None or self.canary_percent <= 0:
            return PRIMARY, self.primary
        # Without a key there is nothing to be sticky about: route that one request at random, at the same share.
        position = bucket(key) if key is not None else random.randrange(BUCKETS)
        if position < self.canary_percent * BUCKETS / 100:
            return CANARY, self.canary
        return PRIMARY, self.primary

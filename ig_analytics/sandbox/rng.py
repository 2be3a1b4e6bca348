"""Counter/key based deterministic randomness: every random quantity is a pure function of its keys.

No shared generator state, so values do not depend on the order in which things are asked for (lazy
generation, concurrent requests) and the same seed always gives the same world.
"""

from __future__ import annotations

import hashlib
import math
import struct
from statistics import NormalDist

_ND = NormalDist()
_INV53 = 1.0 / (1 << 53)
_Q8 = struct.Struct(">8Q")


def h64(*keys: object) -> int:
    data = "\x1f".join(map(str, keys)).encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def unit(*keys: object) -> float:
    """Uniform in [0, 1)."""
    return (h64(*keys) >> 11) * _INV53


def uniform(lo: float, hi: float, *keys: object) -> float:
    return lo + (hi - lo) * unit(*keys)


def normal(*keys: object) -> float:
    u = min(max(unit(*keys), 1e-12), 1.0 - 1e-12)
    return _ND.inv_cdf(u)


def lognormal(median: float, sigma: float, *keys: object) -> float:
    return median * math.exp(sigma * normal(*keys))


def choice(seq, *keys: object):
    return seq[h64(*keys) % len(seq)]


def weighted(pairs, *keys: object):
    """pairs: sequence of (item, weight)."""
    total = sum(w for _, w in pairs)
    x = unit(*keys) * total
    for item, w in pairs:
        x -= w
        if x < 0:
            return item
    return pairs[-1][0]


def hexdigest(*keys: object, length: int = 32) -> str:
    data = "\x1f".join(map(str, keys)).encode()
    return hashlib.sha256(data).hexdigest()[:length]


class Stream:
    """A sequence of uniforms from one key (8 per hash): cheap when one object needs many numbers."""

    __slots__ = ("_prefix", "_block", "_vals")

    def __init__(self, *keys: object) -> None:
        self._prefix = "\x1f".join(map(str, keys)).encode()
        self._block = 0
        self._vals: list[float] = []

    def unit(self) -> float:
        if not self._vals:
            raw = hashlib.blake2b(self._prefix + b"#%d" % self._block, digest_size=64).digest()
            self._block += 1
            self._vals = [(v >> 11) * _INV53 for v in reversed(_Q8.unpack(raw))]
        return self._vals.pop()

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self.unit()

    def lognormal(self, median: float, sigma: float) -> float:
        u = min(max(self.unit(), 1e-12), 1.0 - 1e-12)
        return median * math.exp(sigma * _ND.inv_cdf(u))

    def below(self, n: int) -> int:
        return int(self.unit() * n)

    def choice(self, seq):
        return seq[self.below(len(seq))]

    def weighted(self, pairs):
        total = sum(w for _, w in pairs)
        x = self.unit() * total
        for item, w in pairs:
            x -= w
            if x < 0:
                return item
        return pairs[-1][0]

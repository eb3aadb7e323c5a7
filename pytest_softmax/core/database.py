"""Hypothesis example database, namespaced per check.

Every check runs the same inner search function, so Hypothesis would file
the failures of every model under one key and replay model A's failing
input against model B.  Wrapping the user's database (whatever their
profile configures) with a key prefix keeps checks apart while failures are
still saved and replayed first on the next run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from hypothesis.database import ExampleDatabase


class NamespacedDatabase(ExampleDatabase):
    def __init__(self, inner: ExampleDatabase, namespace: str) -> None:
        super().__init__()
        self.inner = inner
        # A node id holds the file name as the OS gave it: a non-UTF-8 byte
        # arrives as a lone surrogate, which the strict codec refuses.
        self.prefix = hashlib.sha256(namespace.encode("utf-8", "surrogatepass")).digest()[:16]

    def __repr__(self) -> str:
        return f"NamespacedDatabase({self.inner!r}, prefix={self.prefix.hex()})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, NamespacedDatabase)
            and self.inner == other.inner
            and self.prefix == other.prefix
        )

    def __hash__(self) -> int:
        return hash((self.prefix, id(self.inner)))

    def _key(self, key: bytes) -> bytes:
        return self.prefix + key

    def save(self, key: bytes, value: bytes) -> None:
        self.inner.save(self._key(key), value)

    def fetch(self, key: bytes) -> Iterable[bytes]:
        return self.inner.fetch(self._key(key))

    def delete(self, key: bytes, value: bytes) -> None:
        self.inner.delete(self._key(key), value)

    def move(self, src: bytes, dest: bytes, value: bytes) -> None:
        self.inner.move(self._key(src), self._key(dest), value)

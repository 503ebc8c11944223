"""A least-recently-used memo that threads share (the suites run units in threads).

Lookups and inserts hold one lock; the value is computed outside it, so a slow computation
never blocks other keys (two threads missing the same key at once both compute it, and the
later insert wins: the memos here hold pure functions of their key).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any


class SharedLRU:
    """At most ``size`` entries; ``get`` marks an entry recently used, ``put`` drops the
    least recently used beyond ``size``. ``hits`` and ``puts`` count lookups that found an
    entry and inserts."""

    def __init__(self, size: int):
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"SharedLRU: size must be an integer >= 1, got {size!r}")
        self.size = size
        self.hits = self.puts = 0
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        """The value held for ``key`` (None where there is none)."""
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return self._items[key]

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self.puts += 1
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def values(self) -> list[Any]:
        with self._lock:
            return list(self._items.values())

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

"""td_jax.memo.SharedLRU: the memo the compile cache, the return truth and the bootstrap's
resampled means share between unit threads."""

from __future__ import annotations

import threading

import pytest

from td_jax.memo import SharedLRU


def test_the_least_recently_used_entry_goes_first():
    memo = SharedLRU(2)
    memo.put("a", 1)
    memo.put("b", 2)
    assert memo.get("a") == 1  # now "b" is the least recently used
    memo.put("c", 3)
    assert memo.get("b") is None and memo.values() == [1, 3]
    assert (memo.hits, memo.puts, len(memo)) == (1, 3, 2)
    with pytest.raises(ValueError, match="size must be an integer >= 1, got 0"):
        SharedLRU(0)


def test_threads_share_it_without_losing_entries():
    memo = SharedLRU(64)

    def work(k: int) -> None:
        for i in range(2000):
            memo.put((k, i % 16), i)
            memo.get((k, (i + 1) % 16))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(memo) == 64 and memo.puts == 8000

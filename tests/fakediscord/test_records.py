"""The bounded containers behind the fake's records: RecordLog (a list keeping its newest items)
and BoundedDict (a lookup table forgetting its oldest entries)."""

from __future__ import annotations

import pytest

from fakediscord import BoundedDict, RecordLog


def test_a_record_log_keeps_its_newest_items_and_reads_like_a_list() -> None:
    log: RecordLog[int] = RecordLog(3)
    for n in range(5):
        log.append(n)
    assert log == [2, 3, 4]
    assert list(log) == [2, 3, 4]
    assert log != [0, 1, 2, 3, 4]
    assert len(log) == 3
    assert log.dropped == 2
    assert log.total == 5
    assert log[0] == 2
    assert log[-1] == 4
    assert log[1:] == [3, 4]
    assert list(reversed(log)) == [4, 3, 2]
    assert 3 in log
    assert 0 not in log
    assert log == RecordLog(3, [2, 3, 4])
    assert repr(log) == "RecordLog([2, 3, 4], maxlen=3)"
    log.clear()
    assert log == []
    assert log.total == 5


def test_a_record_log_without_a_bound_keeps_everything() -> None:
    log: RecordLog[int] = RecordLog(None, range(50_000))
    assert len(log) == 50_000
    assert log.dropped == 0
    assert log[:2] == [0, 1]


def test_a_bound_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RecordLog(0)
    with pytest.raises(ValueError, match="at least 1"):
        BoundedDict(0)


def test_a_bounded_dict_forgets_its_oldest_entries() -> None:
    table: BoundedDict[str, int] = BoundedDict(2)
    table["a"], table["b"] = 1, 2
    table["a"] = 10  # rewritten: now the newest
    table["c"] = 3
    assert table == {"a": 10, "c": 3}
    assert "b" not in table
    assert table.get("b") is None

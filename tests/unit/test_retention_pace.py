"""How retention sizes its batches and rests between them (command_service/retention.py)."""

from __future__ import annotations

from command_service.retention import (
    FIRST_BATCH,
    MAX_BATCH,
    MIN_BATCH,
    PRUNE_BATCH_TARGET_S,
    REST_FACTOR,
    _Pace,
)


def test_a_batch_slower_than_the_target_makes_the_next_one_smaller():
    pace = _Pace()
    pace.after(FIRST_BATCH, PRUNE_BATCH_TARGET_S * 4)
    assert pace.size == FIRST_BATCH // 4


def test_a_quick_batch_makes_the_next_one_bigger_but_never_past_the_bounds():
    pace = _Pace()
    pace.after(FIRST_BATCH, PRUNE_BATCH_TARGET_S / 2)
    assert pace.size == FIRST_BATCH * 2
    pace.after(pace.size, 0)
    assert pace.size == MAX_BATCH
    pace.after(pace.size, 60.0)  # the lock was busy a whole minute
    assert pace.size == MIN_BATCH


def test_the_pruner_rests_longer_than_it_held_the_writer():
    assert _Pace().after(100, 0.010) == 0.010 * REST_FACTOR
    assert REST_FACTOR >= 1

"""What the version ledger's record says of a webhook notice (``KnownVersion.explains``) and of a
balance move (``moved_by_us``): the rules the change worker skips reads by (docs/pull.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.mapping.versions import KnownVersion

SECOND = 1_796_000_000  # a whole second (epoch)


def at(offset: float) -> datetime:
    return datetime.fromtimestamp(SECOND + offset, UTC)


def written(op: str, token: int = 0) -> KnownVersion:
    """Our write, QBO's answer stamped at SECOND."""
    return KnownVersion("Invoice", "7", token, own=True, updated_at=SECOND, written_at=SECOND, written_op=op)


def applied(token: int, *, deleted: bool = False) -> KnownVersion:
    """Another's change we read, stamped at SECOND."""
    return KnownVersion("Invoice", "7", token, own=False, updated_at=SECOND, deleted=deleted)


@pytest.mark.parametrize(
    ("version", "offset", "operation", "expected"),
    [
        # our write: the same second and operation, or anything older
        (written("Create"), 0.4, "Create", "own"),
        (written("Create"), -3, "Update", "own"),
        # a bookkeeper's edit in the second of our Create: told apart by its operation
        (written("Create"), 0.4, "Update", None),
        (written("Update", 3), 0.9, "Update", "own"),
        (written("Update", 3), 1.0, "Update", None),  # the next second: news
        # a version we applied: anything from an older second
        (applied(0), -1, "Update", "applied"),
        # ... and in its own second the changes it can be: its Create
        (applied(0), 0.7, "Create", "applied"),
        (applied(0), 0.7, "Update", None),  # an Update after the Create we read
        # ... a later version's Create and Update (a second Update in that second: the sweep's)
        (applied(2), 0.7, "Update", "applied"),
        (applied(2), 0.7, "Delete", None),
        (applied(2, deleted=True), 0.7, "Delete", "applied"),
        (applied(2), 1.2, "Update", None),
    ],
)
def test_a_notice_is_explained_by_what_the_ledger_holds(
    version: KnownVersion, offset: float, operation: str, expected: str | None
) -> None:
    assert version.explains(at(offset), operation, tolerance=1.0) == expected


def test_an_update_near_our_payment_is_ours_and_a_later_one_is_not() -> None:
    touched = KnownVersion("Invoice", "7", 1, own=True, written_at=SECOND - 60, touched_at=SECOND)
    assert touched.explains(at(1.5), "Update", tolerance=1.0) == "own"
    assert touched.explains(at(2.5), "Update", tolerance=1.0) is None


def test_a_balance_move_is_ours_only_near_our_payment() -> None:
    row = {"Id": "7", "SyncToken": "2", "MetaData": {"LastUpdatedTime": at(0.5).isoformat()}}
    assert KnownVersion("Invoice", "7", 1, touched_at=SECOND).moved_by_us(row)
    assert not KnownVersion("Invoice", "7", 1, touched_at=SECOND - 5).moved_by_us(row)
    assert not KnownVersion("Invoice", "7", 1).moved_by_us(row)  # never touched: another's payment

"""The CLI's tables fit the width they are printed in (``qbo_link_cli.tables``): one line per row,
the widest columns cut first with an ellipsis, full values with ``--wide``."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from qbo_link_cli.tables import WIDE, FittedTable, fitted_widths, output_width, table

LONG_NAME = "Sandbox Company US 1 with a name much longer than any terminal column"


def printed(made: FittedTable, width: int) -> list[str]:
    buffer = io.StringIO()
    Console(file=buffer, width=width, soft_wrap=False, color_system=None).print(made)
    return buffer.getvalue().splitlines()


def tenants() -> FittedTable:
    made = table(None, "Tenant", "Realm", "Company", "Country", "Health", "Connected since", "Disconnected")
    made.add_row("firm-1", "9341452352305722", LONG_NAME, "US", "[green]healthy[/]", "2026-11-20 10:00", "")
    made.add_row(
        "firm-2", "42", "Short", "CA", "[red]disconnected[/]", "2026-11-20 10:00", "2026-11-21 08:30"
    )
    return made


def test_the_widest_columns_are_cut_first_and_narrow_ones_keep_their_values() -> None:
    assert fitted_widths([6, 16, 69, 7], 60) == [6, 16, 31, 7]
    assert fitted_widths([10, 30, 30], 50) == [10, 20, 20]
    assert fitted_widths([10, 31, 30], 50) == [10, 20, 20]
    assert fitted_widths([3, 20], 8) == [3, 5]
    assert fitted_widths([3, 20, 20], 2) == [3, 4, 4]  # never below the minimum
    assert fitted_widths([5, 6], 80) == [5, 6]


@pytest.mark.parametrize("width", [80, 60, 40])
def test_every_row_is_one_line_within_the_width(width: int) -> None:
    lines = printed(tenants(), width)

    assert max(len(line) for line in lines) <= width
    header, rule, *rows = [line for line in lines if line.strip()]
    assert header.split()[0].startswith("Te")  # the header is one line too
    assert set(rule.strip()) == {"─"}
    assert len(rows) == 2  # nothing wrapped onto a second line
    assert "…" in rows[0]


def test_at_80_columns_the_header_is_whole_words_or_cut_with_an_ellipsis() -> None:
    [header] = [line for line in printed(tenants(), 80) if "Tenant" in line]

    assert header.split()[:2] == ["Tenant", "Realm"]
    for word in header.split():
        assert word in {
            "Tenant",
            "Realm",
            "Company",
            "Country",
            "Health",
            "Connected",
            "since",
        } or word.endswith("…")
    assert printed(tenants(), 80)[2].startswith("firm-1  ")


def test_columns_kept_whole_are_cut_only_when_the_others_are_at_their_minimum() -> None:
    assert fitted_widths([7, 25, 15, 47], 50, whole=[True, False, True, False]) == [7, 14, 15, 14]
    assert fitted_widths([7, 25, 15, 47], 26, whole=[True, False, True, False]) == [7, 4, 11, 4]
    made = table(None, "Kind", "Id", "State", "Why", whole=("Kind", "State"))
    made.add_row("invoice", "i-waiting-for-a-work-code", "needs_attention", "item_not_mapped " * 3)

    [row] = printed(made, 60)[2:]

    assert row.split()[0] == "invoice"
    assert row.split()[2] == "needs_attention"
    assert row.count("…") == 2
    assert len(row) <= 60


def test_wide_prints_every_value_in_full() -> None:
    lines = printed(tenants(), WIDE)

    assert "…" not in "".join(lines)
    assert any(LONG_NAME in line and "9341452352305722" in line for line in lines)
    assert any("Connected since" in line and "Disconnected" in line for line in lines)


def test_a_table_is_fitted_again_for_each_width() -> None:
    made = tenants()
    assert "…" in "".join(printed(made, 80))
    assert LONG_NAME in "".join(printed(made, WIDE))


def test_the_width_is_the_terminals_or_80_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "132")
    assert output_width() == 132
    assert output_width(wide=True) == WIDE
    monkeypatch.delenv("COLUMNS")
    monkeypatch.setattr("os.get_terminal_size", lambda *_: (_ for _ in ()).throw(OSError("not a terminal")))
    assert output_width() == 80

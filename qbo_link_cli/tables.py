"""Tables that fit the terminal: every row on one line, never wrapped.

A table is laid out for the width it is printed in (``output_width``: the terminal's, 80 when the
output is not a terminal).  When its columns are wider than that, the widest are cut first, one
character at a time, down to ``MIN_COLUMN``, and a cut value ends with an ellipsis (``…``).  A
table may name columns to keep whole (short codes: a kind, a state, a date), which are cut only
when cutting every other column to ``MIN_COLUMN`` was not enough.  ``--wide`` prints on a console
of ``WIDE`` columns, where nothing is cut: full values, lines as long as they need.

Columns are two spaces apart, with no margin at the edges, so that 80 columns hold as much as they
can.  Imported when a command prints (rich is loaded then, not at start-up).
"""

from __future__ import annotations

import shutil
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, Final

from rich import box
from rich.measure import Measurement
from rich.table import Table

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult

NOT_A_TERMINAL: Final = 80  # the width when the output is a file or a pipe
WIDE: Final = 100_000  # ``--wide``: a width no table reaches, so nothing is cut
MIN_COLUMN: Final = 4  # a cut column keeps this much: three characters and the ellipsis


def output_width(*, wide: bool = False) -> int:
    """The width tables are fitted to: the terminal's (``COLUMNS`` when set), 80 when the output
    is not a terminal; ``WIDE`` with ``--wide``."""
    if wide:
        return WIDE
    return shutil.get_terminal_size((NOT_A_TERMINAL, 24)).columns


def fitted_widths(
    natural: Sequence[int], budget: int, whole: Sequence[bool] = (), minimum: int = MIN_COLUMN
) -> list[int]:
    """The columns' widths cut to ``budget`` in all: the widest column loses a character until
    the total fits (the rightmost of equals first), none below ``minimum``.  Columns marked
    ``whole`` are cut only once the others are at ``minimum``.  When even that is too wide, the
    widths reached are returned (rich then narrows every column evenly)."""
    widths = list(natural)
    excess = sum(widths) - budget
    marked = list(whole) + [False] * (len(widths) - len(whole))
    for pool in ([i for i, keep in enumerate(marked) if not keep], range(len(widths))):
        while excess > 0:
            cuttable = [i for i in pool if widths[i] > minimum]
            if not cuttable:
                break
            widest = max(cuttable, key=lambda i: (widths[i], i))
            widths[widest] -= 1
            excess -= 1
    return widths


class FittedTable(Table):
    """A rich ``Table`` whose rows stay on one line: fitted to the width it is printed in
    (``fitted_widths``), each cut value ending with an ellipsis; ``whole`` names the columns (by
    header) cut last."""

    def __init__(self, *args: Any, whole: Collection[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.whole = frozenset(whole)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        self._fit(console, options)
        yield from super().__rich_console__(console, options)

    def _fit(self, console: Console, options: ConsoleOptions) -> None:
        unbounded = options.update_width(WIDE)
        for column in self.columns:
            column.width = None
            column.no_wrap = True
            column.overflow = "ellipsis"
        natural = [
            max(Measurement.get(console, unbounded, cell).maximum for cell in (column.header, *column.cells))
            for column in self.columns
        ]
        # What the table adds to its cells: padding, and the box's edges and separators.
        overhead = Measurement.get(console, unbounded, self).maximum - sum(natural)
        whole = [str(column.header) in self.whole for column in self.columns]
        widths = fitted_widths(natural, options.max_width - overhead, whole)
        for column, width, full in zip(self.columns, widths, natural, strict=True):
            if width < full:
                column.width = width


def table(title: str | None, *columns: str, whole: Collection[str] = (), **options: Any) -> FittedTable:
    """The commands' table: a simple head, the title on the left in bold, columns two spaces
    apart (``options`` may say otherwise: rich ``Table``'s arguments), one line per row;
    ``whole``: the columns cut last."""
    settings: dict[str, Any] = {
        "box": box.SIMPLE_HEAD,
        "title_justify": "left",
        "title_style": "bold",
        "show_edge": False,
        "pad_edge": False,
        "collapse_padding": True,
    }
    made = FittedTable(title=title, whole=whole, **{**settings, **options})
    for column in columns:
        made.add_column(column, no_wrap=True, overflow="ellipsis")
    return made

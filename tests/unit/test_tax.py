"""The sandbox's sales-tax arithmetic (qbo_sandbox.accounting.tax), exact to the cent."""

from __future__ import annotations

from decimal import Decimal

import pytest

from qbo_sandbox.accounting import tax

D = Decimal
STATE = tax.Rate("4", D(6))
COUNTY = tax.Rate("6", D("2.25"))
VAT = tax.Rate("1", D(20))
GST = tax.Rate("7", D(5))
PST = tax.Rate("8", D(7))


def test_prorate_adds_up_exactly_and_gives_leftover_cents_to_largest_remainders():
    shares = tax.prorate(D("10.00"), [D(1), D(1), D(1)])

    assert shares == [D("3.34"), D("3.33"), D("3.33")]
    assert sum(shares) == D("10.00")


def test_prorate_follows_the_weights():
    assert tax.prorate(D("8.30"), [D(6), D("2.25")]) == [D("6.04"), D("2.26")]


def test_prorate_with_zero_weights_gives_everything_to_the_first_share():
    assert tax.prorate(D("1.00"), [D(0), D(0)]) == [D("1.00"), D(0)]
    assert tax.prorate(D("1.00"), []) == []


def test_prorate_keeps_the_sign_of_a_negative_total():
    shares = tax.prorate(D("-1.00"), [D(1), D(2)])

    assert shares == [D("-0.33"), D("-0.67")]


def test_us_tax_is_rounded_once_at_transaction_level():
    # Three lines of 33.33 at 8 %: per line 2.6664 -> 2.67 would give 8.01; QBO AST gives 8.00.
    lines = tax.transaction_tax(D("99.99"), [tax.Rate("3", D(8))])

    assert [(t.rate.rate_id, t.net_taxable, t.amount) for t in lines] == [("3", D("99.99"), D("8.00"))]


def test_us_group_code_is_rounded_once_on_the_combined_rate_then_shared():
    # 1.00 at 2.5 % + 2.5 %: rounding each rate would give 0.03 + 0.03; once on 5 % gives 0.05.
    lines = tax.transaction_tax(D("1.00"), [tax.Rate("a", D("2.5")), tax.Rate("b", D("2.5"))])

    assert sum(t.amount for t in lines) == D("0.05")
    assert [t.amount for t in lines] == [D("0.03"), D("0.02")]


def test_us_tax_rounds_half_up_not_to_even():
    assert tax.transaction_tax(D("2.50"), [tax.Rate("x", D(5))])[0].amount == D("0.13")


def test_transaction_tax_without_rates_is_empty():
    assert tax.transaction_tax(D(100), []) == ()


def test_vat_is_rounded_per_line_and_summed_per_rate():
    lines = [tax.TaxableLine(D("33.33"), (VAT,)) for _ in range(3)]

    result = tax.per_line_tax(lines)

    assert [r.tax for r in result.lines] == [D("6.67")] * 3
    assert [(t.rate.rate_id, t.net_taxable, t.amount) for t in result.tax_lines] == [
        ("1", D("99.99"), D("20.01"))
    ]
    assert result.total == D("20.01")


def test_vat_gives_one_tax_line_per_rate_in_first_seen_order():
    lines = [
        tax.TaxableLine(D(100), (GST, PST)),
        tax.TaxableLine(D(50), (GST,)),
    ]

    result = tax.per_line_tax(lines)

    assert [(t.rate.rate_id, t.net_taxable, t.amount) for t in result.tax_lines] == [
        ("7", D(150), D("7.50")),
        ("8", D(100), D("7.00")),
    ]


def test_tax_inclusive_line_is_split_into_net_and_tax_that_add_up_to_the_price():
    result = tax.per_line_tax([tax.TaxableLine(D(100), (VAT,))], inclusive=True)

    line = result.lines[0]
    assert (line.net, line.tax, line.gross) == (D("83.33"), D("16.67"), D("100.00"))
    assert result.tax_lines[0].net_taxable == D("83.33")


def test_tax_inclusive_with_two_rates_shares_the_tax_and_keeps_the_price():
    result = tax.per_line_tax([tax.TaxableLine(D(10), (GST, PST))], inclusive=True)

    assert result.lines[0].net == D("8.93")
    assert [t.amount for t in result.tax_lines] == [D("0.45"), D("0.62")]
    assert result.lines[0].net + result.total == D("10.00")


def test_discount_reduces_the_taxable_base_of_a_line():
    result = tax.per_line_tax([tax.TaxableLine(D(100), (VAT,), discount=D(10))])

    assert result.lines[0].tax == D("18.00")
    assert result.tax_lines[0].net_taxable == D(90)


def test_net_of_tax():
    assert tax.net_of_tax(D("112.00"), [GST, PST]) == D("100.00")
    assert tax.net_of_tax(D(50), []) == D("50.00")


def test_an_explicit_total_replaces_the_computed_tax_and_follows_its_shares():
    computed = tax.transaction_tax(D(100), [STATE, COUNTY])

    honoured = tax.honour_total(D("8.30"), computed)

    assert [t.amount for t in computed] == [D("6.00"), D("2.25")]
    assert [t.amount for t in honoured] == [D("6.04"), D("2.26")]
    assert [t.net_taxable for t in honoured] == [D(100), D(100)]


def test_an_explicit_total_on_zero_computed_tax_follows_net_times_percent():
    lines = (tax.TaxLine(STATE, D(100), D(0)), tax.TaxLine(COUNTY, D(0), D(0)))

    assert [t.amount for t in tax.honour_total(D(3), lines)] == [D("3.00"), D("0.00")]
    assert tax.honour_total(D(3), ()) == ()


def test_sent_tax_lines_replace_their_rates_exactly_and_leave_the_others_computed():
    hst = tax.Rate("2", D(13))
    computed = tax.per_line_tax(
        [
            tax.TaxableLine(D(1000), (hst,)),
            tax.TaxableLine(D(-300), (GST, PST)),
            tax.TaxableLine(D(10), (GST,)),
        ]
    ).tax_lines

    honoured = tax.honour_tax_lines(
        computed,
        {"2": tax.SentTaxLine(D(130)), "7": tax.SentTaxLine(D("-14.504"), D("-290.00"))},
    )

    assert [(t.rate.rate_id, t.net_taxable, t.amount) for t in honoured] == [
        ("2", D(1000), D("130.00")),
        ("7", D("-290.00"), D("-14.50")),  # the sent net is kept, the amount rounded half up
        ("8", D(-300), D("-21.00")),  # not sent: computed
    ]


def test_a_tax_line_for_a_rate_the_lines_do_not_use_is_an_error():
    computed = tax.per_line_tax([tax.TaxableLine(D(100), (GST,))]).tax_lines

    with pytest.raises(ValueError, match="'8'"):
        tax.honour_tax_lines(computed, {"8": tax.SentTaxLine(D(7))})


@pytest.mark.parametrize(
    ("discount", "amounts", "expected"),
    [
        (D(10), [D(100), D(100)], [D("5.00"), D("5.00")]),
        (D("0.01"), [D(1), D(3)], [D("0.00"), D("0.01")]),
    ],
)
def test_allocate_discount(discount, amounts, expected):
    assert tax.allocate_discount(discount, amounts) == expected

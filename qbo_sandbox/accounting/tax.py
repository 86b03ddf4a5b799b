"""Sales-tax arithmetic of the sandbox, as pure functions on Decimal (no Company, no JSON).

Two models, chosen by the company's country (see ``transactions.py``):

* US Automated Sales Tax: lines are only taxable (``TAX``) or exempt (``NON``); the whole taxable
  total is taxed at the transaction's tax code and the tax is rounded **once**, at transaction
  level (half up).  A code made of several rates is computed once on the combined percentage and
  the rounded amount is then shared between the rates, so the total never drifts by a cent from
  ``taxable × combined rate``.
* VAT/GST (CA, GB, AU): every line carries its own tax code; each line's tax is computed **per
  rate and rounded per line**, then summed into one ``TaxLine`` per rate.  With tax-inclusive
  prices the line amount is gross and the net is ``gross / (1 + rate)``.

An explicit total (the app's own tax, sent as ``TxnTaxDetail.TotalTax``) replaces the computed one
and is shared across the computed tax lines in proportion to their amounts.  Outside the US the
caller may instead send the tax of each rate (``TxnTaxDetail.TaxLine``): those amounts replace the
computed ones rate by rate, exactly, and the rates it does not send keep their computed tax.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
ZERO = Decimal(0)


def round_cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Rate:
    """One component of a tax code: a TaxRate and its percentage (8 means 8 %)."""

    rate_id: str
    percent: Decimal
    name: str | None = None


@dataclass(frozen=True)
class TaxLine:
    """One ``TxnTaxDetail.TaxLine``: the tax of one rate on the amount it applies to."""

    rate: Rate
    net_taxable: Decimal
    amount: Decimal


@dataclass(frozen=True)
class TaxableLine:
    """A sales line as the tax engine sees it: its amount (gross when tax-inclusive), the rates of
    its tax code, and the part of a document discount that reduces its taxable base."""

    amount: Decimal
    rates: tuple[Rate, ...]
    discount: Decimal = ZERO


@dataclass(frozen=True)
class LineResult:
    net: Decimal  # the line's amount without tax (what QBO stores in Line.Amount)
    gross: Decimal  # net + its tax when tax-inclusive; the amount as given otherwise
    tax: Decimal


@dataclass(frozen=True)
class TaxResult:
    lines: tuple[LineResult, ...]
    tax_lines: tuple[TaxLine, ...]

    @property
    def total(self) -> Decimal:
        return sum((t.amount for t in self.tax_lines), ZERO)


def prorate(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split ``total`` (in cents) in proportion to ``weights`` so the parts add up exactly.

    Largest remainder: every share is first rounded towards zero, then the cents left over go to
    the shares that lost the most, earliest first on ties.  A zero weight never gets a cent unless
    every weight is zero, in which case the first share takes everything.
    """
    if not weights:
        return []
    total = round_cents(total)
    positive = [abs(w) for w in weights]
    whole = sum(positive, ZERO)
    if whole == 0:
        return [total] + [ZERO] * (len(weights) - 1)
    sign = Decimal(-1) if total < 0 else Decimal(1)
    magnitude = abs(total)
    exact = [magnitude * w / whole for w in positive]
    shares = [e.quantize(CENT, rounding=ROUND_DOWN) for e in exact]
    left = int((magnitude - sum(shares, ZERO)) / CENT)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in order[:left]:
        shares[i] += CENT
    return [sign * s for s in shares]


def combined_percent(rates: Sequence[Rate]) -> Decimal:
    return sum((r.percent for r in rates), ZERO)


def transaction_tax(taxable: Decimal, rates: Sequence[Rate]) -> tuple[TaxLine, ...]:
    """US AST: tax on the transaction's taxable total, rounded once at transaction level."""
    if not rates:
        return ()
    total = round_cents(taxable * combined_percent(rates) / HUNDRED)
    shares = prorate(total, [r.percent for r in rates])
    return tuple(TaxLine(r, taxable, share) for r, share in zip(rates, shares, strict=True))


def net_of_tax(gross: Decimal, rates: Sequence[Rate]) -> Decimal:
    """The net amount inside a tax-inclusive ``gross``: gross / (1 + combined rate), to the cent."""
    return round_cents(gross / (1 + combined_percent(rates) / HUNDRED))


def line_tax(line: TaxableLine, *, inclusive: bool) -> tuple[LineResult, list[Decimal]]:
    """VAT/GST: one line's net, gross and tax per rate, each rate rounded on this line."""
    if inclusive:
        gross = round_cents(line.amount)
        net = net_of_tax(gross, line.rates)
        base = net - line.discount
        if line.discount == 0:
            # The gross is what the customer pays: the tax is what is left once the net is
            # rounded, shared between the rates, so net + tax equals the price to the cent.
            per_rate = prorate(gross - net, [r.percent for r in line.rates]) if line.rates else []
        else:
            per_rate = [round_cents(base * r.percent / HUNDRED) for r in line.rates]
        tax = sum(per_rate, ZERO)
        return LineResult(net, net + tax, tax), per_rate
    net = line.amount
    base = net - line.discount
    per_rate = [round_cents(base * r.percent / HUNDRED) for r in line.rates]
    tax = sum(per_rate, ZERO)
    return LineResult(net, net + tax, tax), per_rate


def per_line_tax(lines: Sequence[TaxableLine], *, inclusive: bool = False) -> TaxResult:
    """VAT/GST: every line taxed and rounded on its own, then one TaxLine per rate (first seen first)."""
    results: list[LineResult] = []
    by_rate: dict[str, tuple[Rate, Decimal, Decimal]] = {}
    for line in lines:
        result, per_rate = line_tax(line, inclusive=inclusive)
        results.append(result)
        base = result.net - line.discount
        for rate, amount in zip(line.rates, per_rate, strict=True):
            _, net_sum, tax_sum = by_rate.get(rate.rate_id, (rate, ZERO, ZERO))
            by_rate[rate.rate_id] = (rate, net_sum + base, tax_sum + amount)
    tax_lines = tuple(TaxLine(rate, net, amount) for rate, net, amount in by_rate.values())
    return TaxResult(tuple(results), tax_lines)


def honour_total(total: Decimal, tax_lines: Sequence[TaxLine]) -> tuple[TaxLine, ...]:
    """Replace the computed tax with the caller's ``total``, shared across the tax lines.

    The shares follow the computed amounts; when every computed amount is zero they follow
    ``net × percent`` instead, and failing that the first line takes the whole amount.
    """
    if not tax_lines:
        return ()
    weights = [t.amount for t in tax_lines]
    if all(w == 0 for w in weights):
        weights = [t.net_taxable * t.rate.percent for t in tax_lines]
    shares = prorate(total, weights)
    return tuple(TaxLine(t.rate, t.net_taxable, s) for t, s in zip(tax_lines, shares, strict=True))


@dataclass(frozen=True)
class SentTaxLine:
    """The tax of one rate as the caller sent it: the amount, and the taxable net if it said one."""

    amount: Decimal
    net_taxable: Decimal | None = None


def honour_tax_lines(tax_lines: Sequence[TaxLine], sent: Mapping[str, SentTaxLine]) -> tuple[TaxLine, ...]:
    """The computed tax lines with the caller's amount (rounded to the cent) on every rate it sent
    (keyed by rate id); a rate it did not send keeps its computed tax.  Every sent rate must be one
    of ``tax_lines``: the caller checks that, since only it knows how QBO words the refusal."""
    unknown = set(sent) - {t.rate.rate_id for t in tax_lines}
    if unknown:
        raise ValueError(f"tax lines sent for rates the document does not use: {sorted(unknown)}")
    honoured: list[TaxLine] = []
    for line in tax_lines:
        given = sent.get(line.rate.rate_id)
        if given is None:
            honoured.append(line)
            continue
        net = line.net_taxable if given.net_taxable is None else round_cents(given.net_taxable)
        honoured.append(TaxLine(line.rate, net, round_cents(given.amount)))
    return tuple(honoured)


def allocate_discount(discount: Decimal, amounts: Sequence[Decimal]) -> list[Decimal]:
    """A document discount shared across the lines it reduces, in proportion to their amounts."""
    return prorate(discount, amounts)

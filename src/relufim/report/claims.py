"""The papers' claims next to what a run measured: the table, and how many hold, fail or are left to judgement.

A claim is a record ``{"claim", "source", "predicted", "measured", "holds"}``; ``holds`` is
``True`` or ``False`` for a yes/no test and ``None`` for a statement left to judgement (an
asymptotic bound with unspecified constants, a derived limit, a rate): the measured value
is shown, and the report never counts it as holding.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .document import Paragraph, Table

__all__ = ["ClaimCounts", "count_claims", "claims_table", "JUDGEMENT_NOTE"]

#: What "for judgement" means, said once under every claims table.
JUDGEMENT_NOTE = ("For judgement (holds: –): an asymptotic statement with unspecified constants (delta, xi), a "
                  "derived limit or a rate; the measured value is shown, and it counts neither as holding nor as "
                  "failing.")


@dataclass(frozen=True)
class ClaimCounts:
    """How many claims hold, fail, and are left to judgement.

    Examples
    --------
    >>> c = count_claims([{"holds": True}, {"holds": None}, {"holds": False}, {"holds": True}])
    >>> c.hold, c.fail, c.judgement, c.total
    (2, 1, 1, 4)
    >>> c.text()
    '2 hold, 1 fail, 1 for judgement (4 claims)'
    """

    hold: int
    fail: int
    judgement: int

    @property
    def total(self) -> int:
        """All claims."""
        return self.hold + self.fail + self.judgement

    def text(self) -> str:
        """``"20 hold, 0 fail, 12 for judgement (32 claims)"``: the three counts, always all three."""
        return (f"{self.hold} hold, {self.fail} fail, {self.judgement} for judgement "
                f"({self.total} claim{'' if self.total == 1 else 's'})")

    def facts(self) -> list[tuple[str, int]]:
        """The three counts as report header facts."""
        return [("claims that hold", self.hold), ("claims that fail", self.fail),
                ("claims for judgement", self.judgement)]

    def paragraph(self) -> Paragraph:
        """One sentence with the three counts; a warning when any claim fails."""
        if not self.total:
            return Paragraph("This run recorded no claims.", kind="warning")
        return Paragraph(f"Claims: {self.text()}.", kind="warning" if self.fail else "text")


def count_claims(claims: Iterable[Mapping[str, Any]]) -> ClaimCounts:
    """Count the claims whose ``holds`` is ``True``, ``False`` and anything else (left to judgement)."""
    hold = fail = judgement = 0
    for c in claims:
        h = c.get("holds") if isinstance(c, Mapping) else None
        if h is True:
            hold += 1
        elif h is False:
            fail += 1
        else:
            judgement += 1
    return ClaimCounts(hold, fail, judgement)


#: A bare fitted exponent, "|mean - limit| ~ p^-3.02", as relufim before 0.2 wrote it into claims.
_BARE_RATE = re.compile(r"\|mean - limit\| ~ p\^-?\d+(\.\d+)?(?!\s*±)")


def norm_signs(text: Any) -> Any:
    """``||x||`` as ``‖x‖`` in a table cell's text (reads better; no pipes in a Markdown cell); anything else as is.

    Examples
    --------
    >>> norm_signs("||x|| + x_1"), norm_signs(None)
    ('‖x‖ + x_1', None)
    """
    return text.replace("||", "‖") if isinstance(text, str) else text


def _claim_text(text: Any) -> Any:
    """A claim's text for the table (:func:`norm_signs`); a bare rate without its standard error is not shown.

    Such rates were written by relufim before 0.2.

    Examples
    --------
    >>> _claim_text("1.67 +- 0.002 at p = 1000; |mean - limit| ~ p^-3.02")
    '1.67 +- 0.002 at p = 1000; rate not shown (fitted without a standard error)'
    """
    if not isinstance(text, str):
        return text
    return norm_signs(_BARE_RATE.sub("rate not shown (fitted without a standard error)", text))


def claims_table(claims: Iterable[Mapping[str, Any]], table_id: str = "claims") -> Table:
    """The papers' claims next to the measured values (holds: yes, no, or – for judgement)."""
    rows = [[_claim_text(c.get("claim")), c.get("source"), _claim_text(c.get("predicted")),
             _claim_text(c.get("measured")), c.get("holds") if isinstance(c.get("holds"), bool) else None]
            for c in claims if isinstance(c, Mapping)]
    return Table(["claim", "source", "predicted", "measured", "holds"], rows, id=table_id,
                 caption="The papers' claims and what this run measured (holds: – where it is left to judgement).")

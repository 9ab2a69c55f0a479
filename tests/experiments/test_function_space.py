"""The function-space section of ``relufim reproduce`` (the 2025 results), end to end at the quick size."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_reproduce_section_quick(tmp_path):
    import json

    from relufim.experiments.function_space import reproduce_section

    sec = reproduce_section(tmp_path, quick=True)
    assert sec["name"] == "function_space"
    json.dumps(sec["summary"], allow_nan=False)  # JSON-ready, no NaN
    assert len(sec["claims"]) == 6 and all(c["holds"] for c in sec["claims"]), [c["measured"] for c in sec["claims"]]
    for f in sec["figures"]:
        assert (tmp_path / f["file"]).stat().st_size > 0
    assert sec["markdown"].startswith("## Function space")
    assert "||" not in sec["markdown"]  # norms must not break markdown tables

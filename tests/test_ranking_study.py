"""The ranking study (bench/ranking_study.py) runs on the dev data and its rows make sense."""

from __future__ import annotations

from datetime import date

import pytest

from bench import ranking_study
from tests.conftest import OPPORTUNITIES_CSV as OPPORTUNITIES


def test_study_rows_cover_every_split_and_model() -> None:
    rows = ranking_study.study(OPPORTUNITIES, [date(2017, 4, 1), date(2017, 7, 1)])
    names = [(split, name.split(" (")[0]) for split, name, _ in rows]
    assert ("2017-04-01", "ours") in names and ("2017-07-01", "ours") in names
    # Only the later split has an earlier one to learn from.
    assert sum(name.startswith("logreg, earlier") for _, name in names) == 1
    for _, _, r in rows:
        assert 0.0 <= float(r["recall@1"]) <= float(r["recall@10"]) <= 1.0
        assert 0.0 <= float(r["mrr"]) <= 1.0
    by = {(split, name): r for split, name, r in rows}
    # Trees fitted on the answers memorise them: far above the honest models. If this ever
    # fails, the features no longer reach the winners at all.
    gbm = by[("2017-07-01", "gbm, fitted on the test queries (memorises)")]
    assert float(gbm["mrr"]) > float(by[("2017-07-01", "ours (default rules)")]["mrr"])


def test_cli_rejects_bad_splits(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        ranking_study.main(["--splits", "2017-13-01"])
    assert exc.value.code == 2
    assert "--splits" in capsys.readouterr().err

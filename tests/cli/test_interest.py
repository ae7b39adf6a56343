"""``tollhouse interest`` on a scripted repository and ledger: the figures, and clean errors."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tests.interest.scripted import TEN, ScriptedLedger, ScriptedRepo, day
from tollhouse.cli.main import cli

FIVE = [f"ai {i}\n" for i in range(1, 6)]


def scripted(tmp_path: Path) -> tuple[ScriptedRepo, ScriptedLedger, str]:
    repo = ScriptedRepo(tmp_path / "app")
    c0 = repo.commit(day(0), "start", {"a.py": TEN})
    ledger = ScriptedLedger(tmp_path / "ledger.db", repo.root_commit())
    ledger.call(day(0.5), "2.00", c0)
    c1 = repo.commit(day(1), "feature", {"a.py": [*TEN, *FIVE]})
    ledger.call(day(2), "0.50", c1)
    ledger.call(day(2), "0.30", c1, purpose="rework")
    c2 = repo.commit(day(2), "fix", {"a.py": [*TEN, *FIVE[:4]]})  # drops 1 of c1's lines
    return repo, ledger, c2


def run(*args: str, home: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["interest", *args], env={"TOLLHOUSE_HOME": str(home)})
    return result.exit_code, result.output


def test_json_figures(tmp_path: Path) -> None:
    repo, ledger, c2 = scripted(tmp_path)
    code, out = run(
        "--repo", str(repo.root), "--ledger", str(ledger.path), "--format", "json", home=tmp_path
    )
    assert code == 0, out
    found = json.loads(out)
    assert (found["principal_usd"], found["interest_usd"], found["rate"]) == ("2", "0.8", "0.4")
    assert (found["ai_lines"], found["rewritten_lines"], found["rewritten_share"]) == (5, 1, "0.2")
    assert [(c["commit"], c["lines"], c["spend_usd"]) for c in found["rework"]] == [(c2, 1, "0.8")]
    assert (tmp_path / "interest" / f"{repo.root_commit()}.json").exists()  # the cache
    # A 1-day window: 1 day passed between c1 and c2; it is still within.
    code, out = run("--repo", str(repo.root), "--ledger", str(ledger.path), "--weeks", "1",
                    "--format", "json", home=tmp_path)  # fmt: skip
    assert json.loads(out)["interest_usd"] == "0.8"


def test_table(tmp_path: Path) -> None:
    repo, ledger, c2 = scripted(tmp_path)
    code, out = run("--repo", str(repo.root / "."), "--ledger", str(ledger.path), home=tmp_path)
    assert code == 0, out
    assert "principal  $2 " in out and "interest   $0.8 " in out and "40.0%" in out
    assert "1 of 5 (20.0%)" in out and c2[:12] in out


def test_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    repo, ledger, _ = scripted(tmp_path)
    code, out = run("--repo", str(plain), "--ledger", str(ledger.path), home=tmp_path)
    assert code == 1 and "not in a git repository" in out and "Traceback" not in out
    code, out = run("--repo", str(repo.root), "--ledger", str(tmp_path / "none.db"), home=tmp_path)
    assert code == 1 and "no ledger at" in out

"""Every command the README marks for the demo works as written (scripts/readme_walk.py against a real demo), and
the walker itself: it reads the markers strictly, names the command that failed, stops the background job with
Ctrl-C, and flags CRIT/Traceback lines the walk's run wrote (not older ones)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.readme_walk import Plan, WalkError, main, parse_readme, walk

REPO = Path(__file__).resolve().parents[1]

# A background job that behaves like `draizer run` for the walker: says it is ready, runs until Ctrl-C, exits 0.
FAKE_RUN = """trap 'echo stopped; exit 0' INT; echo "draizer: ready after 0.1 s"; while :; do sleep 0.05; done"""


def readme(*blocks: tuple[str, str]) -> str:
    return "\n".join(f"Some prose.\n\n<!-- walk: {kind} -->\n```bash\n{body}\n```\n" for kind, body in blocks)


def test_the_readme_marks_a_start_command_and_commands_for_during_and_after_the_run() -> None:
    plan = parse_readme((REPO / "README.md").read_text())
    assert plan.start == [plan.start[0]] and plan.start[0].startswith(".venv/bin/draizer run")
    assert any(c.startswith(".venv/bin/draizer ctl status") for c in plan.during)
    everything = [*plan.start, *plan.during, *plan.after]
    assert not [c for c in everything if c.startswith(("draizer ", "supervisorctl"))]  # nothing needs PATH set


def test_blocks_are_split_into_commands_and_bad_markers_are_refused() -> None:
    text = readme(("start", "run --now   # comment"),
                  ("during", "# a comment line\n\necho one \\\n  two\necho three"),
                  ("after", "ls"))
    assert parse_readme(text) == Plan(start=["run --now   # comment"], during=["echo one    two", "echo three"],
                                      after=["ls"])
    with pytest.raises(WalkError, match="unknown walk marker 'durin'"):
        parse_readme(readme(("start", "a"), ("durin", "b")))
    with pytest.raises(WalkError, match="exactly one command under `walk: start`, found 2"):
        parse_readme(readme(("start", "a\nb"), ("during", "c")))
    with pytest.raises(WalkError, match="must be followed by a fenced code block"):
        parse_readme("<!-- walk: during -->\nprose, not a block\n")
    with pytest.raises(WalkError, match="no `walk: during` commands"):
        parse_readme(readme(("start", "a")))


def test_a_failing_command_is_named_the_job_gets_ctrl_c_and_nothing_after_runs(tmp_path: Path) -> None:
    plan = Plan(start=[FAKE_RUN], during=["true", "ls no-such-file", "touch during-ran-on"],
                after=["touch after-ran"])
    failures = walk(plan, tmp_path, tmp_path)
    assert len(failures) == 1
    text = str(failures[0])
    assert text.startswith("FAILED: ls no-such-file\n  (exited 2)") and "no-such-file" in text.splitlines()[-1]
    assert not (tmp_path / "during-ran-on").exists() and not (tmp_path / "after-ran").exists()


def test_a_background_job_that_fails_ctrl_c_is_a_failure(tmp_path: Path) -> None:
    plan = Plan(start=["""trap 'exit 3' INT; echo "draizer: ready"; while :; do sleep 0.05; done"""],
                during=["true"])
    failures = walk(plan, tmp_path, tmp_path)
    assert [f.code for f in failures] == [3] and "(stopped with Ctrl-C)" in failures[0].command


def test_crit_and_traceback_written_during_the_walk_fail_it_and_older_lines_do_not(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "old.log").write_text("2026 CRIT from an earlier run\nTraceback (most recent call last):\n")
    plan = Plan(start=[FAKE_RUN], during=["echo 'all well' >> run/old.log"], after=["true"])
    assert walk(plan, tmp_path, run_dir) == []
    plan = Plan(start=[FAKE_RUN], during=["echo '2026 CRIT Server running without auth' >> run/supervisord.log"],
                after=["echo 'Traceback (most recent call last):' >> run/old.log"])
    failures = walk(plan, tmp_path, run_dir)
    assert len(failures) == 1 and failures[0].command == f"the logs in {run_dir}: no CRIT, no Traceback"
    assert failures[0].output.splitlines() == ["old.log: Traceback (most recent call last):",
                                               "supervisord.log: 2026 CRIT Server running without auth"]


def test_a_readme_with_broken_markers_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "README.md"
    bad.write_text(readme(("during", "true")))
    assert main(["--readme", str(bad), "--run-dir", str(tmp_path)]) == 2
    assert "exactly one command under `walk: start`, found 0" in capsys.readouterr().err


@pytest.mark.e2e
@pytest.mark.skipif(not (REPO / ".venv" / "bin" / "draizer").exists(), reason="needs the install: bash scripts/demo.sh")
def test_every_walked_readme_command_works_as_written_against_a_real_demo() -> None:
    """The README's demo, its commands from another shell, Ctrl-C, the commands after it, and no CRIT/Traceback in
    the run's logs. It uses the demo's own run directory and ports (8080, 9464, 187xx), as a newcomer would."""
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "readme_walk.py")], cwd=REPO, capture_output=True,
                          text=True, timeout=400, env=os.environ.copy(), check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all passed" in done.stdout

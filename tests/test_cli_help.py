"""The `draizer` command line: every subcommand's --help is its own; `config check` validates a file and lists
the environment variables a live config needs, set or not, never their values."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.cli.main import main
from tests.conftest import make_config_dict, write_config

SUBCOMMANDS = ("run", "status", "bench", "record", "replay", "backtest", "strategy", "reload", "kill", "resume", "db",
               "journal", "top", "api", "env", "ctl", "service", "preflight")


def help_text(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    assert done.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_its_own_help(capsys: pytest.CaptureFixture[str], command: str) -> None:
    assert help_text(capsys, command, "--help").startswith(f"usage: draizer {command} ")


def test_config_check_help_is_help_not_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(capsys, "config", "check", "--help")
    assert text.startswith("usage: draizer config check ") and "environment variables" in text
    assert "check" in help_text(capsys, "config", "--help")  # the actions


def test_control_commands_describe_themselves(capsys: pytest.CaptureFixture[str]) -> None:
    assert "kill switch: halt" in help_text(capsys, "kill", "--help")
    assert "enable|disable" in help_text(capsys, "strategy", "--help")
    assert "enable|disable" not in help_text(capsys, "resume", "--help")


def test_config_check_lists_a_live_configs_variables_without_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_config_dict(tmp_path, mode="live", sim={"enabled": False})
    path = tmp_path / "live.toml"
    write_config(path, data)
    monkeypatch.setenv("DRAIZER_BINANCE_API_KEY", "the-key-value")
    monkeypatch.setenv("DRAIZER_BINANCE_API_SECRET", "the-secret-value")
    monkeypatch.delenv("DRAIZER_MEXC_API_KEY", raising=False)
    monkeypatch.delenv("DRAIZER_MEXC_API_SECRET", raising=False)
    assert main(["config", "check", str(path)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.startswith("  ")}
    assert rows["DRAIZER_BINANCE_API_KEY"] == rows["DRAIZER_BINANCE_API_SECRET"] == "set"
    assert out.count("NOT SET") >= 2 and rows["DRAIZER_MEXC_API_SECRET"] == "NOT"
    assert "the-key-value" not in out and "the-secret-value" not in out


def test_config_check_of_a_paper_config_needs_no_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check"]) == 0
    assert "no keys needed (paper mode)" in capsys.readouterr().out

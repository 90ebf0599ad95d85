"""The environment ``supervisord.conf`` expands: a fresh one for a new supervisord, the running one's for
``draizer ctl`` and ``draizer env``.

supervisord's unix socket is protected by a username and a random per-run password (``DRAIZER_SUPERVISOR_PASSWORD``):
without them supervisord logs ``CRIT Server 'unix_http_server' running without any HTTP authentication checking``.
The password lives only in the environment of supervisord (and of what it starts). ``draizer ctl`` reads it back,
with the other variables, from the running supervisord's ``/proc/<pid>/environ``: only its own user (or root) may
read that, the same people the socket's mode 0700 lets in, and the password is never written to a file.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from shared.errors import ConfigError

SUPERVISORD_CONF = Path(__file__).resolve().parents[2] / "supervisord.conf"
PASSWORD_ENV = "DRAIZER_SUPERVISOR_PASSWORD"
# Every variable supervisord.conf (and the placement file it includes) expands.
CONF_ENV = ("DRAIZER_RUN_DIR", "DRAIZER_CONFIG", "DRAIZER_PYTHON", "DRAIZER_FEEDS", "DRAIZER_PLACEMENT", PASSWORD_ENV)


def new_password_env() -> dict[str, str]:
    """A fresh socket password for a supervisord about to start (one per run)."""
    return {PASSWORD_ENV: secrets.token_urlsafe(24)}


def supervisord_user_args() -> list[str]:
    """Arguments that tell supervisord which user to be.

    Started as root with no user named, supervisord logs ``CRIT Supervisor is running as root``; ``-u 0`` says
    root is meant (it "drops" to the uid it already has and logs INFO). A normal user needs nothing: supervisord
    cannot switch users anyway, and naming one would fail for a uid that /etc/passwd lacks (containers)."""
    return ["--user", "0"] if os.getuid() == 0 else []


def running_supervisord(run_dir: Path) -> int | None:
    """The pid of the live supervisord the run directory's pid file names, or None (no file, a dead pid, or a pid
    now used by another program)."""
    try:
        pid = int((run_dir / "supervisord.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"supervisord" in cmdline else None


def running_env(run_dir: Path) -> dict[str, str]:
    """The variables the supervisord running in ``run_dir`` was started with (what ``supervisorctl`` must expand
    the same way). A clear ConfigError when no pipeline runs there or its environment cannot be read."""
    pid = running_supervisord(run_dir)
    if pid is None:
        raise ConfigError(
            f"{run_dir}: no pipeline is running there (no live supervisord.pid); start one with `draizer run`, or "
            "name the run directory with --run-dir (or its config with --config)"
        )
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except PermissionError:
        raise ConfigError(
            f"{run_dir}: supervisord (pid {pid}) belongs to another user; run this as that user"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{run_dir}: cannot read supervisord's environment (pid {pid}): {exc.strerror}") from None
    env: dict[str, str] = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        name = key.decode(errors="replace")
        if sep and name in CONF_ENV:
            env[name] = value.decode(errors="surrogateescape")
    missing = [name for name in CONF_ENV if name not in env]
    if missing:
        raise ConfigError(
            f"{run_dir}: supervisord (pid {pid}) was started without {', '.join(missing)} (by an older draizer, or "
            "by hand without `draizer env`); stop it and start the run again"
        )
    return env

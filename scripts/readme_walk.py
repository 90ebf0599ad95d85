"""Walk the README's demo commands as written, against a real demo run, and fail naming the first that fails.

The README marks what is meant to be run on the demo with an HTML comment (invisible when rendered) right before a
fenced ``bash`` block:

    <!-- walk: start -->    one command that starts the demo: run in the background until it says it is ready,
                            and stopped after the ``during`` blocks with Ctrl-C (SIGINT), as the README says
    <!-- walk: during -->   commands for another shell while the demo runs
    <!-- walk: after -->    commands once it has stopped

Each line of a block is one command, run by bash from the repository root with ``pipefail`` (a line ending in ``\\``
continues on the next; ``# ...`` is bash's comment). The start command must exit 0 after Ctrl-C. Then every log in
the run directory (``.run/*.log``) must be free of ``CRIT`` and ``Traceback`` lines written during the walk.

The README's first two commands (``bash scripts/demo.sh``, ``bash scripts/test.sh``) are not walked: they create
``.venv``, which every walked command uses; run this after them. It takes ~30-60 s.

    .venv/bin/python scripts/readme_walk.py [--readme README.md] [--run-dir .run]

Exit 0 when every command passed, 1 otherwise (with the command, its exit code and output), 2 on a README whose
markers are wrong.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KINDS = ("start", "during", "after")
MARKER = re.compile(r"^\s*<!--\s*walk:\s*(?P<kind>[a-z]+)\s*-->\s*$")
FENCE = re.compile(r"^\s*```")
READY = "draizer: ready"  # what `draizer run` prints once every service is up
COMMAND_TIMEOUT_S = 60.0
START_TIMEOUT_S = 240.0  # a cold start compiles the detector's kernels; the install precompiles them
STOP_TIMEOUT_S = 120.0  # the paper settlement, then supervisord stops every program


class WalkError(Exception):
    """A README whose markers cannot be walked."""


@dataclass
class Plan:
    start: list[str] = field(default_factory=list)
    during: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)


def commands_of(block: list[str]) -> list[str]:
    """The commands of a fenced block: one per line, ``\\`` continuing a line, blank and comment-only lines out."""
    out: list[str] = []
    pending = ""
    for line in block:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        command = (pending + line).strip()
        pending = ""
        if command and not command.startswith("#"):
            out.append(command)
    if pending.strip():
        out.append(pending.strip())
    return out


def parse_readme(text: str) -> Plan:
    """Every marked block's commands, by kind. A marker must be followed (blank lines aside) by a fenced block."""
    plan = Plan()
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = MARKER.match(lines[i])
        i += 1
        if m is None:
            continue
        kind = m["kind"]
        if kind not in KINDS:
            raise WalkError(f"line {i}: unknown walk marker {kind!r} (known: {', '.join(KINDS)})")
        while i < len(lines) and not lines[i].strip():
            i += 1
        if i >= len(lines) or not FENCE.match(lines[i]):
            raise WalkError(f"line {i}: a `walk: {kind}` marker must be followed by a fenced code block")
        i += 1
        block: list[str] = []
        while i < len(lines) and not FENCE.match(lines[i]):
            block.append(lines[i])
            i += 1
        if i >= len(lines):
            raise WalkError(f"the code block after the `walk: {kind}` marker is never closed")
        i += 1
        getattr(plan, kind).extend(commands_of(block))
    if len(plan.start) != 1:
        raise WalkError(f"the README needs exactly one command under `walk: start`, found {len(plan.start)}")
    if not plan.during:
        raise WalkError("the README has no `walk: during` commands")
    return plan


@dataclass
class Failure:
    command: str
    code: int | None
    output: str

    def __str__(self) -> str:
        how = "timed out" if self.code is None else f"exited {self.code}"
        tail = "\n".join(self.output.splitlines()[-30:])
        return f"FAILED: {self.command}\n  ({how})\n{tail}"


def run_command(command: str, cwd: Path, timeout: float = COMMAND_TIMEOUT_S) -> Failure | None:
    """Run one README line with bash; None when it exits 0."""
    try:
        done = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return Failure(command, None, out)
    if done.returncode != 0:
        return Failure(command, done.returncode, done.stdout + done.stderr)
    print(f"ok   {command}", flush=True)
    return None


class Background:
    """The start command, in its own process group as a terminal's foreground job, its output collected."""

    def __init__(self, command: str, cwd: Path) -> None:
        self.command = command
        self.lines: list[str] = []
        self.saw_ready = False
        self.ready = threading.Event()  # set on the ready line, or when the output ends
        self.proc = subprocess.Popen(["bash", "-c", command], cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                                     start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith(READY):
                self.saw_ready = True
                self.ready.set()
        self.ready.set()  # ended: whoever waits must look at the process

    def wait_ready(self, timeout: float) -> Failure | None:
        if not self.ready.wait(timeout):
            return Failure(self.command, None, "\n".join(self.lines) + f"\n(not ready after {timeout:.0f} s)")
        if not self.saw_ready:
            return Failure(self.command, self.proc.wait(), "\n".join(self.lines) + "\n(ended before ready)")
        print(f"ok   {self.command}  (running in the background)", flush=True)
        return None

    def alive(self) -> Failure | None:
        if self.proc.poll() is None:
            return None
        return Failure(self.command, self.proc.returncode, "\n".join(self.lines) + "\n(ended while walking)")

    def interrupt(self, timeout: float) -> Failure | None:
        """Ctrl-C, as a terminal sends it (SIGINT to the foreground process group); it must exit 0."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self._close()
            out = "\n".join(self.lines) + f"\n(still running {timeout:.0f} s after Ctrl-C)"
            return Failure(self.command, None, out)
        self._close()
        if code != 0:
            return Failure(f"{self.command}  (stopped with Ctrl-C)", code, "\n".join(self.lines))
        print(f"ok   Ctrl-C stopped it: {self.command}", flush=True)
        return None

    def _close(self) -> None:
        self._reader.join(5)  # the job has exited: its output ends
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def log_marks(run_dir: Path) -> dict[Path, tuple[int, int]]:
    """Each log's (inode, size) now: what was written before the walk is not the walk's."""
    marks: dict[Path, tuple[int, int]] = {}
    for log in run_dir.glob("*.log"):
        st = log.stat()
        marks[log] = (st.st_ino, st.st_size)
    return marks


def bad_log_lines(run_dir: Path, before: dict[Path, tuple[int, int]]) -> list[str]:
    """CRIT and Traceback lines written to the run directory's logs since ``before`` (a log moved aside and
    started anew, as a fresh paper run does, is read whole)."""
    bad: list[str] = []
    for log in sorted(run_dir.glob("*.log")):
        st = log.stat()
        ino, size = before.get(log, (st.st_ino, 0))
        offset = size if ino == st.st_ino and size <= st.st_size else 0
        with log.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        bad += [f"{log.name}: {line}" for line in text.splitlines() if "CRIT" in line or "Traceback" in line]
    return bad


def walk(plan: Plan, cwd: Path, run_dir: Path) -> list[Failure]:
    """Start, walk ``during``, Ctrl-C, walk ``after``, check the logs. Stops at the first failure."""
    before = log_marks(run_dir) if run_dir.is_dir() else {}
    run = Background(plan.start[0], cwd)
    try:
        failure = run.wait_ready(START_TIMEOUT_S)
        for command in plan.during:
            if failure is not None:
                break
            failure = run_command(command, cwd) or run.alive()
    finally:
        stopped = run.interrupt(STOP_TIMEOUT_S)
    if failure is not None or stopped is not None:
        return [f for f in (failure, stopped) if f is not None]
    for command in plan.after:
        if (failure := run_command(command, cwd)) is not None:
            return [failure]
    bad = bad_log_lines(run_dir, before) if run_dir.is_dir() else [f"{run_dir}: no run directory"]
    if bad:
        return [Failure(f"the logs in {run_dir}: no CRIT, no Traceback", 1, "\n".join(bad))]
    return []


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="readme_walk", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--readme", type=Path, default=REPO / "README.md")
    p.add_argument("--run-dir", type=Path, default=REPO / ".run",
                   help="the demo's run directory (its logs are checked)")
    args = p.parse_args(argv)
    try:
        plan = parse_readme(args.readme.read_text())
    except (OSError, WalkError) as exc:
        print(f"readme_walk: {args.readme}: {exc}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    failures = walk(plan, args.readme.resolve().parent, args.run_dir.resolve())
    for f in failures:
        print(f, file=sys.stderr)
    n = len(plan.start) + len(plan.during) + len(plan.after)
    print(f"readme_walk: {n} commands, {'FAILED' if failures else 'all passed'} in {time.monotonic() - t0:.0f} s",
          flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

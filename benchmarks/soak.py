"""Soak: the RSS of every process of a demo run, sampled over minutes; a least-squares slope per process.

Runs ``draizer run --duration <minutes * 60> --run-dir <private tmp dir> --quiet [--placement P]`` on the
embedded default config (paper mode against the built-in simulator) and samples, every ``--interval`` seconds,
the RSS (``/proc/<pid>/status`` VmRSS, with its anonymous / file / shmem parts) of every process of that run:
``draizer run`` itself, supervisord (its pid from ``<run dir>/supervisord.pid``) and everything below it,
each named by its supervisord program name (``SUPERVISOR_PROCESS_NAME`` in ``/proc/<pid>/environ``).

The clock starts when ``draizer run`` says the pipeline is ready (``--duration`` counts from there too). The
first ``--warmup`` seconds are discarded; over the rest (the measured window) each process gets its RSS at
the start and end of the window, min / max, and the slope in MiB/min of a least-squares fit. A program whose
pid changes (supervisord restarted it) keeps one series under its name; the restart is reported and the
slope is the pooled within-pid fit (one slope, one intercept per pid), so the drop at a restart does not
pass for a shrink. PASS when the slope is < ``--max-slope`` (1 MiB/min), FAIL otherwise; exit 1 when any
process fails.

Also printed: the machine (nproc, CPU model, Python), the core map (``Cpus_allowed_list`` of each process's
main thread, threads allowed elsewhere, and the CPUs its threads were seen on at the samples) and the
pipeline's counters over the window (from the bridge's shared memory).

    .venv/bin/python benchmarks/soak.py --minutes 10                       # placement single (the demo's)
    .venv/bin/python benchmarks/soak.py --minutes 2 --warmup 30 --placement fused --json

Exit codes: 0 every process passes, 1 a process fails, 2 the run could not be measured (did not start,
ended early, ports in use), 130 interrupted (the run is stopped in order and what was measured is reported).
Ctrl-C or SIGTERM stops the run (SIGTERM to ``draizer run``, which stops the pipeline in order). The private
directory (run directory, logs, ``draizer run``'s output) is removed after a passing run and kept otherwise
(``--keep`` keeps it always).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shared.config import default_config_path, load_config  # noqa: E402

MIB = 1024.0  # kB per MiB (/proc reports kB = KiB)
SHORT_WINDOW_S = 180.0  # below this, say that the slopes are not worth much
END_MARGIN_S = 2.0  # the last sample, this long before draizer run's --duration ends (then it settles)
STOP_TIMEOUT_S = 180.0  # draizer run settles (≤ 30 s wind-down) then waits ≤ 60 s for supervisord
START_TIMEOUT_S = 360.0  # draizer run gives up on its own after 300 s


# ---------------------------------------------------------------- /proc


def _stat_fields(path: str) -> list[str]:
    """Fields of a /proc stat file after the ``(comm)``: index 0 is field 3 (state), so field N is N - 3."""
    with open(path) as f:
        return f.read().rsplit(")", 1)[1].split()


def _status(path: str) -> dict[str, str]:
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def _kb(status: dict[str, str], key: str) -> int:
    v = status.get(key, "0 kB").split()
    return int(v[0]) if v else 0


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    env = {}
    for item in raw.split(b"\0"):
        k, sep, v = item.partition(b"=")
        if sep:
            env[k.decode(errors="replace")] = v.decode(errors="replace")
    return env


def _cmdline(pid: int) -> list[str]:
    try:
        return [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return []


def parents() -> dict[int, int]:
    """pid → ppid for every process now."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):  # gone meanwhile
                out[int(entry)] = int(_stat_fields(f"/proc/{entry}/stat")[1])
    return out


def descendants(root: int, ppids: dict[int, int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, ppid in ppids.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return sorted(out)


@dataclass
class ProcInfo:
    rss_kb: int
    anon_kb: int
    file_kb: int
    shmem_kb: int
    threads: int
    allowed: str  # main thread's Cpus_allowed_list
    elsewhere: dict[str, int]  # "thread name: Cpus_allowed_list" → how many, where it differs from the main thread's
    seen_cpus: set[int]  # the CPU each thread last ran on, now


def read_proc(pid: int) -> ProcInfo | None:
    try:
        st = _status(f"/proc/{pid}/status")
        allowed = st.get("Cpus_allowed_list", "?")
        elsewhere: dict[str, int] = {}
        seen: set[int] = set()
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                seen.add(int(_stat_fields(f"/proc/{pid}/task/{tid}/stat")[36]))  # field 39: processor
                if tid != str(pid):
                    tst = _status(f"/proc/{pid}/task/{tid}/status")
                    if tst.get("Cpus_allowed_list", allowed) != allowed:
                        key = f"{tst.get('Name', tid)}: {tst['Cpus_allowed_list']}"
                        elsewhere[key] = elsewhere.get(key, 0) + 1
            except (OSError, IndexError, ValueError):
                continue  # a thread that just ended
        return ProcInfo(
            rss_kb=_kb(st, "VmRSS"), anon_kb=_kb(st, "RssAnon"), file_kb=_kb(st, "RssFile"),
            shmem_kb=_kb(st, "RssShmem"), threads=int(st.get("Threads", "0")), allowed=allowed,
            elsewhere=elsewhere, seen_cpus=seen,
        )
    except (OSError, ValueError):
        return None  # gone between the listing and the read


def program_name(pid: int, supervisord_pid: int, ppids: dict[int, int]) -> str:
    """The supervisord program name (``SUPERVISOR_PROCESS_NAME``); a grandchild gets ``<name>/<comm>``."""
    name = _environ(pid).get("SUPERVISOR_PROCESS_NAME")
    if name is None:
        cmd = _cmdline(pid)
        name = " ".join(cmd[1:4]) if cmd else f"pid {pid}"
    if ppids.get(pid) != supervisord_pid:
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            comm = str(pid)
        name = f"{name}/{comm}"
    return name


# ---------------------------------------------------------------- series and fit


@dataclass
class Sample:
    t: float  # seconds since the pipeline was ready (negative: before)
    pid: int
    rss_kb: int
    anon_kb: int
    file_kb: int
    shmem_kb: int
    threads: int


@dataclass
class Series:
    name: str
    samples: list[Sample] = field(default_factory=list)
    restarts: list[dict[str, Any]] = field(default_factory=list)  # {"t", "old_pid", "new_pid"}
    gone_at: float | None = None  # last seen, when it disappeared and has not come back
    allowed: dict[int, str] = field(default_factory=dict)  # pid → main thread's Cpus_allowed_list
    elsewhere: dict[int, dict[str, int]] = field(default_factory=dict)
    seen_cpus: set[int] = field(default_factory=set)
    announced: int = 0  # restarts already printed

    def add(self, t: float, pid: int, info: ProcInfo) -> None:
        if self.samples and self.samples[-1].pid != pid:
            self.restarts.append({"t": round(t, 1), "old_pid": self.samples[-1].pid, "new_pid": pid})
        self.gone_at = None
        self.samples.append(Sample(t, pid, info.rss_kb, info.anon_kb, info.file_kb, info.shmem_kb, info.threads))
        self.allowed[pid] = info.allowed
        self.elsewhere[pid] = info.elsewhere
        self.seen_cpus |= info.seen_cpus


def pooled_slope(points: list[tuple[int, float, float]]) -> float | None:
    """Least-squares slope of y over t with one intercept per group (pid): Σ(t-t̄ₚ)(y-ȳₚ) / Σ(t-t̄ₚ)²."""
    groups: dict[int, list[tuple[float, float]]] = {}
    for g, t, y in points:
        groups.setdefault(g, []).append((t, y))
    sxy = sxx = 0.0
    for pts in groups.values():
        if len(pts) < 2:
            continue
        tm = sum(t for t, _ in pts) / len(pts)
        ym = sum(y for _, y in pts) / len(pts)
        sxy += sum((t - tm) * (y - ym) for t, y in pts)
        sxx += sum((t - tm) ** 2 for t, _ in pts)
    return None if sxx == 0 else sxy / sxx


def analyse(s: Series, warmup: float, end: float, max_slope: float) -> dict[str, Any]:
    w = [x for x in s.samples if warmup <= x.t <= end + 1.0]  # the last sample lands a hair after `end`
    restarts_in = [r for r in s.restarts if r["t"] >= 0]
    out: dict[str, Any] = {
        "pids": sorted({x.pid for x in s.samples}, key=[x.pid for x in s.samples].index),
        "samples": len(w),
        "restarts": s.restarts,
        "gone_at_s": s.gone_at,
        "cpus_allowed": {str(p): a for p, a in s.allowed.items()},
        "threads_elsewhere": {str(p): e for p, e in s.elsewhere.items() if e},
        "cpus_seen": sorted(s.seen_cpus),
    }
    if len(w) < 3:
        out.update(verdict="n/a", slope_mib_per_min=None)
        return out

    def mib(kb: int) -> float:
        return kb / MIB

    per_min = [(x.pid, x.t / 60.0) for x in w]
    slope = pooled_slope([(p, t, mib(x.rss_kb)) for (p, t), x in zip(per_min, w, strict=True)])
    anon = pooled_slope([(p, t, mib(x.anon_kb)) for (p, t), x in zip(per_min, w, strict=True)])
    shmem = pooled_slope([(p, t, mib(x.shmem_kb)) for (p, t), x in zip(per_min, w, strict=True)])
    rss = [mib(x.rss_kb) for x in w]
    out.update(
        window_s=[round(w[0].t, 1), round(w[-1].t, 1)],
        start_mib=round(rss[0], 2), end_mib=round(rss[-1], 2), min_mib=round(min(rss), 2), max_mib=round(max(rss), 2),
        slope_mib_per_min=None if slope is None else round(slope, 4),
        anon_slope_mib_per_min=None if anon is None else round(anon, 4),
        shmem_slope_mib_per_min=None if shmem is None else round(shmem, 4),
        start_anon_mib=round(mib(w[0].anon_kb), 2), end_anon_mib=round(mib(w[-1].anon_kb), 2),
        end_file_mib=round(mib(w[-1].file_kb), 2), end_shmem_mib=round(mib(w[-1].shmem_kb), 2),
        threads=w[-1].threads,
    )
    if slope is None:
        out["verdict"] = "n/a"
    else:
        out["verdict"] = "PASS" if slope < max_slope else "FAIL"
    if restarts_in or s.gone_at is not None:
        out["flag"] = ("restarted " + ", ".join(f"at {r['t']:.0f} s ({r['old_pid']}→{r['new_pid']})"
                                                for r in restarts_in) if restarts_in else "") + (
            f"{'; ' if restarts_in else ''}gone after {s.gone_at:.0f} s" if s.gone_at is not None else "")
    return out


# ---------------------------------------------------------------- machine, counters


def machine() -> dict[str, Any]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        mem_kb = int(_status("/proc/meminfo")["MemTotal"].split()[0])
        mem = f"{mem_kb / MIB / MIB:.1f} GiB"
    except (OSError, KeyError, ValueError):
        pass

    def git(*args: str) -> str:
        try:
            r = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10, check=False)
            return r.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    head = git("rev-parse", "--short", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {
        "nproc": os.cpu_count(),
        "cpus_available": sorted(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory": mem,
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "git": f"{head}{' (working tree modified)' if dirty else ''}" if head else "?",
    }


class Counters:
    """The bridge's shared memory (what ``draizer status`` reads); None until there is one."""

    def __init__(self, instance: str) -> None:
        try:
            from services.cli.status_line import StatusLine

            self._line: Any = StatusLine(instance)
        except Exception:  # the counters are context, not the measurement
            self._line = None

    def read(self) -> dict[str, int] | None:
        if self._line is None:
            return None
        try:
            d = self._line.read()
        except Exception:
            return None
        if d is None:
            return None
        return {
            "quotes": sum(d["quotes"].values()), "opportunities": d["opportunities"], "approved": d["approved"],
            "rejected": d["rejected"], "orders": sum(d["orders"].values()), "fills": d["fills"],
            "executions": sum(d["executions"].values()),
            **{f"rejected.{k}": v for k, v in d["rejections_by_reason"].items()},
        }


# ---------------------------------------------------------------- the run


def ports_in_use(cfg: Any) -> list[int]:
    ports = [p for sv in cfg.sim.venues for p in (sv.ws_port, sv.rest_port)]
    ports += [p for p in (cfg.sinks.prometheus_port, cfg.sinks.api_port) if p]
    busy = []
    for port in ports:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                busy.append(port)
    return busy


def draizer_command() -> list[str]:
    script = Path(sys.executable).parent / "draizer"
    return [str(script)] if script.exists() else [sys.executable, "-m", "services.cli.main"]


class Interrupted(Exception):
    pass


class Soak:
    def __init__(self, args: argparse.Namespace, cfg: Any, out: Any) -> None:
        self.args = args
        self.cfg = cfg  # the embedded default config (its instance names the shared memory the counters come from)
        self.out = out  # where the human-readable text goes (stderr with --json)
        self.tmp = Path(tempfile.mkdtemp(prefix="draizer-soak-"))  # mode 0700
        self.run_dir = self.tmp / "run"
        self.run_out = self.tmp / "draizer-run.out"
        self.proc: subprocess.Popen[bytes] | None = None
        self.stop = threading.Event()
        self.signals = 0
        self.series: dict[str, Series] = {}
        self.counters: list[dict[str, Any]] = []
        self.supervisord_pid: int | None = None
        self.ready_after: float | None = None
        self.final_line = ""
        self.settlement: list[str] = []
        self.foreign_max = 0  # draizer service processes of other runs on this machine, at most, at one sample

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def on_signal(self, signum: int, _frame: object) -> None:
        self.signals += 1
        self.stop.set()
        if self.signals > 1:
            self.say(f"soak: {signal.Signals(signum).name} again; the run is being stopped, please wait")

    def command(self) -> list[str]:
        cmd = [*draizer_command(), "run", "--duration", f"{self.args.minutes * 60:g}", "--run-dir", str(self.run_dir),
               "--quiet"]
        if self.args.placement:
            cmd += ["--placement", self.args.placement]
        return cmd

    def start(self) -> None:
        cmd = self.command()
        self.say(f"soak: {' '.join(cmd)}")
        with open(self.run_out, "wb") as f:
            # its own session: a terminal Ctrl-C reaches only this script, which stops the run with one SIGTERM
            self.proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)

    def output(self) -> str:
        try:
            return self.run_out.read_text(errors="replace")
        except OSError:
            return ""

    def find_supervisord(self) -> int | None:
        try:
            pid = int((self.run_dir / "supervisord.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        if _environ(pid).get("DRAIZER_RUN_DIR") != str(self.run_dir.resolve()):
            return None  # not (yet) ours
        return pid

    def sample(self, t: float) -> None:
        assert self.proc is not None
        ppids = parents()
        seen: set[str] = set()
        procs = [(self.proc.pid, "draizer-run")]
        if self.supervisord_pid is not None:
            procs.append((self.supervisord_pid, "supervisord"))
            procs += [(p, program_name(p, self.supervisord_pid, ppids))
                      for p in descendants(self.supervisord_pid, ppids)]
        ours = {pid for pid, _ in procs}
        foreign = sum(1 for pid in ppids if pid not in ours and "services.cli.main" in " ".join(_cmdline(pid)))
        self.foreign_max = max(self.foreign_max, foreign)
        for pid, name in procs:
            info = read_proc(pid)
            if info is None:
                continue
            self.series.setdefault(name, Series(name)).add(t, pid, info)
            seen.add(name)
        for name, s in self.series.items():
            if name not in seen and s.gone_at is None and s.samples:
                s.gone_at = round(s.samples[-1].t, 1)
                self.say(f"soak: t={t:6.0f} s  {name} (pid {s.samples[-1].pid}) is gone")
        for s in self.series.values():
            for r in s.restarts[s.announced:]:
                self.say(f"soak: t={t:6.0f} s  {s.name} restarted: pid {r['old_pid']} → {r['new_pid']}")
            s.announced = len(s.restarts)

    def run(self) -> None:
        """Start, wait for ready, sample until the duration is over; raises Interrupted on a signal."""
        assert self.proc is None
        self.start()
        assert self.proc is not None
        counters = Counters(self.cfg.instance)
        t_start = time.monotonic()
        t_ready: float | None = None
        duration = self.args.minutes * 60.0 - END_MARGIN_S
        next_sample = t_start
        last_progress = -1
        while True:
            if self.stop.is_set():
                raise Interrupted
            now = time.monotonic()
            if self.proc.poll() is not None:
                if t_ready is not None and now - t_ready >= duration - self.args.interval:
                    break  # it ended on its own at the end of --duration (before our last tick)
                raise RuntimeError(f"draizer run exited (code {self.proc.returncode}) "
                                   f"{'during the start' if t_ready is None else f'after {now - t_ready:.0f} s'}")
            if self.supervisord_pid is None:
                self.supervisord_pid = self.find_supervisord()
            if t_ready is None and "draizer: ready after" in self.output():
                t_ready = now
                self.ready_after = now - t_start
                self.say(f"soak: pipeline ready after {self.ready_after:.1f} s; warm-up {self.args.warmup:g} s, "
                         f"measuring until {duration:g} s")
                next_sample = now  # t = 0 is a sample
            if t_ready is None and now - t_start > START_TIMEOUT_S:
                raise RuntimeError(f"not ready after {START_TIMEOUT_S:.0f} s")
            if t_ready is not None and now >= next_sample:
                t = now - t_ready
                self.sample(t)
                c = counters.read()
                if c is not None:
                    self.counters.append({"t": round(t, 1), **c})
                if int(t // 60) != last_progress:
                    last_progress = int(t // 60)
                    self.progress(t)
                if t >= duration:
                    break
                next_sample = min(next_sample + self.args.interval, t_ready + duration)  # the last one: at the end
            wake = min(next_sample, now + 0.5) if t_ready is not None else now + 0.5
            self.stop.wait(max(0.0, wake - time.monotonic()))

    def progress(self, t: float) -> None:
        parts = [f"{n} {s.samples[-1].rss_kb / MIB:.1f}" for n, s in sorted(self.series.items())
                 if s.samples and s.samples[-1].t == t]
        self.say(f"soak: t={t:6.0f} s  RSS MiB: {', '.join(parts)}")

    def shutdown(self, finished: bool) -> int | None:
        """Let ``draizer run`` end on its own (``finished``: its --duration is over, it settles and stops), else
        SIGTERM it (it stops supervisord in order); kill it and its supervisord when it hangs."""
        proc = self.proc
        if proc is None:
            return None
        sigs = self.signals
        if finished:
            self.say("soak: window over; draizer run settles and stops the pipeline")
            self._wait(proc, STOP_TIMEOUT_S, sigs)
        if proc.poll() is None:
            self.say("soak: stopping the run (SIGTERM to draizer run)")
            proc.send_signal(signal.SIGTERM)
            self._wait(proc, STOP_TIMEOUT_S, sigs)
        if proc.poll() is None:
            self.say("soak: draizer run did not stop; killing it and its supervisord")
            proc.kill()
            proc.wait()
        sup = self.supervisord_pid or self.find_supervisord()
        if sup is not None and _environ(sup).get("DRAIZER_RUN_DIR") == str(self.run_dir.resolve()):
            # normally gone by now; a leftover (draizer run killed) gets SIGTERM, then its session SIGKILL
            try:
                os.kill(sup, signal.SIGTERM)
                for _ in range(300):
                    os.kill(sup, 0)
                    time.sleep(0.2)
                os.killpg(sup, signal.SIGKILL)
            except ProcessLookupError:
                pass
        code = proc.returncode
        out = self.output()
        lines = out.splitlines()
        finals = [line for line in lines if line.startswith("draizer: stopped; final:")]
        self.final_line = finals[-1] if finals else ""
        if "draizer: settlement" in lines:
            i = lines.index("draizer: settlement")
            self.settlement = [ln for ln in lines[i:] if not ln.startswith("draizer: stopped")]
        return code


    def _wait(self, proc: subprocess.Popen[bytes], timeout_s: float, sigs: int) -> None:
        deadline = time.monotonic() + timeout_s
        while proc.poll() is None and time.monotonic() < deadline:
            if self.signals > sigs + 1:  # asked twice more while stopping: stop waiting
                return
            time.sleep(0.2)


# ---------------------------------------------------------------- report


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for k, r in enumerate(rows):
        lines.append("  ".join(c.rjust(w) if 0 < i < len(r) - 1 else c.ljust(w) for i, (c, w) in
                               enumerate(zip(r, widths, strict=True))).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def order_key(name: str) -> tuple[int, str]:
    first = ["draizer-run", "supervisord"]
    return (first.index(name), name) if name in first else (2, name)


def report(soak: Soak, results: dict[str, dict[str, Any]], info: dict[str, Any], out: Any) -> None:
    def p(text: str = "") -> None:
        print(text, file=out, flush=True)

    a = soak.args
    m = info["machine"]
    p()
    p(f"machine: nproc {m['nproc']} (available {','.join(map(str, m['cpus_available']))}), {m['cpu_model']}, "
      f"{m['memory']}, kernel {m['kernel']}, {m['python']}, draizer {m['git']}")
    p(f"run: placement {info['placement']}, {a.minutes:g} min from ready (ready after "
      f"{info['ready_after_s'] or 0:.1f} s), warm-up {a.warmup:g} s, sample every {a.interval:g} s, "
      f"measured {info['measured_s']:.0f} s")
    if info["other_draizer_processes_max"]:
        p(f"  NOTE: up to {info['other_draizer_processes_max']} draizer processes of another run shared the machine "
          "during the soak")
    p(f"  load average at the end: {' '.join(info['loadavg_end'])}")
    c = info.get("counters_window")
    if c:
        p("pipeline over the window: " + ", ".join(f"{k} {v:,}" for k, v in c.items() if "." not in k))
        why = sorted(((v, k.split(".", 1)[1]) for k, v in c.items() if k.startswith("rejected.")), reverse=True)
        if why:
            p("  rejections by reason: " + ", ".join(f"{k} {v:,}" for v, k in why))
        if not c.get("approved"):
            p("  NOTE: risk approved nothing in the measured window (trading halted?): the execution path was idle")
    if soak.final_line:
        p(soak.final_line)
    if info.get("settlement"):
        p("\n".join(info["settlement"]))
    p()
    p("core map (Cpus_allowed_list of the main thread; threads allowed elsewhere; CPUs its threads were seen on):")
    rows = [["process", "pid", "allowed", "threads elsewhere", "seen on"]]
    for name in sorted(results, key=order_key):
        r = results[name]
        for pid in r["pids"]:
            el = r["threads_elsewhere"].get(str(pid), {})
            rows.append([name, str(pid), r["cpus_allowed"].get(str(pid), "?"),
                         ", ".join(k if n == 1 else f"{n}× {k}" for k, n in sorted(el.items())) or "-",
                         ",".join(map(str, r["cpus_seen"]))])
    p(table(rows))
    p()
    rows = [["process", "pid", "start MiB", "end MiB", "min", "max", "slope MiB/min", "anon MiB/min", "verdict"]]
    for name in sorted(results, key=order_key):
        r = results[name]

        def f(key: str, fmt: str = "{:.1f}", r: dict[str, Any] = r) -> str:
            v = r.get(key)
            return "-" if v is None else fmt.format(v)

        verdict = r["verdict"] + (f" ({r['flag']})" if r.get("flag") else "")
        rows.append([name, "→".join(map(str, r["pids"])), f("start_mib"), f("end_mib"), f("min_mib"), f("max_mib"),
                     f("slope_mib_per_min", "{:+.3f}"), f("anon_slope_mib_per_min", "{:+.3f}"), verdict])
    p(table(rows))
    fails = [n for n, r in results.items() if r["verdict"] == "FAIL"]
    p()
    p(f"threshold: slope < {a.max_slope:g} MiB/min (least squares over the measured window; after a restart, one "
      "slope fitted within each pid)")
    if info["measured_s"] < SHORT_WINDOW_S:
        p(f"  NOTE: a window of {info['measured_s']:.0f} s is short: a slope over it is mostly the allocator's noise")
    p(f"result: {'FAIL: ' + ', '.join(sorted(fails)) if fails else 'PASS'}"
      + (" (interrupted: partial window)" if info.get("interrupted") else ""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="trading time (draizer run --duration / 60)")
    ap.add_argument("--placement", choices=("single", "fused", "processes"), default=None,
                    help="default: the config's (single)")
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds after ready that are not measured")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--max-slope", type=float, default=1.0, help="MiB/min; a slope at or above it fails")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout (the table goes to stderr)")
    ap.add_argument("--keep", action="store_true", help="keep the private directory (logs) even after a pass")
    args = ap.parse_args()
    if args.minutes * 60 <= args.warmup + 3 * args.interval:
        ap.error("--minutes leaves fewer than three samples after --warmup")
    out = sys.stderr if args.json else sys.stdout

    cfg = load_config(default_config_path())
    busy = ports_in_use(cfg)
    if busy:
        print(f"soak: ports {', '.join(map(str, busy))} of the embedded config are in use (another demo run?); "
              "stop it first", file=sys.stderr)
        return 2
    soak = Soak(args, cfg, out)
    signal.signal(signal.SIGINT, soak.on_signal)
    signal.signal(signal.SIGTERM, soak.on_signal)
    started_at = dt.datetime.now(dt.UTC)
    error = ""
    interrupted = finished = False
    try:
        soak.run()
        finished = True
    except Interrupted:
        interrupted = True
    except Exception as exc:  # the run is stopped below whatever went wrong
        error = f"{type(exc).__name__}: {exc}"
    finally:
        code = soak.shutdown(finished)

    last_t = max((s.samples[-1].t for s in soak.series.values() if s.samples), default=0.0)
    end = args.minutes * 60.0 - END_MARGIN_S
    results = {n: analyse(s, args.warmup, end, args.max_slope) for n, s in soak.series.items()}
    window = [c for c in soak.counters if args.warmup <= c["t"] <= end + 1.0]
    counters_window = None
    if len(window) >= 2:
        keys = [k for k in window[-1] if k != "t"]
        counters_window = {k: window[-1][k] - window[0].get(k, 0) for k in keys}
        counters_window = {k: v for k, v in counters_window.items() if v or not k.startswith("rejected.")}
    info = {
        "machine": machine(),
        "placement": args.placement or cfg.runtime.placement,
        "ready_after_s": None if soak.ready_after is None else round(soak.ready_after, 1),
        "measured_s": max(0.0, min(last_t, end) - args.warmup),
        "counters_window": counters_window,
        "interrupted": interrupted,
        "settlement": soak.settlement,
        "other_draizer_processes_max": soak.foreign_max,
        "loadavg_end": Path("/proc/loadavg").read_text().split()[:3],
    }
    fails = [n for n, r in results.items() if r["verdict"] == "FAIL"]
    measured = any(r["verdict"] in ("PASS", "FAIL") for r in results.values())
    if measured:
        report(soak, results, info, out)
    if error:
        print(f"soak: {error}", file=sys.stderr)
        tail = soak.output().strip().splitlines()[-15:]
        if tail:
            print("soak: draizer run said:\n  " + "\n  ".join(tail), file=sys.stderr)
    if code not in (None, 0):
        meaning = {3: " (the end-of-run settlement did not reconcile: see its lines above)",
                   4: " (the pipeline did not become ready)"}.get(code, "")
        print(f"soak: draizer run exited {code}{meaning}", file=sys.stderr)

    rc = 130 if interrupted else 2 if error or not measured else 1 if fails else 0
    keep = args.keep or rc != 0
    if args.json:
        obj = {
            "command": " ".join(soak.command()),
            "started_at": started_at.isoformat(timespec="seconds"),
            **info,
            "minutes": args.minutes, "warmup_s": args.warmup, "interval_s": args.interval,
            "max_slope_mib_per_min": args.max_slope,
            "draizer_run_exit": code, "final": soak.final_line, "error": error or None,
            "result": "FAIL" if fails else "PASS" if measured and not error else "ERROR",
            "processes": results,
            "series": {n: [[round(x.t, 1), x.pid, x.rss_kb, x.anon_kb, x.file_kb, x.shmem_kb] for x in s.samples]
                       for n, s in soak.series.items()},
            "series_columns": ["t_s", "pid", "rss_kb", "anon_kb", "file_kb", "shmem_kb"],
            "counters": soak.counters,
            "kept_dir": str(soak.tmp) if keep else None,
        }
        print(json.dumps(obj))
    if keep:
        print(f"soak: kept {soak.tmp} (run directory, logs, draizer run's output)", file=sys.stderr)
    else:
        shutil.rmtree(soak.tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())

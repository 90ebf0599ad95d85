"""`draizer preflight [-c FILE]`: check every venue orders can go to before money moves; one row per check.

For each venue with an order API and keys configured (a perpetual without ``api_key_env`` is a funding feed):
keys present (the variables ``api_key_env``/``api_secret_env`` name) and accepted (the signed account endpoint
answers), trading permission, clock offset, the venue's exchangeInfo rules against the config, balances against
the configured capital, and the venue's declared rate limits against draizer's. The rules are in
``preflight_rules.py``. It talks to the venues through the executor's own ``VenueClient``, so it checks what the
executor will send. Exit 0 when every row passes, 1 otherwise. ``draizer run`` runs it first in live mode and
refuses to start on a failure.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from services.cli.preflight_rules import (
    FAIL,
    PASS,
    Check,
    balance_check,
    clock_check,
    permission_check,
    perp_balance_check,
    rate_limit_check,
    rules_check,
)
from services.executor.venue_client import VenueClient
from shared.config import Config, Venue, default_config_path, load_config
from shared.errors import ConfigError, ProtocolError, VenueError
from shared.registry import Registry
from shared.venues.kinds import kind_of

TIMEOUT_S = 10.0  # per request; a venue that does not answer in time fails its row
ROWS = ("clock offset", "exchangeInfo rules", "rate limits", "keys accepted", "trading permission", "balance")


def order_venues(cfg: Config) -> list[Venue]:
    """The venues orders can go to: an order API and keys configured."""
    return [v for v in cfg.venues if kind_of(v.kind).order_format is not None and v.api_key_env]


def _keys_present(venue: Venue) -> Check:
    names = [venue.api_key_env, venue.api_secret_env]
    missing = [n or "<api_secret_env not configured>" for n in names if not n or not os.environ.get(n)]
    if missing:
        return Check(venue.name, "keys present", FAIL, f"not set: {', '.join(missing)}")
    return Check(venue.name, "keys present", PASS, f"{' and '.join(names)} set")


def _failure(exc: BaseException) -> str:
    if isinstance(exc, VenueError):
        return f"the venue refused: code {exc.code}: {exc.msg} (HTTP {exc.http_status})"
    return str(exc) or type(exc).__name__


async def venue_checks(cfg: Config, venue: Venue, registry: Registry, timeout_s: float = TIMEOUT_S) -> list[Check]:
    """Every row of one venue, in order; a step the others need (reaching the venue, its rules, the account)
    that fails ends the list with its own FAIL and the rows it prevented as FAIL "not checked"."""
    present = _keys_present(venue)
    if not present.ok:
        return [present]
    rows = [present]
    perp = kind_of(venue.kind).perp
    client = VenueClient(venue, registry, timeout_s, start_deadline_s=timeout_s)
    step = "venue reachable"
    try:
        await client.pool.open()
        await client.sync_clock()
        rows.append(clock_check(venue, client.clock_offset_ms))
        step = "exchangeInfo rules"
        await client.load_rules()
        rules = {registry.symbol(s): r for s, r in client.rules.items()}
        rows.append(rules_check(cfg, venue, rules, spot=not perp))
        rows.append(rate_limit_check(venue, client.declared_limits))
        step = "keys accepted"
        if perp:
            account = await client.perp_account()
            rows.append(Check(venue.name, step, PASS, "the signed account endpoint answered"))
            rows.append(permission_check(venue.name, client.permission, perp))
            rows.append(perp_balance_check(cfg, venue, account))
        else:
            info = await client.account()
            rows.append(Check(venue.name, step, PASS, "the signed account endpoint answered"))
            rows.append(permission_check(venue.name, client.permission, perp))
            free = {asset: f for asset, (f, _locked) in info.balances.items()}
            rows.append(balance_check(cfg, venue, rules, free))
    except (OSError, VenueError, ProtocolError, ConfigError) as exc:
        rows.append(Check(venue.name, step, FAIL, _failure(exc)))
        done = {r.check for r in rows}
        rows += [Check(venue.name, name, FAIL, f"not checked: {step} failed") for name in ROWS if name not in done]
    finally:
        await client.close()
    return rows


async def preflight(cfg: Config, timeout_s: float = TIMEOUT_S) -> list[Check]:
    """Every venue's rows (the venues checked at once), in config order."""
    registry = Registry(cfg)
    per_venue = await asyncio.gather(*(venue_checks(cfg, v, registry, timeout_s) for v in order_venues(cfg)))
    return [row for rows in per_venue for row in rows]


def table(rows: list[Check]) -> str:
    if not rows:
        return "preflight: no venue takes orders in this config (no order API with api_key_env): nothing to check"
    wv = max(5, *(len(r.venue) for r in rows))
    wc = max(5, *(len(r.check) for r in rows))
    lines = [f"{'VENUE':<{wv}}  {'CHECK':<{wc}}  STATUS  REASON"]
    lines += [f"{r.venue:<{wv}}  {r.check:<{wc}}  {r.status:<6}  {r.reason}" for r in rows]
    failed = sum(not r.ok for r in rows)
    lines.append(f"preflight: {failed} of {len(rows)} checks FAILED" if failed else
                 f"preflight: all {len(rows)} checks passed")
    return "\n".join(lines)


def run_preflight(cfg: Config, timeout_s: float = TIMEOUT_S) -> tuple[bool, str]:
    """(every row passed, the table), from synchronous code (``draizer run``)."""
    rows = asyncio.run(preflight(cfg, timeout_s))
    return all(r.ok for r in rows), table(rows)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="draizer preflight", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", default=os.environ.get("DRAIZER_CONFIG") or str(default_config_path()))
    p.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds per venue request")
    args = p.parse_args(argv)
    ok, text = run_preflight(load_config(args.config), args.timeout)
    print(text)
    return 0 if ok else 1


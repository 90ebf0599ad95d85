"""Compile the detector's Numba entry into Numba's on-disk cache ahead of the first start.

``python -m services.detector.precompile`` is run by ``scripts/install.sh``. Without it the first
``draizer run`` on a fresh checkout spends ~16 s of its start compiling (measured on the 2-core box: ready
after ~20 s cold, ~4.4 s with the cache), and every later start loads the cache in well under a second. The
entry's signature does not depend on the config (float64/int64 buffers and integer scalars), so one call on
the embedded default's arrays compiles exactly what any config will load.
"""

from __future__ import annotations

import sys
import time

from services.detector.cycles import cycle_table
from services.detector.entry import ENABLE_CROSS, ENABLE_FUNDING, ENABLE_TRIANGULAR, DetectorArrays, evaluate
from shared.config import default_config_path, load_config
from shared.registry import Registry

DEPTH_LEVELS = 5  # any depth: the arrays' shapes are not part of the compiled signature


def precompile() -> float:
    """Compile (or load) the entry through one call on empty books; the seconds it took."""
    t0 = time.perf_counter()
    cfg = load_config(default_config_path())
    reg = Registry(cfg)
    arrays = DetectorArrays(reg, DEPTH_LEVELS)
    arrays.set_cycles(cycle_table(cfg, reg))
    evaluate(arrays.f.buffer, arrays.i.buffer, arrays.ci.buffer, arrays.cf.buffer, arrays.layout, 0, 0, 0, 1,
             ENABLE_CROSS | ENABLE_TRIANGULAR | ENABLE_FUNDING)
    return time.perf_counter() - t0


def main() -> int:
    seconds = precompile()
    print(f"draizer: detector kernels compiled and cached ({seconds:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A settable wall clock for the fleet simulation (item 6), shared with the processes it starts.

:func:`set_now` makes ``time.time()`` in this process return a chosen simulated instant, then run on
at real speed from there; the harness moves it forward from one batch of tasks to the next.
:func:`env_value` hands the current simulated instant to a child process, whose
:func:`install_from_env` starts its clock there, so the emulator (in the harness) and the task
processes agree on the time: the tokens the emulator issues (``expires_in`` and JWT ``exp``) and the
caches' refresh windows all run on the simulated calendar, however loaded the machine is.
``time.monotonic`` and ``time.perf_counter`` stay real: timeouts, lock waits and sleeps keep their
real length. Only the benchmark's fleet processes use it.
"""

from __future__ import annotations

import os
import time

ENV = "BENCH_SIMCLOCK"
_real_time = time.time
_offset = 0.0  # simulated minus real


def _simulated() -> float:
    return _real_time() + _offset


def set_now(simulated: float) -> None:
    """From this instant on, ``time.time()`` reads ``simulated`` plus the real seconds elapsed."""
    global _offset
    _offset = simulated - _real_time()
    time.time = _simulated


def env_value() -> str:
    """The value of :data:`ENV` that starts a child process's clock at this process's simulated now."""
    return f"{_simulated()!r},{_real_time()!r}"


def install_from_env() -> None:
    """Start this process's clock where ``$BENCH_SIMCLOCK`` (``simulated,real``) says, if set."""
    value = os.environ.get(ENV)
    if value:
        simulated, real = (float(x) for x in value.split(","))
        set_now(simulated + (_real_time() - real))


def real_time() -> float:
    """The real wall clock, whatever is installed."""
    return _real_time()

"""Scheduling strategies: the oracle that answers every nondeterministic choice.

One small module per strategy, all behind :class:`~vmemu._strategies.base.Strategy`.
``make_strategy`` builds one by name; replay is just another strategy.
"""

from __future__ import annotations

import functools

from typing import Any, Callable

from .._errors import UserError, did_you_mean
from .base import Strategy
from .random import RandomStrategy
from .replay import ReplayStrategy

#: name -> factory(seed, **params). Other modules register more (pct, dfs, hypothesis).
REGISTRY: dict[str, Callable[..., Strategy]] = {
    "random": RandomStrategy,
}
#: name -> the parameters its factory takes (CLI ``--depth`` ...); absent means none.
PARAMS: dict[str, tuple[str, ...]] = {}


def _portfolio(seed: int = 0, **params: Any) -> Strategy:
    # A portfolio is a sequence of schedules, not one: explore uses `schedules()`, and each
    # schedule it runs is recorded under its own name (random or pct) for replay.
    raise UserError("portfolio mixes random and pct schedules for `explore`; for one run "
                    "use --strategy random or --strategy pct (a portfolio finding's replay "
                    "command names the one it used)", key="--strategy")


REGISTRY["portfolio"] = _portfolio
PARAMS["portfolio"] = ("depth", "steps_hint")


def make_strategy(name: str, seed: int = 0, **params: Any) -> Strategy:
    """Build the strategy called ``name`` for one run seeded with ``seed``.

    ``params`` whose value is None are ignored (unset CLI options); any other parameter
    the strategy does not take is a :class:`UserError`.
    """
    if not params and REGISTRY.get(name) is RandomStrategy:
        return RandomStrategy(seed)   # the common case, once per run: nothing to check
    _load_optional()
    try:
        factory = REGISTRY[name]
    except KeyError:
        raise UserError(f"unknown strategy {name!r}" + did_you_mean(name, REGISTRY)
                        + f"; choose one of {', '.join(sorted(REGISTRY))}", key="--strategy")
    params = {k: v for k, v in params.items() if v is not None}
    allowed = PARAMS.get(name, ())
    for k in sorted(params):
        if k not in allowed:
            takes = ", ".join("--" + a.replace("_", "-") for a in allowed) or "no parameters"
            raise UserError(f"strategy {name} does not take --{k.replace('_', '-')} "
                            f"(it takes {takes})", key="--strategy")
    return factory(seed, **params)


def strategy_names() -> list[str]:
    """Every registered strategy name (for CLI help and validation)."""
    _load_optional()
    return sorted(REGISTRY)


@functools.cache
def _load_optional() -> None:
    # Strategy modules register themselves on import; imported on first use (not at
    # package import: the hypothesis strategy pulls in Hypothesis) and only once.
    from . import dfs, hypothesis_strategy, pct  # noqa: F401


from ._iterate import ScheduleIterator, is_exhaustive, schedule_seed, schedules  # noqa: E402

__all__ = ["Strategy", "RandomStrategy", "ReplayStrategy", "make_strategy", "strategy_names",
           "REGISTRY", "PARAMS", "schedules", "schedule_seed", "is_exhaustive",
           "ScheduleIterator"]

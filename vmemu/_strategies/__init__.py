"""Scheduling strategies: the oracle that answers every nondeterministic choice.

One small module per strategy, all behind :class:`~vmemu._strategies.base.Strategy`.
``make_strategy`` builds one by name; replay is just another strategy.
"""

from __future__ import annotations

from typing import Any, Callable

from .._errors import UserError, did_you_mean
from .base import Strategy
from .random import RandomStrategy
from .replay import ReplayStrategy

#: name -> factory(seed, **params). Other modules register more (pct, dfs, hypothesis).
REGISTRY: dict[str, Callable[..., Strategy]] = {
    "random": RandomStrategy,
}


def make_strategy(name: str, seed: int = 0, **params: Any) -> Strategy:
    """Build the strategy called ``name`` for one run seeded with ``seed``."""
    _load_optional()
    try:
        factory = REGISTRY[name]
    except KeyError:
        raise UserError(f"unknown strategy {name!r}" + did_you_mean(name, REGISTRY)
                        + f"; choose one of {', '.join(sorted(REGISTRY))}", key="--strategy")
    return factory(seed, **params)


def strategy_names() -> list[str]:
    """Every registered strategy name (for CLI help and validation)."""
    _load_optional()
    return sorted(REGISTRY)


def _load_optional() -> None:
    # Strategies written as separate modules register themselves on import.
    import importlib
    for mod in ("pct", "dfs", "hypothesis_strategy"):
        try:
            importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as e:  # not written (yet): not an error
            if e.name != f"{__name__}.{mod}":
                raise


__all__ = ["Strategy", "RandomStrategy", "ReplayStrategy", "make_strategy", "strategy_names",
           "REGISTRY"]

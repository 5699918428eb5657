"""The direct driver: steps task coroutines with ``send()``; no event loop at all."""

from __future__ import annotations

import types
from typing import TYPE_CHECKING

from ..task import Killed, Task

if TYPE_CHECKING:  # pragma: no cover
    from ..kernel import Kernel


@types.coroutine
def _park(t: Task):
    # A bare yield hands control back to run_direct's send(); nothing else is needed.
    yield


def run_direct(k: "Kernel") -> None:
    """Run ``k`` to its verdict, then unwind every task that is still alive."""
    k.park = _park
    next_task = k.next_task
    while (t := next_task()) is not None:
        try:
            t.coro.send(None)
        except StopIteration:
            k.task_finished(t, None)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # VerdictSignal, user errors: all become verdicts
            k.task_finished(t, e)
    for t in k.live_tasks():
        kill(t)


def kill(t: Task) -> None:
    """Unwind a parked coroutine: scheduling points raise Killed while the kernel stops."""
    try:
        t.coro.throw(Killed())
    except BaseException:
        pass
    else:  # pragma: no cover - emulated code swallowed Killed and parked again
        t.coro.close()

"""Drivers: how emulated tasks are resumed. They never decide *who* runs; the kernel does.

- ``trio`` (default): every emulated task is a real trio task, parked and resumed with
  ``trio.lowlevel.wait_task_rescheduled`` / ``reschedule``; usable inside a trio program.
- ``direct``: steps the task coroutines itself with ``send()``, for throughput.
- ``asyncio``: every emulated task is a task of the host loop, through anyio
  (``anyio_driver.run_anyio``); a sync run hosts it on asyncio. It works on any anyio
  backend, which is how ``arun`` runs inside an asyncio program.

All run the same kernel, so they produce the same trace for the same inputs.
"""

DRIVERS = ("trio", "direct", "asyncio")

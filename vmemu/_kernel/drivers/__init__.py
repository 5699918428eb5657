"""Drivers: how emulated tasks are resumed. They never decide *who* runs; the kernel does.

- ``trio`` (default): every emulated task is a real trio task, parked and resumed with
  ``trio.lowlevel.wait_task_rescheduled`` / ``reschedule``; usable inside a trio program.
- ``direct``: steps the task coroutines itself with ``send()``, for throughput.

Both run the same kernel, so they produce the same trace for the same inputs.
"""

DRIVERS = ("trio", "direct")

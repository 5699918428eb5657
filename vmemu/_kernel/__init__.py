"""The emulated kernel: tasks, scheduler, sync primitives, memory, watchdog, drivers."""

"""Where blocks of schedules run: one interface for ``--jobs`` and ``--cluster``.

An executor is :mod:`concurrent.futures`-shaped: ``submit(fn, *args)`` returns a
:class:`concurrent.futures.Future`, ``slots`` is how many blocks to keep in flight,
``restart()`` replaces workers after a :class:`~concurrent.futures.BrokenExecutor`
(a worker killed by SIGKILL or the OOM killer: the coordinator submits the lost blocks
again), and ``shutdown()`` ends every worker, at once. A single-process exploration
has no executor: the coordinator runs its blocks itself (as it also does between
collecting results under ``--jobs``, where it is one of the ``J`` workers).

- :class:`ProcessExecutor` (``--jobs J``): ``J - 1`` worker processes of a
  :class:`~concurrent.futures.ProcessPoolExecutor`, forked when this process has no
  thread but vmemu's own soft-lockup watchdog (fast: the workers inherit the loaded
  scenario), else started by a ``forkserver`` (never a plain fork in a threaded host).
  Workers ignore SIGINT (the coordinator saves what was found, then ends them) and die
  with their parent (``PR_SET_PDEATHSIG`` on Linux), so no worker outlives a killed
  exploration.
- :class:`DaskExecutor` (``--cluster tcp://HOST:PORT`` or ``local:N``): every block is
  a Dask task on an existing ``dask.distributed`` scheduler, or on a LocalCluster of
  ``N`` worker processes started for the exploration; Dask's futures are bridged to
  concurrent.futures ones. Needs ``pip install 'vmemu[dask]'``.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import gc
import signal
import sys
import threading
import types
import warnings
from typing import Any, Callable, Iterator

from .._bounds import MAX_JOBS
from .._errors import UserError
from .base import Spec


@contextlib.contextmanager
def _main_hidden() -> Iterator[None]:
    """Workers need nothing from the host's ``__main__``; hiding it while they start keeps
    spawn/forkserver from re-running the user's script in each (a script without the
    ``if __name__ == "__main__":`` guard would otherwise fail in every worker, or explore
    recursively)."""
    host_main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if host_main is not None:
            sys.modules["__main__"] = host_main


def _fork_safe() -> bool:
    """True when forking cannot inherit a lock some other thread holds: the only
    threads are this (main) one and vmemu's soft-lockup watchdog, which takes no lock
    once started."""
    main = threading.main_thread()
    if threading.current_thread() is not main:
        return False
    return all(t is main or t.name == "vmemu-soft-lockup" for t in threading.enumerate())


def _die_with_parent() -> None:
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)       # PR_SET_PDEATHSIG
    except (OSError, AttributeError):       # pragma: no cover - not Linux
        pass


def _init_worker(spec: Spec) -> None:
    """First thing in every worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C is the coordinator's
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    _die_with_parent()
    from .work import loaded
    loaded(spec)          # a forked worker has it already; a forkserver one loads it now


def _noop() -> None:
    return None


class ProcessExecutor:
    """``workers`` local processes (see the module docstring)."""

    def __init__(self, workers: int, spec: Spec, owner: list | None = None) -> None:
        if owner is not None:
            owner.append(self)     # shut down by the caller whatever happens next
        self.workers = workers
        self.slots = 2 * workers
        self.spec = spec
        self.pool: cf.ProcessPoolExecutor | None = None
        self.restarts = 0
        self._start()

    def _start(self) -> None:
        import multiprocessing
        methods = multiprocessing.get_all_start_methods()
        if "fork" in methods and _fork_safe():
            ctx = multiprocessing.get_context("fork")
        else:
            ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods
                                              else "spawn")
            if ctx.get_start_method() == "forkserver":
                ctx.set_forkserver_preload(["vmemu._explore.work", "vmemu._kernel.drivers.direct",
                                            "vmemu._strategies.pct", "vmemu._strategies.dfs"])
        # A signal that arrives while the workers start is held, not lost, and not seen
        # by them: they inherit the blocked mask and install their own handlers first.
        mask = {signal.SIGINT, signal.SIGTERM}
        main = threading.current_thread() is threading.main_thread()
        old = signal.pthread_sigmask(signal.SIG_BLOCK, mask) if main else None
        # Forked children share this process's heap until they write to it; the cyclic
        # GC would touch (and copy) every page of it in each child: freeze it first.
        gc.freeze()
        try:
            with warnings.catch_warnings(), _main_hidden():
                warnings.simplefilter("ignore", DeprecationWarning)   # 3.12+: fork + threads
                self.pool = cf.ProcessPoolExecutor(self.workers, mp_context=ctx,
                                                   initializer=_init_worker,
                                                   initargs=(self.spec,))
                for _ in range(self.workers):          # start them all now
                    self.pool.submit(_noop)
        finally:
            gc.unfreeze()
            if old is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def ready(self) -> bool:
        return True

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future:
        assert self.pool is not None
        return self.pool.submit(fn, *args)

    def restart(self) -> None:
        """Replace a broken pool (a worker died) with a new one."""
        self.restarts += 1
        self.shutdown()
        self._start()

    def pids(self) -> list[int]:
        """The worker processes' ids (tests kill one)."""
        procs = getattr(self.pool, "_processes", None) or {}
        return [p.pid for p in list(procs.values()) if p.pid]

    def shutdown(self) -> None:
        """End every worker now: they hold nothing worth keeping (findings come back
        with their block, and an unfinished block is simply not counted)."""
        pool, self.pool = self.pool, None
        if pool is None:
            return
        procs = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            try:
                p.terminate()
            except (OSError, AttributeError, ValueError):
                pass
        for p in procs:
            try:
                p.join(2.0)
                if p.is_alive():
                    p.kill()
                    p.join(1.0)
            except (OSError, AttributeError, ValueError, AssertionError):
                pass
        try:
            pool.shutdown(wait=True)     # reaps the manager thread; the workers are gone
        except Exception:  # pragma: no cover - a pool broken while shutting down
            pass


class DaskExecutor:
    """Blocks as tasks of a ``dask.distributed`` cluster (see the module docstring).

    The cluster starts (or the client connects) in a thread of its own: until
    :meth:`ready`, the coordinator runs blocks itself, so a LocalCluster's start-up
    (worker processes from a ``forkserver`` that preloaded Dask and vmemu) costs no
    schedules.
    """

    def __init__(self, address: str, spec: Spec, owner: list | None = None) -> None:
        try:
            import distributed  # noqa: F401  (here: a missing Dask is one line, at once)
        except ImportError:
            raise UserError("--cluster needs Dask: pip install 'vmemu[dask]'",
                            key="--cluster") from None
        self.cluster = None
        self.client = None
        self._live: dict[int, Any] = {}
        self.restarts = 0
        self._procs: list[Any] = []
        local = address.startswith("local:")
        self.workers = _local_workers(address) if local else 1
        self.slots = 2 * self.workers
        self._error: BaseException | None = None
        self._up = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._start_here, args=(address, spec),
                                        name="vmemu-dask-start", daemon=True)
        # The cluster starts in a thread of this process, whose event loop takes many
        # short turns while the main thread runs blocks: the exploration's short switch
        # interval (plan.prompt_helpers) has it ready in half the time.
        if owner is not None:   # (from here on shutdown() can end what starts)
            owner.append(self)
        self._thread.start()

    def ready(self) -> bool:
        """True once the cluster takes tasks; re-raises what stopped it from starting."""
        if not self._up.is_set():
            return False
        if self._error is not None:
            raise self._error
        return True

    def _start_here(self, address: str, spec: Spec) -> None:
        import multiprocessing
        before = {p.pid for p in multiprocessing.active_children()}
        try:
            self._start(address, spec)
        except BaseException as e:
            self._error = e
        finally:
            # The LocalCluster's own processes (workers), to end if they linger.
            self._procs = [p for p in multiprocessing.active_children()
                           if p.pid not in before]
            self._up.set()

    def _start(self, address: str, spec: Spec) -> None:
        import logging
        import multiprocessing

        import dask
        from distributed import Client, LocalCluster
        try:
            if address.startswith("local:"):
                # Workers forked by a forkserver that imported Dask and vmemu once: a
                # fraction of what spawning each (a new interpreter importing both) costs.
                multiprocessing.get_context("forkserver").set_forkserver_preload(
                    ["distributed", "vmemu._explore.work", "vmemu._kernel.drivers.direct"])
                with dask.config.set({"distributed.worker.multiprocessing-method":
                                      "forkserver"}), _main_hidden():
                    self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                                processes=True, dashboard_address=None,
                                                silence_logs=logging.CRITICAL)
                self.client = Client(self.cluster)
            else:
                try:
                    self.client = Client(address, timeout=10)
                except (OSError, TimeoutError):
                    raise
                except Exception as e:
                    # Something answered, but not as a Dask scheduler does (an SSH server's
                    # banner read as a frame length is a MemoryError): whatever Dask makes
                    # of it, the line is the same.
                    why = type(e).__name__ + (f": {str(e)[:80]}" if str(e) else "")
                    raise UserError(f"cannot reach the Dask scheduler at {address}: what "
                                    f"answers there may not be a Dask scheduler ({why}); "
                                    "start one with `dask scheduler`, or use --cluster "
                                    "local:N", key="--cluster") from None
        except (OSError, TimeoutError) as e:
            raise UserError(f"cannot reach the Dask scheduler at {address} ({e}); start "
                            "one with `dask scheduler`, or use --cluster local:N",
                            key="--cluster") from None
        n = len(self.client.scheduler_info().get("workers", {})) or 1
        self.workers = n
        self.slots = 2 * n
        # The scenario goes to every worker once, as content, not with every block.
        self.spec = self.client.scatter(spec, broadcast=True, hash=False)

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future:
        out: cf.Future = cf.Future()
        args = tuple(self.spec if isinstance(a, Spec) else a for a in args)
        df = self.client.submit(fn, *args, pure=False)
        self._live[id(out)] = df

        def done(f: Any) -> None:
            self._live.pop(id(out), None)
            try:
                out.set_result(f.result())
            except BaseException as e:   # cancelled, a worker error, KilledWorker ...
                try:
                    out.set_exception(e)
                except cf.InvalidStateError:  # pragma: no cover
                    pass
        df.add_done_callback(done)
        return out

    def restart(self) -> None:  # pragma: no cover - Dask reschedules lost tasks itself
        self.restarts += 1

    def shutdown(self) -> None:
        self._thread.join()     # (a cluster half started is closed whole)
        for df in list(self._live.values()):
            df.cancel()
        self._live.clear()
        client, cluster, self.client, self.cluster = self.client, self.cluster, None, None
        try:
            if client is not None:
                client.close(timeout=10)
        except Exception:  # pragma: no cover - a scheduler gone already
            pass
        finally:
            if cluster is not None:
                try:
                    cluster.close(timeout=10)
                except Exception:  # pragma: no cover
                    pass
                # Whatever did not stop in time (a worker busy in a long block): end it.
                for p in self._procs:
                    if p.is_alive():
                        p.kill()


def _local_workers(address: str) -> int:
    try:
        n = int(address.split(":", 1)[1])
    except ValueError:
        n = 0
    if n < 1:
        raise UserError(f"expected local:N with N a positive number, got {address!r}",
                        key="--cluster")
    if n > MAX_JOBS:    # (as --jobs: each worker is a process of this machine)
        raise UserError(f"expected local:N with N at most {MAX_JOBS} worker processes, "
                        f"got {n}", key="--cluster")
    return n


def check_cluster(cluster: str) -> None:
    """Refuse a ``--cluster`` value that names no cluster, in one line (before an
    exploration records a campaign or starts anything)."""
    if not cluster.startswith(("tcp://", "tls://", "local:")):
        raise UserError(f"expected tcp://HOST:PORT or local:N, got {cluster!r}",
                        key="--cluster")
    if cluster.startswith("local:"):
        _local_workers(cluster)
    else:
        _probe(cluster)


def _probe(address: str) -> None:
    """A scheduler that refuses connections (none started there) is one line now, not
    after Dask's 10 s timeout with the schedules run meanwhile thrown away. One that
    does not answer at all is left to Dask: it may be slow to reach."""
    import socket
    from urllib.parse import urlsplit
    try:
        where = urlsplit(address)
        host, port = where.hostname, where.port or 8786    # (Dask's default port)
    except ValueError as e:
        raise UserError(f"expected tcp://HOST:PORT, got {address!r} ({e})",
                        key="--cluster") from None
    if not host:
        raise UserError(f"expected tcp://HOST:PORT, got {address!r}", key="--cluster")
    try:
        socket.create_connection((host, port), timeout=2.0).close()
    except (ConnectionRefusedError, socket.gaierror, UnicodeError) as e:
        # (UnicodeError: a host name IDNA cannot encode, such as a label over 63 letters)
        raise UserError(f"cannot reach the Dask scheduler at {address} ({e}); start one "
                        "with `dask scheduler`, or use --cluster local:N",
                        key="--cluster") from None
    except OSError:
        pass


def make_executor(jobs: int, cluster: str | None, spec: Spec, owner: list) -> Any:
    """The executor for ``--jobs``/``--cluster`` (None: this process alone). It is in
    ``owner`` from the start, so that a signal while it starts cannot orphan it.
    (``api.explore`` has checked ``cluster`` with :func:`check_cluster` already.)"""
    if cluster:
        return DaskExecutor(cluster, spec, owner)
    if jobs > 1:
        return ProcessExecutor(jobs - 1, spec, owner)
    return None

"""The campaign store: what every ``vmemu explore`` did, in one SQLite file.

Default ``.vmemu/campaigns.sqlite`` (``--store PATH``); stdlib :mod:`sqlite3` in WAL
mode, so several explorations (processes, machines sharing nothing but this file) can
write at once and ``vmemu campaigns`` can read while they do. Every write is one short
``BEGIN IMMEDIATE`` transaction, so a killed exploration leaves the store consistent:
it holds every block that was recorded before the kill, and nothing half-written.

Tables:

- ``campaigns``: one row per campaign: scenario (path, name, content hash), fault plan
  (path, hash), strategy, parameters (JSON), seed, driver, status (``running``,
  ``done``, ``interrupted``; a ``running`` row whose process is gone is shown as
  ``killed``), counters (schedules, interleavings, failures, seconds), and the schedule
  index (plus one) of the last schedule that showed a new interleaving: a campaign that
  saturates shows it.
- ``ranges``: the schedule index ranges ``[start, stop)`` run, each with the longest run
  in it (PCT's steps hint of later epochs is computed from them, so a resumed campaign
  runs exactly the schedules a single long exploration would have).
- ``findings``: one row per distinct failure signature: verdict, the lowest schedule
  index, its finding file and trace hash, and how many times it was hit.
- ``interleavings``: the distinct interleaving hashes (exact counts across resumes and
  concurrent explorations of one campaign).

Opening a store checks its layout (``PRAGMA user_version``, :data:`STORE_VERSION`, and
every column of :data:`_SCHEMA`), and each row is checked as it is read: an SQLite file
of another program, a newer vmemu's store or a row edited by hand is one line naming the
store, never a KeyError halfway through a resume. A store another program holds locked
is "in use", not damaged.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable

from .._errors import UserError
from .._files import describe_path

#: Where the store is when the user names none.
DEFAULT_STORE = os.path.join(".vmemu", "campaigns.sqlite")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS campaigns (
    id INTEGER PRIMARY KEY,
    scenario TEXT NOT NULL, scenario_name TEXT NOT NULL, scenario_hash TEXT NOT NULL,
    faults TEXT, faults_hash TEXT,
    strategy TEXT NOT NULL, params TEXT NOT NULL, seed TEXT NOT NULL, driver TEXT NOT NULL,
    started REAL NOT NULL, updated REAL NOT NULL, status TEXT NOT NULL,
    pid INTEGER, host TEXT,
    schedules INTEGER NOT NULL DEFAULT 0, interleavings INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0, seconds REAL NOT NULL DEFAULT 0,
    new_cover_at INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS campaigns_by_scenario ON campaigns (scenario_hash, faults_hash);
CREATE TABLE IF NOT EXISTS ranges (
    campaign INTEGER NOT NULL, start INTEGER NOT NULL, stop INTEGER NOT NULL,
    longest INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS ranges_by_campaign ON ranges (campaign, start);
CREATE TABLE IF NOT EXISTS findings (
    campaign INTEGER NOT NULL, signature TEXT NOT NULL, verdict TEXT NOT NULL,
    schedule INTEGER NOT NULL, trace TEXT, trace_hash TEXT, hits INTEGER NOT NULL,
    found REAL NOT NULL, PRIMARY KEY (campaign, signature));
CREATE TABLE IF NOT EXISTS interleavings (
    campaign INTEGER NOT NULL, hash INTEGER NOT NULL,
    PRIMARY KEY (campaign, hash)) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS interleavings_counted AFTER INSERT ON interleavings BEGIN
    UPDATE campaigns SET interleavings = interleavings + 1 WHERE id = NEW.campaign; END;
"""


#: ``PRAGMA user_version`` of the stores this vmemu writes. Stores written before it was
#: set say 0 and have the same tables: both open. A higher one is a newer vmemu's.
STORE_VERSION = 1

#: SQLite's result codes for "another connection held the lock for longer than the busy
#: timeout" (SQLITE_BUSY, SQLITE_LOCKED): the store is in use, not damaged.
_LOCKED = (5, 6)
#: Seconds to wait for another connection's lock (another exploration's write is short).
BUSY_SECONDS = 30.0

_columns: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {}


def _expected() -> dict[str, dict[str, tuple[tuple[type, ...], bool]]]:
    """Each table of :data:`_SCHEMA` -> its columns -> (the Python types a value may
    have, whether it may be NULL), read from the schema itself (one place to change)."""
    if not _columns:
        db = sqlite3.connect(":memory:")
        try:
            db.executescript(_SCHEMA)
            types = {"INTEGER": (int,), "TEXT": (str,), "REAL": (float, int)}
            for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
                _columns[table] = {
                    name: (types[kind], not notnull and not pk)
                    for _, name, kind, notnull, _, pk in db.execute(
                        f"PRAGMA table_info({table})")}
        finally:
            db.close()
    return _columns


def sig_text(sig: tuple) -> str:
    """A signature as stored (JSON)."""
    return json.dumps([sig[0], [list(c) for c in sig[1]], sig[2]])


def sig_from_text(text: str) -> tuple:
    v, cyc, culprit = json.loads(text)
    return (v, tuple(tuple(c) for c in cyc), culprit)


def _signed(h: int) -> int:
    return h - (1 << 64) if h >= 1 << 63 else h


class Store:
    """One connection to a campaign store (see the module docstring)."""

    def __init__(self, path: str | os.PathLike, *, readonly: bool = False) -> None:
        """Open (and create) the store at ``path``; ``readonly``: only to read it
        (``vmemu campaigns``), which works on a store this user may not write."""
        self.path = str(path)
        #: Why the store stopped taking writes mid-exploration (a full disk ...), if it did.
        self.lost: str | None = None
        try:
            kind = describe_path(os.stat(self.path).st_mode)
        except (OSError, ValueError):
            kind = None                 # (none yet, or the open below says why)
        if kind is not None:            # SQLite's own word would be "disk I/O error"
            raise UserError(f"is {kind}, not a campaign store; pass --store PATH with a "
                            "file you can write", file=self.path, key="--store")
        if readonly:
            self.db = self._read_only()
            return
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None)
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                with self._tx():
                    # (The tables are made only where none is: one of another layout
                    # is left as it is, and refused by the check; if its index cannot be
                    # made, the check says why.)
                    try:
                        self.db.executescript("BEGIN IMMEDIATE;" + _SCHEMA)
                    except sqlite3.Error as e:
                        if self.db.in_transaction and not _locked(e):
                            self._check_schema()
                        raise
                    self._check_schema()
                    if self.db.execute("PRAGMA user_version").fetchone()[0] == 0:
                        self.db.execute(f"PRAGMA user_version = {STORE_VERSION}")
                    self.db.execute("COMMIT")
            except BaseException:
                self.db.close()
                raise
        except (OSError, sqlite3.Error) as e:
            if _locked(e):
                raise self._in_use(e) from None
            raise UserError(f"cannot open the campaign store ({e}); pass --store PATH with "
                            "a file you can write, or delete a damaged one", file=self.path,
                            key="--store") from None

    def _in_use(self, e: Exception) -> UserError:
        """Another program holds the store locked (a healthy store: keep it)."""
        return UserError(f"the campaign store is in use: another vmemu or program has held "
                         f"it locked for {BUSY_SECONDS:g} s ({e}); wait for it to finish, or "
                         "pass --store PATH with another store", file=self.path,
                         key="--store")

    def _damaged(self, what: str) -> UserError:
        return UserError(f"not a campaign store this vmemu can use: {what}; use another "
                         "--store, or move this file away", file=self.path, key="--store")

    def _check_schema(self) -> None:
        """Refuse a store whose tables are not the ones this vmemu reads and writes (an
        SQLite file of another program, a newer vmemu's store), before any of it is read.

        Raises:
            UserError: naming the first table that differs.
        """
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > STORE_VERSION:
            raise self._damaged(f"it was written by a newer vmemu (store version {version}, "
                                f"this vmemu reads {STORE_VERSION})")
        for table, want in _expected().items():
            have = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            if not have:
                raise self._damaged(f"it has no {table} table")
            missing = [c for c in want if c not in have]
            if len(missing) > 3:
                raise self._damaged(f"its {table} table lacks {len(missing)} of the "
                                    f"{len(want)} columns of a store "
                                    f"({', '.join(missing[:3])} ...)")
            if missing:
                raise self._damaged(f"its {table} table has no column "
                                    + ", ".join(missing))

    def _check_row(self, table: str, row: dict[str, Any]) -> None:
        """Refuse a row whose values are not of its columns' types (SQLite keeps any
        value in any column: a store edited by hand, or by another program)."""
        for name, (types, nullable) in _expected()[table].items():
            v = row.get(name)
            if v is None and nullable or type(v) in types:
                continue
            which = f"campaign {row['id']}" if table == "campaigns" else f"a row of {table}"
            raise self._damaged(f"{which} is damaged ({name} is {str(v)[:40]!r})")

    def _read_only(self) -> sqlite3.Connection:
        # A WAL store is read through its -shm file, which a reader that may not write
        # the folder cannot make: then it is read as it is on disk (immutable), which
        # is what a listing needs.
        uri = Path(os.path.abspath(self.path)).as_uri()
        err: sqlite3.Error | None = None
        for mode in ("mode=ro", "immutable=1"):
            try:
                db = sqlite3.connect(f"{uri}?{mode}", uri=True, timeout=BUSY_SECONDS,
                                     isolation_level=None)
                try:
                    db.execute("SELECT count(*) FROM campaigns").fetchone()
                except sqlite3.Error:
                    db.close()
                    raise
            except sqlite3.Error as e:
                if _locked(e):
                    raise self._in_use(e) from None
                if "no such table" in str(e):
                    break       # (a database, but not a store: said below)
                err = e
                continue
            self.db = db
            try:
                self._check_schema()
            except BaseException:
                db.close()
                raise
            return db
        if err is None:
            raise self._damaged("it has no campaigns table")
        raise UserError(f"cannot read the campaign store ({err}); pass --store PATH with "
                        "a campaign store you can read", file=self.path, key="--store")

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            return self.db

        def __exit__(self, kind: Any, *rest: Any) -> None:
            if kind is not None and self.db.in_transaction:
                self.db.execute("ROLLBACK")

    def _tx(self) -> "Store._Tx":
        return Store._Tx(self.db)

    def _write(self, statements: Iterable[tuple[str, Any]]) -> None:
        """Run ``(sql, params)`` pairs as one transaction (params may be a list of
        rows for executemany).

        A write that fails (the disk filled up overnight, the file went read-only) does
        not end the exploration: its transaction is rolled back, so the store stays as
        it was at the last write that worked, :attr:`lost` says why, and later writes
        are skipped. What ran after that is not recorded, so a resume runs it again.
        """
        if self.lost is not None:
            return
        db = self.db
        try:
            with self._tx():
                db.execute("BEGIN IMMEDIATE")
                for sql, params in statements:
                    if isinstance(params, list):
                        db.executemany(sql, params)
                    else:
                        db.execute(sql, params)
                db.execute("COMMIT")
        except sqlite3.Error as e:
            self.lost = str(e)

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ campaigns
    def create(self, *, scenario: Any, faults: Any, strategy: str, params: dict[str, Any],
               seed: int, driver: str) -> int:
        now = time.time()
        try:
            return self._create(now, scenario, faults, strategy, params, seed, driver)
        except sqlite3.Error as e:
            raise self._cannot_write(e) from None

    def _cannot_write(self, e: Exception) -> UserError:
        if _locked(e):
            return self._in_use(e)
        return UserError(f"cannot write the campaign store ({e}); free some space, or pass "
                         "--store PATH with a file you can write", file=self.path,
                         key="--store")

    def _create(self, now: float, scenario: Any, faults: Any, strategy: str,
                params: dict[str, Any], seed: int, driver: str) -> int:
        cur = self.db.execute(
            "INSERT INTO campaigns (scenario, scenario_name, scenario_hash, faults, "
            "faults_hash, strategy, params, seed, driver, started, updated, status, pid, "
            "host) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (scenario.path, scenario.name, scenario.content_hash,
             getattr(faults, "path", None), getattr(faults, "content_hash", None),
             strategy, json.dumps(params, sort_keys=True), str(seed), driver, now, now,
             "running", os.getpid(), _hostname()))
        return int(cur.lastrowid)

    def find(self, scenario_hash: str, faults_hash: str | None,
             want: dict[str, Any]) -> dict[str, Any] | None:
        """The newest campaign of this scenario and fault plan whose settings match the
        given ones (``strategy``, ``seed``, ``params``: only those in ``want``)."""
        for row in self._dicts("SELECT * FROM campaigns WHERE scenario_hash = ? AND "
                               "faults_hash IS ? ORDER BY id DESC", (scenario_hash, faults_hash)):
            c = self._decode(row)
            if all(c[k] == v for k, v in want.items()):
                return c
        return None

    def newest_of(self, scenario_path: str) -> dict[str, Any] | None:
        """The newest campaign of the scenario file at ``scenario_path`` (as named when
        it ran), whatever its content then: why ``--resume`` found no campaign."""
        rows = self._dicts("SELECT * FROM campaigns WHERE scenario = ? ORDER BY id DESC "
                           "LIMIT 1", (scenario_path,))
        return self._decode(rows[0]) if rows else None

    def _dicts(self, sql: str, args: tuple = ()) -> list[dict[str, Any]]:
        """A query's rows as dicts by column name (read whole: a caller may query again
        while it goes through them)."""
        rows = self.db.execute(sql, args)
        cols = [c[0] for c in rows.description]
        return [dict(zip(cols, r)) for r in rows.fetchall()]

    def _decode(self, c: dict[str, Any]) -> dict[str, Any]:
        """A campaigns row as used: params a dict, seed an int; one line if it is not."""
        self._check_row("campaigns", c)
        try:
            params = json.loads(c["params"])
        except ValueError:
            params = None
        if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
            raise self._damaged(f"campaign {c['id']} is damaged (its params are "
                                f"{c['params'][:40]!r}, not a JSON object)")
        try:
            seed = int(c["seed"])
        except ValueError:
            raise self._damaged(f"campaign {c['id']} is damaged (its seed is "
                                f"{c['seed'][:40]!r}, not a number)") from None
        c["params"], c["seed"] = params, seed
        return c

    def reopen(self, campaign: int) -> None:
        """Mark ``campaign`` as running in this process, unless another process of this
        machine runs it now: two explorations resuming one campaign at once would both
        go on at its next unrun index and run the same schedules. The check and the
        mark are one transaction, so of two resumes started together one wins. (A
        campaign marked running on another machine cannot be checked: it is taken over.)

        Raises:
            UserError: the campaign is running in another live process here.
        """
        db, me, host = self.db, os.getpid(), _hostname()
        try:
            self._claim(db, campaign, me, host)
        except sqlite3.Error as e:
            raise self._cannot_write(e) from None

    def _claim(self, db: sqlite3.Connection, campaign: int, me: int, host: str) -> None:
        with self._tx():
            db.execute("BEGIN IMMEDIATE")
            status, pid, where = db.execute(
                "SELECT status, pid, host FROM campaigns WHERE id = ?", (campaign,)).fetchone()
            if status == "running" and where == host and pid != me and _alive(pid):
                db.execute("ROLLBACK")
                raise UserError(f"campaign {campaign} is running now (process {pid}); "
                                "wait for it to end, or explore without --resume for a new "
                                "campaign", file=self.path, key="--resume")
            db.execute("UPDATE campaigns SET status = 'running', pid = ?, host = ?, "
                       "updated = ? WHERE id = ?", (me, host, time.time(), campaign))
            db.execute("COMMIT")

    def release(self, campaign: int, status: str) -> None:
        """Undo :meth:`reopen` of a resume that ran nothing: ``status`` again (a campaign
        whose process was gone is ``interrupted`` then)."""
        self._write([("UPDATE campaigns SET status = ? WHERE id = ?",
                      ("interrupted" if status == "running" else status, campaign))])

    def ranges(self, campaign: int) -> list[tuple[int, int, int]]:
        rows = [tuple(r) for r in self.db.execute(
            "SELECT start, stop, longest FROM ranges WHERE campaign = ? ORDER BY start",
            (campaign,))]
        for r in rows:
            if not all(type(v) is int for v in r):
                raise self._damaged(f"a range of campaign {campaign} is damaged "
                                    f"({str(r)[:60]})")
        return rows

    def interleavings(self, campaign: int) -> set[int]:
        try:
            return {h & ((1 << 64) - 1) for (h,) in self.db.execute(
                "SELECT hash FROM interleavings WHERE campaign = ?", (campaign,))}
        except TypeError:   # (a hash that is not an int)
            raise self._damaged(f"an interleaving of campaign {campaign} is damaged "
                                "(not a number)") from None

    def findings(self, campaign: int) -> list[dict[str, Any]]:
        rows = self._dicts("SELECT * FROM findings WHERE campaign = ? ORDER BY schedule",
                           (campaign,))
        for f in rows:
            self._check_row("findings", f)
            try:
                hash(sig_from_text(f["signature"]))
            except (ValueError, TypeError):
                raise self._damaged(f"a finding of campaign {campaign} is damaged (its "
                                    f"signature is {f['signature'][:40]!r})") from None
        keep = ("signature", "verdict", "schedule", "trace", "trace_hash", "hits")
        return [{k: f[k] for k in keep} for f in rows]

    # ------------------------------------------------------------------ progress
    def record(self, campaign: int, *, ranges: list[tuple[int, int, int]],
               cover: Iterable[int], schedules: int, seconds: float,
               new_cover_at: int | None, status: str | None = None,
               hits: dict[tuple, int] | None = None,
               findings: Iterable[tuple[tuple, str, int, str | None, str]] = ()) -> None:
        """Add what ran since the last call, in one transaction: the ``ranges`` run, the
        interleavings they showed (``cover``: the ``interleavings`` count grows by the
        new ones), the ``findings`` in them (``(signature, verdict, schedule, trace,
        trace_hash)``: a new one, or a lower schedule / a better file for a known one)
        and ``hits``, their failing
        schedules per signature (of findings recorded now or before)."""
        sets = "schedules = schedules + ?, seconds = seconds + ?, updated = ?"
        args: list[Any] = [schedules, seconds, time.time()]
        if new_cover_at is not None:
            sets += ", new_cover_at = max(new_cover_at, ?)"
            args.append(new_cover_at)
        if status is not None:
            sets += ", status = ?"
            args.append(status)
        self._write([
            ("INSERT INTO ranges (campaign, start, stop, longest) VALUES (?,?,?,?)",
             [(campaign, a, b, n) for a, b, n in ranges]),
            ("INSERT OR IGNORE INTO interleavings (campaign, hash) VALUES (?,?)",
             [(campaign, _signed(h)) for h in cover]),
            *self._findings_sql(campaign, list(findings)),
            ("UPDATE findings SET hits = hits + ? WHERE campaign = ? AND signature = ?",
             [(n, campaign, sig_text(sig)) for sig, n in (hits or {}).items() if n > 0]),
            (f"UPDATE campaigns SET {sets} WHERE id = ?", (*args, campaign)),
        ])

    def repoint(self, campaign: int, sig: tuple, trace: str, trace_hash: str) -> None:
        """A finding's trace file, replaced (the old one was gone or no longer replayed)."""
        self._write([("UPDATE findings SET trace = ?, trace_hash = ? WHERE campaign = ? "
                      "AND signature = ?", (os.path.abspath(trace), trace_hash, campaign,
                                            sig_text(sig)))])

    @staticmethod
    def _findings_sql(campaign: int, rows: list[tuple[tuple, str, int, str | None, str]]
                      ) -> list[tuple[str, Any]]:
        """The statements recording ``rows``. A file is recorded by its absolute path:
        ``vmemu campaigns`` and a resume may run in another folder."""
        if not rows:
            return []
        now = time.time()
        return [(
            "INSERT INTO findings (campaign, signature, verdict, schedule, trace, trace_hash, "
            "hits, found) VALUES (?,?,?,?,?,?,0,?) ON CONFLICT (campaign, signature) DO "
            "UPDATE SET schedule = excluded.schedule, trace = excluded.trace, "
            "trace_hash = excluded.trace_hash WHERE excluded.schedule <= findings.schedule",
            [(campaign, sig_text(sig), verdict, schedule,
              os.path.abspath(trace) if trace else None, trace_hash, now)
             for sig, verdict, schedule, trace, trace_hash in rows]),
            ("UPDATE campaigns SET failures = (SELECT count(*) FROM findings WHERE "
             "campaign = ?), updated = ? WHERE id = ?", (campaign, now, campaign))]

    # ------------------------------------------------------------------ listing
    def campaigns(self) -> list[dict[str, Any]]:
        """Every campaign, oldest first, with its findings (``vmemu campaigns``)."""
        out = []
        host = _hostname()
        for row in self._dicts("SELECT * FROM campaigns ORDER BY id"):
            c = self._decode(row)
            if c["status"] == "running" and c["host"] == host and not _alive(c["pid"]):
                c["status"] = "killed"
            c["findings"] = self.findings(c["id"])
            out.append(c)
        return out


def _locked(e: Exception) -> bool:
    """Is ``e`` SQLite saying another connection holds the store locked?"""
    code = getattr(e, "sqlite_errorcode", None)     # (an extended code: its low byte)
    return (code is not None and code & 0xFF in _LOCKED) or "database is locked" in str(e)


def _alive(pid: int | None) -> bool:
    """Is process ``pid`` (on this host) still running?

    A killed explorer whose parent has not reaped it yet (a supervisor script that
    killed it and never waited) is a zombie: it answers signal 0, but it runs no more,
    so on Linux its state in /proc decides.
    """
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # "pid (comm) S ...": the state follows the last ')' (comm may hold any).
            return f.read().rpartition(b")")[2].split()[:1] != [b"Z"]
    except OSError:  # no /proc (not Linux): signal 0 decides, as it must
        return True


def holes(done: list[tuple[int, int, int]]) -> tuple[list[tuple[int, int]], int]:
    """The index ranges below the highest one run that never ran, and where the run
    indices end (``done``: sorted ``(start, stop, longest)``)."""
    gaps: list[tuple[int, int]] = []
    end = 0
    for a, b, _ in sorted(done):
        if a > end:
            gaps.append((end, a))
        end = max(end, b)
    return gaps, end


def _hostname() -> str:
    """This machine's name, as ``socket.gethostname()`` says it (without importing
    socket, which costs a command a few milliseconds to start)."""
    uname = getattr(os, "uname", None)
    if uname is not None:
        return uname().nodename
    import socket   # pragma: no cover - not POSIX
    return socket.gethostname()

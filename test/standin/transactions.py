"""Sessions and multi-document transactions.

Rules of this file:
- A transaction works on private copies of the collections it touches
  (taken at first touch: a snapshot, sharing the immutable documents), so
  its uncommitted writes are invisible to every other client.
- Its writes are recorded as oplog entries; commit applies them to the
  store with storage.apply_entry, in order, and appends them to the oplog
  in one call (one clusterTime, increasing txnOpIndex).  Abort drops the
  copies.
- Retryable writes: the reply of the last (lsid, txnNumber) write is kept,
  so a retried write is answered without being applied twice.
- Everything here runs with the server's one lock held.
"""

import time

from .errors import CommandError, NO_SUCH_TRANSACTION, TRANSACTION_COMMITTED, \
    BAD_VALUE

TRANSIENT = "TransientTransactionError"
UNKNOWN_COMMIT = "UnknownTransactionCommitResult"


def lsid_key(lsid):
    if not isinstance(lsid, dict) or "id" not in lsid:
        raise CommandError(*BAD_VALUE, "lsid must be a document with an id")
    return bytes(lsid["id"])


class _View:
    """What StoreView and TxnView share: creating on first use and logging."""

    def ensure(self, db, coll):
        c = self.get(db, coll)
        if c is None:
            c = self.create(db, coll)
        return c

    def emit(self, entry):
        self.entries.append(entry)

    def _log_create(self, db, coll, options):
        self.entries.append({"op": "create", "db": db, "coll": coll,
                             "options": dict(options or {})})


class StoreView(_View):
    """Collections as everyone sees them; writes land in the store."""

    txn = None

    def __init__(self, store):
        self.store = store
        self.entries = []

    def get(self, db, coll):
        return self.store.get(db, coll)

    def collections(self, db):
        return self.store.collections(db)

    def create(self, db, coll, options=None):
        c = self.store.create(db, coll, options)
        self._log_create(db, coll, options)
        return c

    def before_write(self, coll, key):
        pass


class Transaction:
    """The private state of one open transaction."""

    def __init__(self, store, txn_number, registry=None):
        self.store = store
        self.txn_number = txn_number
        self.registry = registry if registry is not None else {}
        self.locks = set()
        self.base = {}            # (db, coll, key) -> the pair first written over
        self.shadows = {}         # (db, coll) -> Collection or None
        self.entries = []
        self.state = "in_progress"
        self.started = time.time()

    def get(self, db, coll):
        k = (db, coll)
        if k not in self.shadows:
            real = self.store.get(db, coll)
            self.shadows[k] = real.clone() if real is not None else None
        return self.shadows[k]

    def release(self):
        for lk in self.locks:
            if self.registry.get(lk) is self:
                del self.registry[lk]
        self.locks = set()

    def collections(self, db):
        out = dict(self.store.collections(db))
        for (d, c), shadow in self.shadows.items():
            if d == db:
                if shadow is None:
                    out.pop(c, None)
                else:
                    out[c] = shadow
        return out


class TxnView(_View):
    """Collections as a transaction sees them; writes stay private."""

    def __init__(self, store, txn):
        self.store = store
        self.txn = txn
        self.entries = txn.entries

    def get(self, db, coll):
        return self.txn.get(db, coll)

    def collections(self, db):
        return self.txn.collections(db)

    def create(self, db, coll, options=None):
        from .storage import Collection
        from .errors import NAMESPACE_EXISTS
        if self.txn.get(db, coll) is not None:
            raise CommandError(*NAMESPACE_EXISTS,
                               "Collection %s.%s already exists." % (db, coll))
        c = Collection(db, coll, options)
        self.txn.shadows[(db, coll)] = c
        self._log_create(db, coll, options)
        return c

    def before_write(self, coll, key):
        """WriteConflict (112) when another open transaction wrote this
        document, or someone changed it since this transaction's snapshot."""
        txn = self.txn
        lk = (coll.db, coll.name, key)
        if lk in txn.locks:
            return
        owner = txn.registry.get(lk)
        real = self.store.get(coll.db, coll.name)
        real_pair = real.docs.get(key) if real is not None else None
        if (owner is not None and owner is not txn and owner.state == "in_progress") \
                or coll.docs.get(key) is not real_pair:
            raise CommandError(112, "WriteConflict",
                               "WriteConflict error: this operation conflicted with "
                               "another operation. Please retry your operation or "
                               "multi-document transaction.", labels=[TRANSIENT])
        txn.locks.add(lk)
        txn.registry[lk] = txn
        txn.base[lk] = real_pair


class Session:
    def __init__(self, key, lsid):
        self.key = key
        self.lsid = lsid
        self.txn_number = -1
        self.txn = None           # the newest Transaction (any state)
        self.retry_number = None  # retryable write: txnNumber of last reply
        self.retry_reply = None
        self.last_use = time.time()


class Sessions:
    def __init__(self, server):
        self.server = server
        self.sessions = {}
        self.doc_locks = {}       # (db, coll, id key) -> Transaction

    def get(self, lsid):
        key = lsid_key(lsid)
        s = self.sessions.get(key)
        if s is None:
            s = self.sessions[key] = Session(key, lsid)
        s.last_use = time.time()
        return s

    def end(self, lsids, cursors):
        """endSessions: abort their transactions and close their cursors in
        `cursors` (the registry of the process that got the command)."""
        for lsid in lsids:
            try:
                key = lsid_key(lsid)
            except CommandError:
                continue
            s = self.sessions.pop(key, None)
            if s is not None and s.txn is not None and s.txn.state == "in_progress":
                s.txn.state = "aborted"
                s.txn.release()
            cursors.kill_session(key)

    # -- transaction state machine ----------------------------------------
    def begin_or_continue(self, session, txn_number, start):
        """The Transaction a command with autocommit:false belongs to."""
        if start:
            if txn_number < session.txn_number or (
                    txn_number == session.txn_number and session.txn is not None):
                if session.txn is not None and session.txn.txn_number == txn_number \
                        and session.txn.state == "committed":
                    raise CommandError(*TRANSACTION_COMMITTED,
                                       "Transaction with { txnNumber: %d } has been "
                                       "committed." % txn_number)
                raise CommandError(225, "TransactionTooOld",
                                   "Cannot start transaction %d on session because "
                                   "a newer transaction %d has already started."
                                   % (txn_number, session.txn_number))
            if session.txn is not None and session.txn.state == "in_progress":
                session.txn.state = "aborted"
                session.txn.release()
            session.txn_number = txn_number
            session.txn = Transaction(self.server.store, txn_number, self.doc_locks)
            return session.txn
        txn = session.txn
        if txn is None or txn.txn_number != txn_number or \
                txn.state != "in_progress":
            if txn is not None and txn.txn_number == txn_number and \
                    txn.state == "committed":
                raise CommandError(*TRANSACTION_COMMITTED,
                                   "Transaction %d has been committed." % txn_number)
            raise CommandError(*NO_SUCH_TRANSACTION,
                               "Transaction with { txnNumber: %d } has been aborted."
                               % txn_number if txn is not None and
                               txn.txn_number == txn_number else
                               "Given transaction number %d does not match any "
                               "in-progress transactions." % txn_number,
                               labels=[TRANSIENT])
        return txn

    def commit(self, session, txn_number):
        """Apply and log a transaction; returns the commit's operation time or
        None when nothing was written."""
        txn = session.txn
        if txn is None or txn.txn_number != txn_number:
            raise CommandError(*NO_SUCH_TRANSACTION,
                               "Given transaction number %d does not match any "
                               "in-progress transactions." % txn_number,
                               labels=[TRANSIENT])
        if txn.state == "committed":
            return None           # a retried commit succeeds again
        if txn.state != "in_progress":
            raise CommandError(*NO_SUCH_TRANSACTION,
                               "Transaction with { txnNumber: %d } has been aborted."
                               % txn_number, labels=[TRANSIENT])
        # A write outside any transaction may have changed a document this
        # one wrote (mongod would have made that write wait): abort then.
        store = self.server.store
        for (db, coll, key), base in txn.base.items():
            real = store.get(db, coll)
            if (real.docs.get(key) if real is not None else None) is not base:
                self.abort(session, txn_number)
                raise CommandError(112, "WriteConflict",
                                   "WriteConflict error: this operation conflicted with "
                                   "another operation. Please retry your operation or "
                                   "multi-document transaction.", labels=[TRANSIENT])
        txn.state = "committed"
        entries = txn.entries
        txn.shadows = {}
        txn.release()
        if not entries:
            return None
        for e in entries:
            store.apply_entry(e)
        return self.server.oplog.append(entries, session.lsid, txn_number)

    def abort(self, session, txn_number):
        txn = session.txn
        if txn is None or txn.txn_number != txn_number:
            raise CommandError(*NO_SUCH_TRANSACTION,
                               "Given transaction number %d does not match any "
                               "in-progress transactions." % txn_number,
                               labels=[TRANSIENT])
        if txn.state == "committed":
            raise CommandError(*TRANSACTION_COMMITTED,
                               "Transaction with { txnNumber: %d } has been committed."
                               % txn_number)
        if txn.state == "aborted":
            raise CommandError(*NO_SUCH_TRANSACTION,
                               "Transaction with { txnNumber: %d } has been aborted."
                               % txn_number, labels=[TRANSIENT])
        txn.state = "aborted"
        txn.shadows = {}
        txn.entries.clear()
        txn.release()

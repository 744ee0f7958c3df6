/*-------------------------------------------------------------------------
 *
 * xact.c
 *		  MongoDB transactions that follow PostgreSQL's
 *
 * Design rules of this file:
 *
 * - The writes of one PostgreSQL transaction through one connection (one
 *   user mapping) run in one MongoDB transaction, in a client session
 *   started at the first write.  It commits at PostgreSQL's pre-commit:
 *   a failure there is an ERROR, so PostgreSQL's transaction aborts too.
 *   ROLLBACK and ERROR abort it.  Writes through several connections make
 *   several MongoDB transactions, committed one after the other: there is
 *   no two-phase commit between them.
 *
 * - MongoDB has no savepoints.  When a subtransaction that wrote to
 *   MongoDB rolls back (ROLLBACK TO SAVEPOINT, a PL/pgSQL exception
 *   block), the whole MongoDB transaction is aborted at once and the
 *   PostgreSQL transaction is doomed: its next write to MongoDB, and its
 *   COMMIT, fail with an error saying so.  A subtransaction that did not
 *   write to MongoDB rolls back as usual.
 *
 * - PREPARE TRANSACTION of a transaction that wrote to MongoDB is refused.
 *
 * - Reads through a connection whose transaction wrote run in that
 *   transaction (see qleaf_xact_read_session): they see its writes.
 *
 * - Commit follows the transactions specification: an error labelled
 *   UnknownTransactionCommitResult, or a network or server selection
 *   error (which the specification labels so, and libmongoc 1.23 does not
 *   always), is retried (libmongoc retries once by itself, then
 *   QLEAF_COMMIT_RETRIES more times); if the result is still unknown, the
 *   ERROR says that the writes may or may not be committed.  The mongos
 *   router of a transaction that went away is such a case: the commit may
 *   have reached it.
 *
 * - The transaction holds a reference to its connection, so the client
 *   cannot be closed under it.  Sessions are destroyed, and references
 *   released, when TopTransactionContext goes away: after the executor's
 *   cursors, which may still use the session during an abort, are gone.
 *   The transaction callbacks never raise an ERROR during an abort.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "lib/stringinfo.h"
#include "utils/memutils.h"

#include "modify.h"

/* Extra commitTransaction attempts when the result is unknown. */
#define QLEAF_COMMIT_RETRIES	2

typedef struct QleafXact
{
	QleafConn  *conn;			/* a reference we hold */
	mongoc_client_session_t *session;
	bool		in_txn;			/* a MongoDB transaction is open */
	struct QleafXact *next;
} QleafXact;

/* The open transactions of this PostgreSQL transaction, in TopMemoryContext. */
static QleafXact *xacts = NULL;

/* The deepest subtransaction level that owns MongoDB writes, 0 = none. */
static int	write_level = 0;

/* A subtransaction rollback undid the MongoDB part of this transaction. */
static bool doomed = false;

static bool callbacks_registered = false;
static bool cleanup_registered = false;

static void xact_callback(XactEvent event, void *arg);
static void subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							 SubTransactionId parentSubid, void *arg);
static void xact_cleanup(void *arg);
static void abort_all(void);

static QleafXact *
find_xact(QleafConn *conn)
{
	QleafXact  *x;

	for (x = xacts; x != NULL; x = x->next)
		if (x->conn == conn)
			return x;
	return NULL;
}

void
qleaf_xact_check_usable(void)
{
	if (doomed)
		ereport(ERROR,
				(errcode(ERRCODE_IN_FAILED_SQL_TRANSACTION),
				 errmsg("the MongoDB writes of this transaction were rolled back"),
				 errdetail("A subtransaction that wrote to MongoDB was rolled back; MongoDB transactions have no savepoints, so all of this transaction's MongoDB writes were undone."),
				 errhint("Roll back the whole transaction and run it again.")));
}

mongoc_client_session_t *
qleaf_xact_write_session(QleafConn *conn)
{
	QleafXact  *x;
	bson_error_t error;
	int			level = GetCurrentTransactionNestLevel();

	qleaf_xact_check_usable();

	if (!callbacks_registered)
	{
		RegisterXactCallback(xact_callback, NULL);
		RegisterSubXactCallback(subxact_callback, NULL);
		callbacks_registered = true;
	}
	if (!cleanup_registered)
	{
		MemoryContextCallback *cb;

		cb = MemoryContextAlloc(TopTransactionContext,
								sizeof(MemoryContextCallback));
		cb->func = xact_cleanup;
		cb->arg = NULL;
		MemoryContextRegisterResetCallback(TopTransactionContext, cb);
		cleanup_registered = true;
	}

	x = find_xact(conn);
	if (x == NULL)
	{
		x = MemoryContextAllocZero(TopMemoryContext, sizeof(QleafXact));
		qleaf_conn_retain(conn);
		x->conn = conn;
		x->next = xacts;
		xacts = x;
	}
	if (x->session == NULL)
	{
		x->session = mongoc_client_start_session(qleaf_conn_client(conn),
												 NULL, &error);
		if (x->session == NULL)
			qleaf_report_error(ERROR, conn, &error, NULL,
							   "while starting a MongoDB session");
	}
	if (!x->in_txn)
	{
		if (!mongoc_client_session_start_transaction(x->session, NULL, &error))
			qleaf_report_error(ERROR, conn, &error, NULL,
							   "while starting a MongoDB transaction");
		x->in_txn = true;
	}
	if (level > write_level)
		write_level = level;
	return x->session;
}

mongoc_client_session_t *
qleaf_xact_read_session(QleafConn *conn)
{
	QleafXact  *x;

	if (xacts == NULL)
		return NULL;
	x = find_xact(conn);
	if (x == NULL || !x->in_txn)
		return NULL;
	return x->session;
}

/*
 * Commit one MongoDB transaction, retrying while its result is unknown.
 * Raises an ERROR when it fails.  "committed" names the servers whose
 * transactions this commit already committed (NULL: none), so the ERROR
 * can say what stays in MongoDB.
 */
static void
commit_one(QleafXact *x, const char *committed)
{
	bson_t		reply;
	bson_error_t error;
	int			attempt;
	bool		ok = false;
	bool		unknown = false;
	bool		transient = false;
	char		message[sizeof(error.message)];
	uint32		code = 0;

	for (attempt = 0; attempt <= QLEAF_COMMIT_RETRIES; attempt++)
	{
		ok = mongoc_client_session_commit_transaction(x->session, &reply,
													  &error);
		unknown = !ok &&
			(mongoc_error_has_label(&reply, "UnknownTransactionCommitResult") ||
			 error.domain == MONGOC_ERROR_STREAM ||
			 error.domain == MONGOC_ERROR_SERVER_SELECTION);
		transient = !ok && mongoc_error_has_label(&reply,
												  "TransientTransactionError");
		bson_destroy(&reply);
		if (ok || !unknown)
			break;
	}
	x->in_txn = false;
	if (ok)
		return;

	strlcpy(message, error.message, sizeof(message));
	code = error.code;
	if (unknown)
		ereport(ERROR,
				(errcode(ERRCODE_TRANSACTION_RESOLUTION_UNKNOWN),
				 errmsg("the result of committing the MongoDB transaction on server \"%s\" is unknown",
						qleaf_conn_server_name(x->conn)),
				 committed == NULL ?
				 errdetail("MongoDB error %u: %s. The writes of this transaction may or may not be committed in MongoDB; the PostgreSQL transaction is rolled back.",
						   code, message) :
				 errdetail("MongoDB error %u: %s. The writes through server \"%s\" may or may not be committed in MongoDB, those through %s were committed (servers commit one after the other, without two-phase commit); the PostgreSQL transaction is rolled back.",
						   code, message, qleaf_conn_server_name(x->conn),
						   committed),
				 errhint("Check the MongoDB data before running the transaction again.")));
	if (committed != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("could not commit the MongoDB transaction on server \"%s\"",
						qleaf_conn_server_name(x->conn)),
				 errdetail("MongoDB error %u: %s. Nothing written through server \"%s\" was committed, but the writes through %s were (servers commit one after the other, without two-phase commit); the PostgreSQL transaction is rolled back.",
						   code, message, qleaf_conn_server_name(x->conn),
						   committed),
				 errhint("Check the data written through %s before running the transaction again: running it again would write it twice.",
						 committed)));
	ereport(ERROR,
			(errcode(transient ? ERRCODE_T_R_SERIALIZATION_FAILURE :
					 ERRCODE_FDW_ERROR),
			 errmsg("could not commit the MongoDB transaction on server \"%s\"",
					qleaf_conn_server_name(x->conn)),
			 errdetail("MongoDB error %u: %s. Nothing this transaction wrote to MongoDB was committed; the PostgreSQL transaction is rolled back.",
					   code, message),
			 transient ? errhint("The error is transient: run the transaction again.") : 0));
}

/* Abort every open MongoDB transaction.  Never raises an ERROR. */
static void
abort_all(void)
{
	QleafXact  *x;

	for (x = xacts; x != NULL; x = x->next)
	{
		if (x->in_txn && x->session != NULL)
		{
			bson_error_t error;

			/* errors are of no use here: the server drops it in time */
			(void) mongoc_client_session_abort_transaction(x->session, &error);
		}
		x->in_txn = false;
	}
}

static void
xact_callback(XactEvent event, void *arg)
{
	QleafXact  *x;

	if (xacts == NULL && !doomed)
		return;

	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			if (doomed)
			{
				doomed = false;
				ereport(ERROR,
						(errcode(ERRCODE_IN_FAILED_SQL_TRANSACTION),
						 errmsg("cannot commit a transaction whose MongoDB writes were rolled back"),
						 errdetail("A subtransaction that wrote to MongoDB was rolled back; MongoDB transactions have no savepoints, so all of this transaction's MongoDB writes were undone."),
						 errhint("Run the transaction again.")));
			}
			{
				StringInfoData committed;

				initStringInfo(&committed);
				for (x = xacts; x != NULL; x = x->next)
				{
					if (!x->in_txn)
						continue;
					commit_one(x, committed.len > 0 ? committed.data : NULL);
					appendStringInfo(&committed, "%sserver \"%s\"",
									 committed.len > 0 ? ", " : "",
									 qleaf_conn_server_name(x->conn));
				}
			}
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (xacts != NULL || doomed)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot prepare a transaction that wrote to MongoDB"),
						 errdetail("MongoDB transactions cannot take part in two-phase commit."),
						 errhint("Commit the transaction instead, or write with the option transactions 'false'.")));
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			abort_all();
			doomed = false;
			break;
		default:
			break;
	}
}

static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();

	if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		/* its writes now belong to the parent */
		if (write_level >= level)
			write_level = level - 1;
	}
	else if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		QleafXact  *x;
		bool		open = false;

		if (write_level < level)
			return;
		for (x = xacts; x != NULL; x = x->next)
			open |= x->in_txn;
		write_level = level - 1;
		if (!open)
			return;
		abort_all();
		doomed = true;
	}
}

/*
 * TopTransactionContext is going away: the transaction is over and every
 * cursor that could use a session is gone.
 */
static void
xact_cleanup(void *arg)
{
	QleafXact  *x = xacts;

	xacts = NULL;
	write_level = 0;
	doomed = false;
	cleanup_registered = false;
	while (x != NULL)
	{
		QleafXact  *next = x->next;

		if (x->session != NULL)
			mongoc_client_session_destroy(x->session);
		qleaf_release_connection(x->conn);
		pfree(x);
		x = next;
	}
}

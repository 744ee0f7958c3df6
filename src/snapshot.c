/*-------------------------------------------------------------------------
 *
 * snapshot.c
 *		  the initial snapshot of a stream
 *
 * A stream created with snapshot => true (or reset with it) first stores
 * every current document of its collection, or of each collection of its
 * database, as an event with operationType "snapshot"; then its change
 * stream starts at the time taken before the first read, so no change is
 * missed.
 *
 * The start time T is the server's operation time (a ping); the stream's
 * start_timestamp becomes the Timestamp just after T, saved before any
 * document is read.  Every read uses readConcern {level: "majority",
 * afterClusterTime: T}: the server waits until its majority-committed
 * data includes T, so each document is read in a state at least as new as
 * T, and every later change has a cluster time after T and comes through
 * the change stream.  A document
 * changed while the snapshot runs thus appears twice: in the snapshot (in
 * some state at or after T) and in the change events after it, which end
 * in its current state.
 *
 * Order and position.  A collection is read in _id order (find, sort
 * {_id: 1}); the worker stores the documents in batches, one transaction
 * per batch, saving the collection and the last _id in the same
 * transaction.  After a crash the read continues after that _id.  MongoDB
 * sorts _id values by type bracket first (MinKey, null, numbers, strings,
 * objects, binary data, ObjectId, booleans, dates, timestamps, regular
 * expressions, DBPointer, code, code with scope, MaxKey) but compares
 * with $gt only inside one bracket, so a continuation is two reads: the
 * values of the last _id's bracket greater than it ($gt), then the values
 * of every later bracket ($type), both in _id order.  Documents inserted
 * behind the position meanwhile have cluster times after T: their insert
 * events bring them.  A database's collections are read in name order,
 * the same way.
 *
 * Each snapshot event has a synthetic resume token
 * "snapshot:<T secs>.<T inc>:<collection>:<_id as canonical Extended
 * JSON>" (an _id longer than 256 characters is replaced by the MD5 of its
 * JSON), unique per stream and snapshot, so the event table's unique
 * (stream, resume_token) refuses a document stored twice.  Its cluster
 * time is T.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "qleaf_fdw.h"
#include "changes.h"
#include "snapshot.h"
#include "stream.h"

#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "common/md5.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(qleaf_stream_snapshot_runtime);

/* _id values longer than this go into tokens as their MD5 */
#define TOKEN_ID_MAX	256

/* The reads of one collection. */
typedef enum SnapshotPhase
{
	PHASE_ALL,					/* no position: every document */
	PHASE_SAME_BRACKET,			/* _id $gt the position */
	PHASE_LATER_BRACKETS,		/* _id of a later type bracket */
	PHASE_DONE
} SnapshotPhase;

struct QleafSnapshot
{
	MemoryContext cxt;			/* owns this struct and its libmongoc objects */
	MemoryContextCallback cleanup;
	QleafChangeStream *cs;		/* the connection; cxt is a child of its */
	mongoc_database_t *database;
	mongoc_collection_t *collection;
	mongoc_cursor_t *cursor;

	const char *what;			/* error context */
	char	   *dbname;
	List	   *collections;	/* names, the current one first */
	SnapshotPhase phase;
	bson_t	   *last_id;		/* {"_id": ...} of the last document read */
	uint64		at;				/* T */
};

/*
 * MongoDB's type brackets of _id values, in sort order, with the $type
 * names of each.
 */
static const struct
{
	bson_type_t type;
	int			bracket;
	const char *name;
}			brackets[] = {
	{BSON_TYPE_MINKEY, 1, "minKey"},
	{BSON_TYPE_NULL, 2, "null"},
	{BSON_TYPE_UNDEFINED, 2, NULL},
	{BSON_TYPE_DOUBLE, 3, "double"},
	{BSON_TYPE_INT32, 3, "int"},
	{BSON_TYPE_INT64, 3, "long"},
	{BSON_TYPE_DECIMAL128, 3, "decimal"},
	{BSON_TYPE_UTF8, 4, "string"},
	{BSON_TYPE_SYMBOL, 4, "symbol"},
	{BSON_TYPE_DOCUMENT, 5, "object"},
	{BSON_TYPE_ARRAY, 6, "array"},
	{BSON_TYPE_BINARY, 7, "binData"},
	{BSON_TYPE_OID, 8, "objectId"},
	{BSON_TYPE_BOOL, 9, "bool"},
	{BSON_TYPE_DATE_TIME, 10, "date"},
	{BSON_TYPE_TIMESTAMP, 11, "timestamp"},
	{BSON_TYPE_REGEX, 12, "regex"},
	{BSON_TYPE_DBPOINTER, 13, "dbPointer"},
	{BSON_TYPE_CODE, 14, "javascript"},
	{BSON_TYPE_CODEWSCOPE, 15, "javascriptWithScope"},
	{BSON_TYPE_MAXKEY, 16, "maxKey"},
};

static int
bracket_of(bson_type_t type)
{
	int			i;

	for (i = 0; i < (int) lengthof(brackets); i++)
		if (brackets[i].type == type)
			return brackets[i].bracket;
	elog(ERROR, "qleaf_fdw: _id of unexpected BSON type 0x%02x", (int) type);
	return 0;					/* keep compiler quiet */
}

static void
snapshot_cleanup(void *arg)
{
	QleafSnapshot *snap = (QleafSnapshot *) arg;

	if (snap->cursor != NULL)
	{
		mongoc_cursor_t *cursor = snap->cursor;

		snap->cursor = NULL;
		mongoc_cursor_destroy(cursor);
	}
	if (snap->collection != NULL)
	{
		mongoc_collection_destroy(snap->collection);
		snap->collection = NULL;
	}
	if (snap->database != NULL)
	{
		mongoc_database_destroy(snap->database);
		snap->database = NULL;
	}
	/* the connection goes with cs's context, our parent */
}

QleafSnapshot *
qleaf_snapshot_connect(UserMapping *user, ForeignServer *server,
					   MemoryContext parent, const char *what)
{
	QleafChangeStream *cs;
	MemoryContext cxt;
	QleafSnapshot *snap;

	/*
	 * Deleting a context deletes its children first: ours, a child of the
	 * connection's, destroys the cursor and handles before the connection
	 * is released.
	 */
	cs = qleaf_change_stream_connect(user, server, parent);
	cxt = AllocSetContextCreate(cs->cxt, "qleaf_fdw snapshot",
								ALLOCSET_DEFAULT_SIZES);
	snap = MemoryContextAllocZero(cxt, sizeof(QleafSnapshot));
	snap->cxt = cxt;
	snap->cs = cs;
	snap->what = MemoryContextStrdup(cxt, what);
	snap->cleanup.func = snapshot_cleanup;
	snap->cleanup.arg = snap;
	MemoryContextRegisterResetCallback(cxt, &snap->cleanup);
	return snap;
}

uint64
qleaf_snapshot_server_time(QleafSnapshot *snap)
{
	return qleaf_change_stream_server_time(snap->cs->conn, snap->what);
}

void
qleaf_snapshot_close(QleafSnapshot *snap)
{
	if (snap != NULL)
		qleaf_change_stream_close(snap->cs);
}

static void
raise_cursor_error(QleafSnapshot *snap, mongoc_cursor_t *cursor)
{
	bson_error_t error;
	const bson_t *reply = NULL;

	if (mongoc_cursor_error_document(cursor, &error, &reply))
		qleaf_report_error(ERROR, snap->cs->conn, &error, reply, snap->what);
}

/* estimatedDocumentCount: the count command without a query */
static uint64
estimate_count(QleafSnapshot *snap, const char *coll)
{
	bson_t		cmd = BSON_INITIALIZER;
	bson_t		reply;
	bson_error_t error;
	bson_iter_t it;
	uint64		n = 0;
	bool		ok;

	bson_append_utf8(&cmd, "count", -1, coll, -1);
	ok = mongoc_database_command_simple(snap->database, &cmd, NULL, &reply,
										&error);
	bson_destroy(&cmd);
	if (ok && bson_iter_init_find(&it, &reply, "n") &&
		BSON_ITER_HOLDS_NUMBER(&it) && bson_iter_as_int64(&it) > 0)
		n = (uint64) bson_iter_as_int64(&it);
	bson_destroy(&reply);
	/* an estimate only: a failure counts nothing */
	return n;
}

static int
name_cmp(const ListCell *a, const ListCell *b)
{
	return strcmp((const char *) lfirst(a), (const char *) lfirst(b));
}

uint64
qleaf_snapshot_start(QleafSnapshot *snap, const char *database,
					 const char *collection, const char *from_collection,
					 const char *from_id, uint64 at)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(snap->cxt);
	mongoc_client_t *client = qleaf_conn_client(snap->cs->conn);
	uint64		total = 0;
	ListCell   *lc;
	List	   *all = NIL;

	snap->dbname = pstrdup(database);
	snap->at = at;
	snap->database = mongoc_client_get_database(client, database);
	if (collection != NULL)
		all = list_make1(pstrdup(collection));
	else
	{
		bson_t		opts = BSON_INITIALIZER;
		bson_t		filter;
		mongoc_cursor_t *cursor;
		const bson_t *info;

		/*
		 * plain collections only: views and system collections stream
		 * nothing.  authorizedCollections: a MongoDB user with find and
		 * changeStream on the database but not listCollections (which a
		 * database stream does not need) still gets every collection.
		 */
		bson_append_document_begin(&opts, "filter", -1, &filter);
		bson_append_utf8(&filter, "type", -1, "collection", -1);
		bson_append_document_end(&opts, &filter);
		bson_append_bool(&opts, "nameOnly", -1, true);
		bson_append_bool(&opts, "authorizedCollections", -1, true);
		cursor = mongoc_database_find_collections_with_opts(snap->database, &opts);
		bson_destroy(&opts);
		snap->cursor = cursor;
		while (mongoc_cursor_next(cursor, &info))
		{
			bson_iter_t it;

			if (bson_iter_init_find(&it, info, "name") && BSON_ITER_HOLDS_UTF8(&it) &&
				strncmp(bson_iter_utf8(&it, NULL), "system.", 7) != 0)
				all = lappend(all, pstrdup(bson_iter_utf8(&it, NULL)));
		}
		raise_cursor_error(snap, cursor);
		snap->cursor = NULL;
		mongoc_cursor_destroy(cursor);
		list_sort(all, name_cmp);
	}

	snap->collections = NIL;
	foreach(lc, all)
	{
		char	   *name = lfirst(lc);

		total += estimate_count(snap, name);
		/* a database's collections before the position are done */
		if (collection != NULL || from_collection == NULL ||
			strcmp(name, from_collection) >= 0)
			snap->collections = lappend(snap->collections, name);
	}
	snap->phase = PHASE_ALL;
	snap->last_id = NULL;
	if (from_collection != NULL && from_id != NULL &&
		snap->collections != NIL &&
		strcmp(linitial(snap->collections), from_collection) == 0)
	{
		bson_error_t error;
		bson_t	   *id = bson_new_from_json((const uint8_t *) from_id, -1, &error);
		bson_iter_t it;

		if (id == NULL || !bson_iter_init_find(&it, id, "_id"))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("the saved snapshot position of the stream is invalid: %s",
							from_id),
					 errhint("Reset the stream with qleaf.reset_stream(name, snapshot => true).")));
		snap->last_id = qleaf_bson_new_owned(snap->cxt);
		bson_concat(snap->last_id, id);
		bson_destroy(id);
		snap->phase = PHASE_SAME_BRACKET;
	}
	MemoryContextSwitchTo(oldcxt);
	return total;
}

/* readConcern majority after T, sort by _id */
static bson_t *
find_opts(QleafSnapshot *snap, int batch)
{
	bson_t	   *opts = qleaf_bson_new_owned(snap->cxt);
	bson_t		sub;

	bson_append_document_begin(opts, "sort", -1, &sub);
	bson_append_int32(&sub, "_id", -1, 1);
	bson_append_document_end(opts, &sub);
	bson_append_int32(opts, "batchSize", -1, batch);
	bson_append_document_begin(opts, "readConcern", -1, &sub);
	bson_append_utf8(&sub, "level", -1, "majority", -1);
	bson_append_timestamp(&sub, "afterClusterTime", -1,
						  (uint32_t) (snap->at >> 32),
						  (uint32_t) (snap->at & 0xFFFFFFFF));
	bson_append_document_end(opts, &sub);
	return opts;
}

/*
 * The filter of the current phase, or NULL when the phase reads nothing
 * (then the caller moves on).
 */
static bson_t *
phase_filter(QleafSnapshot *snap)
{
	bson_t	   *filter = qleaf_bson_new_owned(snap->cxt);
	bson_t		cond;
	bson_iter_t it;
	int			bracket;

	if (snap->phase == PHASE_ALL)
		return filter;
	if (!bson_iter_init_find(&it, snap->last_id, "_id"))
		elog(ERROR, "qleaf_fdw: snapshot position without _id");
	bracket = bracket_of(bson_iter_type(&it));
	if (snap->phase == PHASE_SAME_BRACKET)
	{
		/* one value in these brackets: nothing after it */
		if (bracket == 1 || bracket == 2 || bracket == 16)
			return NULL;
		bson_append_document_begin(filter, "_id", -1, &cond);
		if (BSON_ITER_HOLDS_DOUBLE(&it) && isnan(bson_iter_double(&it)))
		{
			/* NaN sorts below every number, and $gt NaN matches none */
			bson_append_double(&cond, "$gte", -1, -get_float8_infinity());
		}
		else
			bson_append_value(&cond, "$gt", -1, bson_iter_value(&it));
		bson_append_document_end(filter, &cond);
		return filter;
	}
	else
	{
		bson_t		types;
		int			n = 0;
		int			i;

		bson_append_document_begin(filter, "_id", -1, &cond);
		bson_append_array_begin(&cond, "$type", -1, &types);
		for (i = 0; i < (int) lengthof(brackets); i++)
			if (brackets[i].bracket > bracket && brackets[i].name != NULL)
			{
				char		key[16];

				snprintf(key, sizeof(key), "%d", n++);
				bson_append_utf8(&types, key, -1, brackets[i].name, -1);
			}
		bson_append_array_end(&cond, &types);
		bson_append_document_end(filter, &cond);
		return n > 0 ? filter : NULL;
	}
}

/* Open the cursor of the current collection and phase; false when done. */
static bool
open_cursor(QleafSnapshot *snap, int batch)
{
	mongoc_client_t *client = qleaf_conn_client(snap->cs->conn);

	for (;;)
	{
		bson_t	   *filter;

		if (snap->collections == NIL)
			return false;
		if (snap->phase == PHASE_DONE)
		{
			snap->collections = list_delete_first(snap->collections);
			snap->phase = PHASE_ALL;
			snap->last_id = NULL;
			if (snap->collection != NULL)
			{
				mongoc_collection_destroy(snap->collection);
				snap->collection = NULL;
			}
			continue;
		}
		filter = phase_filter(snap);
		if (filter == NULL)
		{
			snap->phase = snap->phase == PHASE_SAME_BRACKET ?
				PHASE_LATER_BRACKETS : PHASE_DONE;
			continue;
		}
		if (snap->collection == NULL)
			snap->collection = mongoc_client_get_collection(client, snap->dbname,
															linitial(snap->collections));
		snap->cursor = mongoc_collection_find_with_opts(snap->collection, filter,
														find_opts(snap, batch),
														NULL);
		return true;
	}
}

/* the token's text for the _id in doc {"_id": ...} */
static void
append_id_text(StringInfo buf, const bson_t *iddoc)
{
	size_t		len;
	char	   *json = bson_as_canonical_extended_json(iddoc, &len);
	const char *prefix = "{ \"_id\" : ";
	size_t		plen = strlen(prefix);

	if (json == NULL)
		elog(ERROR, "qleaf_fdw: an _id cannot be written as Extended JSON");
	if (len > plen + 2 && strncmp(json, prefix, plen) == 0 &&
		len - plen - 2 <= TOKEN_ID_MAX)
		appendBinaryStringInfo(buf, json + plen, len - plen - 2);
	else
	{
		char		hex[33];
		const char *errstr = NULL;

		if (!pg_md5_hash(json, len, hex, &errstr))
		{
			bson_free(json);
			elog(ERROR, "qleaf_fdw: MD5 of an _id failed: %s", errstr);
		}
		appendStringInfo(buf, "md5:%s", hex);
	}
	bson_free(json);
}

int
qleaf_snapshot_next(QleafSnapshot *snap, int max, bson_t **events,
					char **tokens, MemoryContext cxt)
{
	int			n = 0;

	/* the current document's {_id}, reused; owned, so an ERROR frees it */
	bson_t	   *iddoc = qleaf_bson_new_owned(cxt);

	while (n < max)
	{
		const bson_t *doc;
		bson_iter_t it;
		bson_t	   *ev;
		bson_t		sub;
		StringInfoData tok;
		const char *coll;

		CHECK_FOR_INTERRUPTS();
		if (snap->cursor == NULL && !open_cursor(snap, max))
			break;
		if (!mongoc_cursor_next(snap->cursor, &doc))
		{
			mongoc_cursor_t *cursor = snap->cursor;

			raise_cursor_error(snap, cursor);
			snap->cursor = NULL;
			mongoc_cursor_destroy(cursor);
			snap->phase = snap->phase == PHASE_SAME_BRACKET ?
				PHASE_LATER_BRACKETS : PHASE_DONE;
			continue;
		}
		if (!bson_iter_init_find(&it, doc, "_id"))
			continue;			/* every stored document has one */
		coll = linitial(snap->collections);
		bson_reinit(iddoc);
		bson_append_iter(iddoc, "_id", -1, &it);

		initStringInfo(&tok);
		appendStringInfo(&tok, "snapshot:%u.%u:%s:",
						 (uint32) (snap->at >> 32),
						 (uint32) (snap->at & 0xFFFFFFFF), coll);
		append_id_text(&tok, iddoc);

		ev = qleaf_bson_new_owned(cxt);
		bson_append_document_begin(ev, "_id", -1, &sub);
		bson_append_utf8(&sub, "_data", -1, tok.data, tok.len);
		bson_append_document_end(ev, &sub);
		bson_append_utf8(ev, "operationType", -1, QLEAF_SNAPSHOT_OP, -1);
		bson_append_timestamp(ev, "clusterTime", -1,
							  (uint32_t) (snap->at >> 32),
							  (uint32_t) (snap->at & 0xFFFFFFFF));
		bson_append_document_begin(ev, "ns", -1, &sub);
		bson_append_utf8(&sub, "db", -1, snap->dbname, -1);
		bson_append_utf8(&sub, "coll", -1, coll, -1);
		bson_append_document_end(ev, &sub);
		bson_append_document(ev, "documentKey", -1, iddoc);
		bson_append_document(ev, "fullDocument", -1, doc);
		events[n] = ev;
		tokens[n] = MemoryContextStrdup(cxt, tok.data);
		pfree(tok.data);

		if (snap->last_id == NULL)
			snap->last_id = qleaf_bson_new_owned(snap->cxt);
		else
			bson_reinit(snap->last_id);
		bson_concat(snap->last_id, iddoc);
		n++;
	}
	return n;
}

/*
 * Save the position after last_event (ns.coll and documentKey) and count
 * n documents, in the current transaction, as the bootstrap superuser
 * (the stream's owner cannot write qleaf.stream_state).
 */
void
qleaf_snapshot_save_position(const char *stream, const bson_t *last_event,
							 int n)
{
	bson_iter_t it;
	bson_t		key;
	const uint8_t *data;
	uint32_t	len;
	char	   *json;
	Oid			types[4] = {TEXTOID, TEXTOID, TEXTOID, INT8OID};
	Datum		values[4];
	Oid			save_user;
	int			save_sec;
	int			ret;

	if (!bson_iter_init(&it, last_event) ||
		!bson_iter_find_descendant(&it, "ns.coll", &it) ||
		!BSON_ITER_HOLDS_UTF8(&it))
		elog(ERROR, "qleaf_fdw: snapshot event without ns.coll");
	values[1] = CStringGetTextDatum(bson_iter_utf8(&it, NULL));
	if (!bson_iter_init_find(&it, last_event, "documentKey") ||
		!BSON_ITER_HOLDS_DOCUMENT(&it))
		elog(ERROR, "qleaf_fdw: snapshot event without documentKey");
	bson_iter_document(&it, &len, &data);
	if (!bson_init_static(&key, data, len))
		elog(ERROR, "qleaf_fdw: snapshot event with an invalid documentKey");
	json = bson_as_canonical_extended_json(&key, NULL);
	values[0] = CStringGetTextDatum(stream);
	values[2] = CStringGetTextDatum(json);
	bson_free(json);
	values[3] = Int64GetDatum((int64) n);

	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE);
	ret = SPI_execute_with_args("UPDATE qleaf.stream_state SET "
								"snapshot_collection = $2, snapshot_last_id = $3, "
								"snapshot_documents = snapshot_documents + $4 "
								"WHERE stream = $1 AND snapshot = 'running'",
								4, types, values, NULL, false, 0);
	SetUserIdAndSecContext(save_user, save_sec);
	if (ret != SPI_OK_UPDATE || SPI_processed != 1)
		elog(ERROR, "qleaf_fdw: saving the snapshot position of stream \"%s\" failed",
			 stream);
}

/* qleaf._stream_snapshot_runtime(): progress of the running snapshots */
Datum
qleaf_stream_snapshot_runtime(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	QleafStreamShared *sh = qleaf_stream_shared;
	TimestampTz now = GetCurrentTimestamp();
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	if (sh == NULL)
		return (Datum) 0;
	LWLockAcquire(sh->lock, LW_SHARED);
	for (i = 0; i < sh->nslots; i++)
	{
		QleafStreamSlot *s = &sh->slots[i];
		Datum		values[3];
		bool		nulls[3] = {false, false, false};
		long		secs;
		int			usecs;
		double		elapsed;

		if (!s->in_use || s->snapshot_started_at == 0)
			continue;
		values[0] = CStringGetTextDatum(s->name);
		values[1] = Int64GetDatum((int64) s->snapshot_total);
		nulls[1] = s->snapshot_total == 0;
		TimestampDifference(s->snapshot_started_at, now, &secs, &usecs);
		elapsed = secs + usecs / 1000000.0;
		values[2] = Float8GetDatum(elapsed > 0 ?
								   (s->snapshot_done - s->snapshot_done_at_start) / elapsed : 0);
		nulls[2] = s->pid == 0 || s->state != QLEAF_RUN_SNAPSHOTTING;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(sh->lock);
	return (Datum) 0;
}

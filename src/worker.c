/*-------------------------------------------------------------------------
 *
 * worker.c
 *		  a stream worker: one change stream into an event table, with
 *		  NOTIFY, exactly once
 *
 * The launcher (launcher.c) starts one worker per enabled stream, with the
 * stream's shared-memory slot number as argument.  The worker connects as
 * the stream's owner, reads its definition (qleaf.streams) and position
 * (qleaf.stream_state), and opens the change stream with the owner's user
 * mapping: resumeAfter the committed token; without one, startAfter the
 * stream's start_after token or startAtOperationTime of its start
 * timestamp; without either, the server's current time, saved before the
 * stream opens so that a restart starts at the same point.
 *
 * The loop.  Events are collected outside any transaction until the batch
 * is full, the server has nothing more for now (a getMore waits up to
 * qleaf_fdw.stream_await_ms), or the batch's first event has waited
 * qleaf_fdw.stream_await_ms.  Then, in ONE transaction: a multi-row
 * INSERT of the batch into the event table (one prepared statement over
 * unnest() of one array per column, so the table's triggers fire), a
 * NOTIFY per event, and the resume token saved in qleaf.stream_state;
 * commit.  A batch with no events saves the postBatchResumeToken (at most
 * once a second) so that a quiet stream's position advances.  After any
 * crash the stream resumes from the committed token: nothing is lost and
 * nothing is stored twice.  The state update also checks that the
 * definition is the version the worker runs: after an alter, a batch read
 * under the old definition is rolled back, and the restarted worker reads
 * it again.
 *
 * Faults, per MongoDB's change streams specification.  libmongoc resumes
 * once by itself on a resumable error; when that fails too, the worker
 * stores what it has read, closes the stream and opens it again from the
 * committed token after a capped exponential backoff with jitter (0.5 s
 * doubling to 30 s).  Error 286 (the token fell off the oplog) stops the
 * stream in state history_lost; an invalidate event (drop, rename,
 * dropDatabase) is stored and stops it in state invalidated; any other
 * error stops it in state failed.  Those states persist in
 * qleaf.stream_state until qleaf.reset_stream.
 *
 * An event that cannot be stored (a trigger raises, a value does not
 * convert, the owner may not insert) fails its batch; the batch is tried
 * again, then event by event, each event three times; an event that still
 * fails stops the stream in state failed (on_error 'stop') or goes to
 * qleaf.dead_letter with its error (on_error 'dead_letter') while the
 * stream goes on.  Nothing is dropped silently.
 *
 * Privileges: the worker runs as the stream's owner, so the event table,
 * its triggers and the refreshed views see the owner's rights; only its
 * own bookkeeping (qleaf.stream_state, qleaf.dead_letter) is written as
 * the bootstrap superuser.
 *
 * Signals: SIGTERM and postmaster death end the worker within a second,
 * even while a getMore waits (connection.c gives up on pending
 * interrupts); SIGHUP reloads the configuration.  A nearly full
 * notification queue (pg_notification_queue_usage() above
 * qleaf_fdw.notify_queue_limit, 0.5 by default) makes the worker wait
 * before its next batch rather than fail a commit.
 *
 * Resources: the change stream and its connection live in stream_cxt,
 * whose reset callback frees the libmongoc objects; events of a batch
 * live in batch_cxt, reset after every batch.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "qleaf_fdw.h"
#include "changes.h"
#include "snapshot.h"
#include "stream.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* the largest NOTIFY payload PostgreSQL takes, terminator included */
#define NOTIFY_PAYLOAD_LIMIT	8000
/* tries of a batch, then of each event, before on_error applies */
#define BATCH_TRIES				2
#define EVENT_TRIES				3
/* backoff after a resumable error */
#define BACKOFF_MIN_MS			500
#define BACKOFF_MAX_MS			30000
/* a quiet stream saves its position at most this often */
#define TOKEN_SAVE_MS			1000
/* rows deleted per retention statement, statements per pass */
#define RETENTION_ROWS			1000
#define RETENTION_ROUNDS		10
#define RETENTION_EVERY_MS		10000

int			qleaf_stream_await_ms = 50;
double		qleaf_notify_queue_limit = 0.5;

/* the event columns the worker fills, with their event fields */
#define N_EVENT_COLS 13
static const char *const event_cols[N_EVENT_COLS + 1] = {
	"resume_token", "operation_type", "database", "collection",
	"document_key", "full_document", "full_document_before_change",
	"update_description", "cluster_time", "cluster_timestamp", "wall_time",
	"txn_number", "lsid", NULL
};

typedef struct StreamDef
{
	char	   *name;
	Oid			owner;
	int			version;
	char	   *server;
	char	   *database;
	char	   *collection;		/* NULL: the whole database */
	char	   *pipeline;		/* where_stages || pipeline, jsonb text, or NULL */
	char	   *full_document;
	char	   *before_change;
	char	   *channel;		/* NULL: no NOTIFY */
	Oid			event_table;
	char	   *event_table_name;	/* quoted, qualified */
	char	   *payload;
	int			batch_size;
	bool		dead_letter;	/* on_error 'dead_letter' */
	List	   *refresh_views;	/* Oids */
	int64		refresh_ms;
	char	   *retention;		/* interval text, or NULL */

	/* the committed position */
	char	   *token;			/* NULL: none yet */
	char	   *start_after;
	bool		has_start;
	uint64		start_ts;
	char	   *snapshot;		/* its state, NULL: no snapshot */
} StreamDef;

static QleafStreamSlot *slot;
static StreamDef def;
static MemoryContext worker_cxt;
static MemoryContext stream_cxt;	/* the open change stream */
static MemoryContext batch_cxt;		/* the events of one batch */
static QleafChangeStream *cs = NULL;
static QleafEventConv conv;
static Oid	col_types[N_EVENT_COLS];
static SPIPlanPtr insert_plan = NULL;
static char *insert_sql;
static char *what;				/* error context */
static int	backoff_attempt = 0;
static TimestampTz last_token_save = 0;
static TimestampTz last_refresh = 0;
static bool refresh_pending = false;
static TimestampTz last_retention = 0;

/* A batch of events, copied out of libmongoc's buffers. */
typedef struct Batch
{
	int			n;
	int			cap;
	bson_t	  **events;
	char	  **tokens;			/* each event's _id._data */
	char	   *token;			/* the stream's token after the batch */
	bool		invalidated;	/* the last event is an invalidate */
	bool		snapshot;		/* documents of the snapshot (snapshot.c) */
	bool		failed;
	bson_error_t error;
	bson_t	   *error_reply;
	TimestampTz received_at;
} Batch;

/* ----------------------------------------------------------------
 *		Small helpers
 * ----------------------------------------------------------------
 */

static void
set_run_state(QleafStreamRunState state)
{
	LWLockAcquire(qleaf_stream_shared->lock, LW_EXCLUSIVE);
	slot->state = state;
	if (state == QLEAF_RUN_RUNNING)
		slot->failures = 0;
	LWLockRelease(qleaf_stream_shared->lock);
}

static void
worker_exit(int code, Datum arg)
{
	if (slot == NULL)
		return;
	LWLockAcquire(qleaf_stream_shared->lock, LW_EXCLUSIVE);
	if (slot->pid == MyProcPid)
		slot->pid = 0;
	LWLockRelease(qleaf_stream_shared->lock);
	qleaf_stream_wake_launcher();
}

/* Sleep ms on the latch; SIGTERM and postmaster death end the worker. */
static void
nap(long ms)
{
	TimestampTz end = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);

	for (;;)
	{
		long		secs;
		int			usecs;

		TimestampDifference(GetCurrentTimestamp(), end, &secs, &usecs);
		if (secs == 0 && usecs == 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 secs * 1000 + usecs / 1000 + 1, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
}

static void
backoff(void)
{
	double		ms = BACKOFF_MIN_MS * pow(2.0, Min(backoff_attempt, 10));

	ms = Min(ms, BACKOFF_MAX_MS);
	ms *= 0.5 + pg_prng_double(&pg_global_prng_state) / 2;
	backoff_attempt++;
	ereport(DEBUG1,
			(errmsg("stream \"%s\" tries again in %ld ms (attempt %d)",
					def.name, (long) ms, backoff_attempt)));
	nap((long) ms);
}

static void
begin_xact(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

static void
commit_xact(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * Run sql as the bootstrap superuser (the worker's bookkeeping tables are
 * not the owner's to write).  Returns SPI_processed.
 */
static uint64
exec_as_superuser(const char *sql, int nargs, Oid *types, Datum *values,
				  const char *nulls, int expect)
{
	Oid			save_user;
	int			save_sec;
	int			ret;

	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE);
	ret = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
	SetUserIdAndSecContext(save_user, save_sec);
	if (ret != expect)
		elog(ERROR, "qleaf_fdw: stream bookkeeping failed: %s",
			 SPI_result_code_string(ret));
	return SPI_processed;
}

/* Put the stream in a state that needs a reset, and end the worker. */
static void
stop_in_state(const char *state, const char *error)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3];

	ereport(LOG,
			(errmsg("stream \"%s\" stopped in state %s: %s",
					def.name, state, error)));
	qleaf_stream_set_error(slot, error);
	values[0] = CStringGetTextDatum(def.name);
	values[1] = CStringGetTextDatum(state);
	values[2] = CStringGetTextDatum(error);
	begin_xact("saving the stream's state");
	exec_as_superuser("UPDATE qleaf.stream_state SET state = $2, "
					  "last_error = $3, last_error_at = now(), "
					  "updated_at = now() WHERE stream = $1",
					  3, types, values, NULL, SPI_OK_UPDATE);
	commit_xact();
	proc_exit(0);
}

/* An ErrorData as one line: message, detail. */
static char *
error_text(ErrorData *edata)
{
	if (edata->detail)
		return psprintf("%s: %s", edata->message, edata->detail);
	return pstrdup(edata->message);
}

/*
 * In a PG_CATCH block: the error, copied into cxt, with the error state
 * flushed and the transaction aborted.
 */
static ErrorData *
catch_error(MemoryContext cxt)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	AbortCurrentTransaction();
	return edata;
}

/* In a PG_CATCH block of a maintenance task: log the error and keep it. */
static void
maintenance_failed(const char *what)
{
	ErrorData  *edata = catch_error(batch_cxt);

	ereport(LOG,
			(errmsg("stream \"%s\" could not %s: %s",
					def.name, what, error_text(edata))));
	qleaf_stream_set_error(slot, error_text(edata));
	FreeErrorData(edata);
}

/*
 * In a PG_CATCH block of opening the change stream or reading the
 * snapshot: log the error and keep it.  Returns its text when retrying
 * cannot help (bad credentials, privileges, missing objects or bad
 * values: the stream fails), else NULL.
 */
static char *
open_failed(const char *what)
{
	ErrorData  *edata = catch_error(worker_cxt);
	char	   *text = error_text(edata);
	char	   *fatal = NULL;

	ereport(LOG,
			(errmsg("stream \"%s\" cannot %s: %s", def.name, what, text)));
	qleaf_stream_set_error(slot, text);
	switch (ERRCODE_TO_CATEGORY(edata->sqlerrcode))
	{
		case ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION:
		case ERRCODE_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION:
		case ERRCODE_DATA_EXCEPTION:
			fatal = text;
			break;
		default:
			break;
	}
	FreeErrorData(edata);
	return fatal;
}

/* ----------------------------------------------------------------
 *		The definition
 * ----------------------------------------------------------------
 */

static char *
get_text(HeapTuple tup, TupleDesc desc, const char *col)
{
	int			n = SPI_fnumber(desc, col);
	char	   *v = SPI_getvalue(tup, desc, n);

	return v ? MemoryContextStrdup(worker_cxt, v) : NULL;
}

/* Read the definition and position; end the worker if it must not run. */
static void
load_definition(void)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	HeapTuple	tup;
	TupleDesc	desc;
	char	   *s;
	bool		isnull;
	bool		run;
	int			k;
	StringInfoData sql;
	MemoryContext oldcxt;
	char	   *bad = NULL;

	values[0] = CStringGetTextDatum(slot->name);
	begin_xact("reading the stream's definition");
	exec_as_superuser("SELECT s.*, s.owner::oid AS owner_oid, "
					  "CASE WHEN s.where_stages IS NOT NULL OR s.pipeline IS NOT NULL THEN "
					  "  coalesce(s.where_stages, '[]') || coalesce(s.pipeline, '[]') END AS stages, "
					  "s.event_table::oid AS event_table_oid, "
					  "s.event_table::text AS event_table_name, "
					  "(extract(epoch FROM s.refresh_interval) * 1000)::bigint AS refresh_ms, "
					  "st.resume_token, st.start_timestamp, st.start_after, "
					  "st.snapshot AS snapshot_state, "
					  "s.enabled AND st.state = 'ok' AS run, "
					  "(SELECT array_agg(v::oid) FROM unnest(s.refresh_views) v) AS views, "
					  "coalesce(s.database, (SELECT option_value FROM pg_options_to_table(fs.srvoptions) "
					  "  WHERE option_name = 'database')) AS db "
					  "FROM qleaf.streams s "
					  "JOIN qleaf.stream_state st ON st.stream = s.name "
					  "LEFT JOIN pg_foreign_server fs ON fs.srvname = s.server "
					  "WHERE s.name = $1",
					  1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
	{
		commit_xact();
		proc_exit(0);
	}
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	run = DatumGetBool(SPI_getbinval(tup, desc, SPI_fnumber(desc, "run"), &isnull));
	if (!run)
	{
		commit_xact();
		proc_exit(0);
	}

	oldcxt = MemoryContextSwitchTo(worker_cxt);
	def.name = pstrdup(slot->name);
	def.owner = DatumGetObjectId(SPI_getbinval(tup, desc, SPI_fnumber(desc, "owner_oid"), &isnull));
	def.version = DatumGetInt32(SPI_getbinval(tup, desc, SPI_fnumber(desc, "version"), &isnull));
	def.server = get_text(tup, desc, "server");
	def.database = get_text(tup, desc, "db");
	def.collection = get_text(tup, desc, "collection");
	def.pipeline = get_text(tup, desc, "stages");
	def.full_document = get_text(tup, desc, "full_document");
	def.before_change = get_text(tup, desc, "full_document_before_change");
	def.channel = get_text(tup, desc, "channel");
	def.event_table = DatumGetObjectId(SPI_getbinval(tup, desc, SPI_fnumber(desc, "event_table_oid"), &isnull));
	def.event_table_name = get_text(tup, desc, "event_table_name");
	def.payload = get_text(tup, desc, "payload");
	def.batch_size = DatumGetInt32(SPI_getbinval(tup, desc, SPI_fnumber(desc, "batch_size"), &isnull));
	s = get_text(tup, desc, "on_error");
	def.dead_letter = s && strcmp(s, "dead_letter") == 0;
	def.refresh_ms = DatumGetInt64(SPI_getbinval(tup, desc, SPI_fnumber(desc, "refresh_ms"), &isnull));
	def.retention = get_text(tup, desc, "retention");
	def.token = get_text(tup, desc, "resume_token");
	def.start_after = get_text(tup, desc, "start_after");
	def.snapshot = get_text(tup, desc, "snapshot_state");
	{
		Datum		d = SPI_getbinval(tup, desc, SPI_fnumber(desc, "start_timestamp"), &isnull);

		def.has_start = !isnull;
		def.start_ts = isnull ? 0 : (uint64) DatumGetInt64(d);
	}
	{
		Datum		d = SPI_getbinval(tup, desc, SPI_fnumber(desc, "views"), &isnull);

		def.refresh_views = NIL;
		if (!isnull)
		{
			ArrayType  *arr = DatumGetArrayTypeP(d);
			Datum	   *elems;
			int			nelems;
			int			i;

			deconstruct_array(arr, OIDOID, sizeof(Oid), true, TYPALIGN_INT,
							  &elems, NULL, &nelems);
			for (i = 0; i < nelems; i++)
				def.refresh_views = lappend_oid(def.refresh_views,
												DatumGetObjectId(elems[i]));
		}
	}
	what = def.collection ?
		psprintf("while reading the change stream of collection \"%s.%s\" for stream \"%s\"",
				 def.database ? def.database : "", def.collection, def.name) :
		psprintf("while reading the change stream of database \"%s\" for stream \"%s\"",
				 def.database ? def.database : "", def.name);

	/* the event table's columns: conversions and the INSERT */
	qleaf_event_conv_init(&conv, N_EVENT_COLS, N_EVENT_COLS);
	initStringInfo(&sql);
	appendStringInfo(&sql, "INSERT INTO %s (stream", def.event_table_name);
	for (k = 0; event_cols[k] != NULL; k++)
		appendStringInfo(&sql, ", %s", event_cols[k]);
	appendStringInfoString(&sql, ", received_at) SELECT $1");
	for (k = 0; event_cols[k] != NULL; k++)
		appendStringInfo(&sql, ", c%d", k);
	appendStringInfo(&sql, ", $%d FROM unnest(", N_EVENT_COLS + 2);
	for (k = 0; event_cols[k] != NULL; k++)
	{
		AttrNumber	att = get_attnum(def.event_table, event_cols[k]);
		Oid			typid;
		int32		typmod;
		Oid			collid;

		if (att == InvalidAttrNumber)
		{
			bad = psprintf("event table %s has no column \"%s\"",
						   def.event_table_name, event_cols[k]);
			break;
		}
		get_atttypetypmodcoll(def.event_table, att, &typid, &typmod, &collid);
		col_types[k] = typid;
		qleaf_event_conv_column(&conv, k, k, typid, typmod, event_cols[k],
								qleaf_changes_standard_field(event_cols[k]),
								false);
		appendStringInfo(&sql, "%s$%d::%s[]", k > 0 ? ", " : "", k + 2,
						 format_type_be(typid));
	}
	appendStringInfoString(&sql, ") WITH ORDINALITY AS u(");
	for (k = 0; event_cols[k] != NULL; k++)
		appendStringInfo(&sql, "c%d, ", k);
	appendStringInfoString(&sql, "ord) ORDER BY ord RETURNING id");
	insert_sql = sql.data;
	MemoryContextSwitchTo(oldcxt);
	commit_xact();
	if (bad)
		stop_in_state("failed", bad);
}

/* ----------------------------------------------------------------
 *		Pipelines: jsonb to BSON
 * ----------------------------------------------------------------
 */

static void jsonb_append(bson_t *b, const char *key, JsonbValue *v);

/*
 * A one-key object in MongoDB's Extended JSON for a BSON type that JSON
 * lacks: {"$oid": hex}, {"$date": milliseconds}, {"$numberLong": "n"},
 * {"$numberDecimal": "x"}.  Appends it and returns true, else false.
 */
static bool
append_extended(bson_t *b, const char *key, JsonbContainer *obj)
{
	JsonbValue *v;

	if (JsonContainerSize(obj) != 1)
		return false;
	if ((v = getKeyJsonValueFromContainer(obj, "$oid", 4, NULL)) != NULL &&
		v->type == jbvString && v->val.string.len == 24)
	{
		char		hex[25];
		bson_oid_t	oid;

		memcpy(hex, v->val.string.val, 24);
		hex[24] = '\0';
		if (!bson_oid_is_valid(hex, 24))
			return false;
		bson_oid_init_from_string(&oid, hex);
		bson_append_oid(b, key, -1, &oid);
		return true;
	}
	if ((v = getKeyJsonValueFromContainer(obj, "$date", 5, NULL)) != NULL &&
		v->type == jbvNumeric)
	{
		bson_append_date_time(b, key, -1,
							  DatumGetInt64(DirectFunctionCall1(numeric_int8,
																NumericGetDatum(v->val.numeric))));
		return true;
	}
	if ((v = getKeyJsonValueFromContainer(obj, "$numberLong", 11, NULL)) != NULL &&
		v->type == jbvString)
	{
		char	   *s = pnstrdup(v->val.string.val, v->val.string.len);

		bson_append_int64(b, key, -1, pg_strtoint64(s));
		return true;
	}
	if ((v = getKeyJsonValueFromContainer(obj, "$numberDecimal", 14, NULL)) != NULL &&
		v->type == jbvString)
	{
		char	   *s = pnstrdup(v->val.string.val, v->val.string.len);
		bson_decimal128_t dec;

		if (!bson_decimal128_from_string(s, &dec))
			return false;
		bson_append_decimal128(b, key, -1, &dec);
		return true;
	}
	return false;
}

/* The elements (array) or members (object) of container into b. */
static void
jsonb_append_container(bson_t *b, JsonbContainer *container)
{
	JsonbIterator *it = JsonbIteratorInit(container);
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			n = 0;
	char	   *key = NULL;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
			jsonb_append(b, key, &v);
		else if (tok == WJB_ELEM)
		{
			char		idx[16];

			snprintf(idx, sizeof(idx), "%d", n++);
			jsonb_append(b, idx, &v);
		}
	}
}

static void
jsonb_append(bson_t *b, const char *key, JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			bson_append_null(b, key, -1);
			break;
		case jbvBool:
			bson_append_bool(b, key, -1, v->val.boolean);
			break;
		case jbvString:
			bson_append_utf8(b, key, -1, v->val.string.val, v->val.string.len);
			break;
		case jbvNumeric:
			{
				Numeric		num = v->val.numeric;
				char	   *s = DatumGetCString(DirectFunctionCall1(numeric_out,
																	NumericGetDatum(num)));

				/* integers as int32 / int64, like a JSON parser's */
				if (strspn(s + (s[0] == '-'), "0123456789") == strlen(s + (s[0] == '-')) &&
					strlen(s) < 19)
				{
					int64		i = pg_strtoint64(s);

					if (i >= PG_INT32_MIN && i <= PG_INT32_MAX)
						bson_append_int32(b, key, -1, (int32) i);
					else
						bson_append_int64(b, key, -1, i);
				}
				else
					bson_append_double(b, key, -1, strtod(s, NULL));
				break;
			}
		case jbvBinary:
			{
				JsonbContainer *c = v->val.binary.data;
				bson_t		child;

				if (JsonContainerIsArray(c))
				{
					bson_append_array_begin(b, key, -1, &child);
					jsonb_append_container(&child, c);
					bson_append_array_end(b, &child);
				}
				else if (!append_extended(b, key, c))
				{
					bson_append_document_begin(b, key, -1, &child);
					jsonb_append_container(&child, c);
					bson_append_document_end(b, &child);
				}
				break;
			}
		default:
			elog(ERROR, "qleaf_fdw: unexpected jsonb value type %d", (int) v->type);
	}
}

/* ----------------------------------------------------------------
 *		The change stream
 * ----------------------------------------------------------------
 */

static void
append_token(bson_t *opts, const char *key, const char *data)
{
	bson_t		t;

	bson_append_document_begin(opts, key, -1, &t);
	bson_append_utf8(&t, "_data", -1, data, -1);
	bson_append_document_end(opts, &t);
}

/* Save the start point chosen at the first start ("now"). */
static void
save_start(uint64 ts)
{
	Oid			types[2] = {TEXTOID, INT8OID};
	Datum		values[2];

	values[0] = CStringGetTextDatum(def.name);
	values[1] = Int64GetDatum((int64) ts);
	exec_as_superuser("UPDATE qleaf.stream_state SET start_timestamp = $2, "
					  "updated_at = now() WHERE stream = $1 "
					  "AND resume_token IS NULL AND start_timestamp IS NULL",
					  2, types, values, NULL, SPI_OK_UPDATE);
}

/*
 * Open the change stream from the committed position.  Returns false
 * (with the error recorded) when it cannot: the caller backs off.
 */
static bool
open_stream(void)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	volatile bool ok = true;
	char	   *volatile fatal = NULL;

	PG_TRY();
	{
		ForeignServer *server;
		UserMapping *user;
		bson_t	   *opts;
		bson_t	   *pipeline;

		begin_xact("opening the change stream");
		server = GetForeignServerByName(def.server, false);
		user = GetUserMapping(def.owner, server->serverid);
		if (def.database == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
					 errmsg("stream \"%s\" names no database", def.name),
					 errhint("Set the stream's option \"database\" or the server's option \"database\".")));
		cs = qleaf_change_stream_connect(user, server, stream_cxt);
		MemoryContextSwitchTo(stream_cxt);
		opts = qleaf_bson_new_owned(stream_cxt);
		pipeline = qleaf_bson_new_owned(stream_cxt);
		if (strcmp(def.full_document, "default") != 0)
			bson_append_utf8(opts, "fullDocument", -1, def.full_document, -1);
		if (strcmp(def.before_change, "off") != 0)
			bson_append_utf8(opts, "fullDocumentBeforeChange", -1,
							 def.before_change, -1);
		bson_append_int64(opts, "maxAwaitTimeMS", -1, qleaf_stream_await_ms);
		bson_append_int32(opts, "batchSize", -1, def.batch_size);
		if (def.token != NULL)
			append_token(opts, "resumeAfter", def.token);
		else if (def.start_after != NULL)
			append_token(opts, "startAfter", def.start_after);
		else
		{
			if (!def.has_start)
			{
				/*
				 * "now": the server's operation time is that of the last
				 * write it applied, and startAtOperationTime includes its
				 * time, so start just after it: nothing written before the
				 * stream's start is delivered.  Adding one to the 64-bit
				 * Timestamp carries the increment into the seconds.
				 */
				def.start_ts = qleaf_change_stream_server_time(cs->conn, what) + 1;
				save_start(def.start_ts);
				def.has_start = true;
			}
			bson_append_timestamp(opts, "startAtOperationTime", -1,
								  (uint32_t) (def.start_ts >> 32),
								  (uint32_t) (def.start_ts & 0xFFFFFFFF));
		}
		if (def.pipeline != NULL)
		{
			Jsonb	   *stages = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
																	CStringGetDatum(def.pipeline)));

			jsonb_append_container(pipeline, &stages->root);
		}
		qleaf_change_stream_watch(cs, def.database, def.collection, pipeline,
								  opts);
		MemoryContextSwitchTo(oldcxt);
		commit_xact();
	}
	PG_CATCH();
	{
		fatal = open_failed("open its change stream");
		cs = NULL;
		MemoryContextReset(stream_cxt);
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	if (fatal != NULL)
		stop_in_state("failed", fatal);
	return ok;
}

static void
close_stream(void)
{
	cs = NULL;
	MemoryContextReset(stream_cxt);
}

/* the _data of a resume token document, or NULL */
static char *
token_data(const bson_t *token)
{
	bson_iter_t it;

	if (token != NULL && bson_iter_init_find(&it, token, "_data") &&
		BSON_ITER_HOLDS_UTF8(&it))
		return pstrdup(bson_iter_utf8(&it, NULL));
	return NULL;
}

static char *
event_token(const bson_t *ev)
{
	bson_iter_t it;
	bson_iter_t sub;

	if (bson_iter_init_find(&it, ev, "_id") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
		bson_iter_recurse(&it, &sub) && bson_iter_find(&sub, "_data") &&
		BSON_ITER_HOLDS_UTF8(&sub))
		return pstrdup(bson_iter_utf8(&sub, NULL));
	return NULL;
}

static bool
event_is(const bson_t *ev, const char *op)
{
	bson_iter_t it;

	return bson_iter_init_find(&it, ev, "operationType") &&
		BSON_ITER_HOLDS_UTF8(&it) &&
		strcmp(bson_iter_utf8(&it, NULL), op) == 0;
}

/*
 * Read events until the batch is full, the server has none for now, the
 * stream is invalidated, or it fails.  Outside any transaction.
 */
static void
collect_batch(Batch *b)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(batch_cxt);

	memset(b, 0, sizeof(Batch));
	b->cap = Min(def.batch_size, 1024);
	b->events = palloc(sizeof(bson_t *) * b->cap);
	b->tokens = palloc(sizeof(char *) * b->cap);
	pgstat_report_activity(STATE_RUNNING, "waiting for change events");
	for (;;)
	{
		const bson_t *doc;
		const bson_t *reply;
		bson_t	   *copy;

		CHECK_FOR_INTERRUPTS();
		/* a getMore waits at most qleaf_fdw.stream_await_ms */
		if (!PostmasterIsAlive())
			proc_exit(1);
		if (!mongoc_change_stream_next(cs->stream, &doc))
		{
			if (mongoc_change_stream_error_document(cs->stream, &b->error, &reply))
			{
				b->failed = true;
				b->error_reply = qleaf_bson_new_owned(batch_cxt);
				if (reply)
					bson_concat(b->error_reply, reply);
				/* a pending SIGTERM or cancel, not the server's error */
				CHECK_FOR_INTERRUPTS();
			}
			break;
		}
		if (b->n == b->cap)
		{
			b->cap *= 2;
			b->events = repalloc(b->events, sizeof(bson_t *) * b->cap);
			b->tokens = repalloc(b->tokens, sizeof(char *) * b->cap);
		}
		if (b->n == 0)
			b->received_at = GetCurrentTimestamp();
		copy = qleaf_bson_new_owned(batch_cxt);
		bson_concat(copy, doc);
		b->events[b->n] = copy;
		b->tokens[b->n] = event_token(copy);
		b->n++;
		if (event_is(copy, "invalidate"))
		{
			b->invalidated = true;
			break;
		}
		if (b->n >= def.batch_size)
			break;

		/*
		 * Under a steady flow every getMore brings events, so the batch
		 * would wait to fill: close it once its first event has waited
		 * qleaf_fdw.stream_await_ms.  Events libmongoc already holds are
		 * not lost: the next batch takes them, and the resume token is
		 * this batch's last event's.
		 */
		if (TimestampDifferenceExceeds(b->received_at, GetCurrentTimestamp(),
									   qleaf_stream_await_ms))
			break;
	}
	b->token = token_data(mongoc_change_stream_get_resume_token(cs->stream));
	if (b->token == NULL && b->n > 0)
		b->token = b->tokens[b->n - 1];
	MemoryContextSwitchTo(oldcxt);
}

/* ----------------------------------------------------------------
 *		Storing
 * ----------------------------------------------------------------
 */

/* The NOTIFY payload of an event stored with id. */
static char *
event_payload(const bson_t *ev, int64 id)
{
	StringInfoData buf;
	bson_iter_t it;
	bool		ref = strcmp(def.payload, "reference") == 0;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"stream\": ");
	escape_json(&buf, def.name);
	appendStringInfo(&buf, ", \"id\": " INT64_FORMAT, id);
	if (!ref)
	{
		int			len_ref = buf.len;
		static const char *const fields[][2] = {
			{"op", "operationType"}, {"db", "ns.db"}, {"coll", "ns.coll"},
			{"key", "documentKey"}, {"doc", "fullDocument"}
		};
		int			i;
		int			nfields = strcmp(def.payload, "key") == 0 ? 4 : 5;

		for (i = 0; i < nfields; i++)
		{
			bson_iter_t desc;

			appendStringInfo(&buf, ", \"%s\": ", fields[i][0]);
			if (bson_iter_init(&it, ev) &&
				bson_iter_find_descendant(&it, fields[i][1], &desc))
				qleaf_append_json_value(&buf, &desc);
			else
				appendStringInfoString(&buf, "null");
		}
		if (buf.len + 1 >= NOTIFY_PAYLOAD_LIMIT)
			buf.len = len_ref;	/* too big: the reference form */
	}
	appendStringInfoChar(&buf, '}');
	buf.data[buf.len] = '\0';
	return buf.data;
}

static Datum
make_array(Datum *elems, bool *nulls, int n, Oid typid)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1];
	int			lbs[1];

	get_typlenbyvalalign(typid, &typlen, &typbyval, &typalign);
	dims[0] = n;
	lbs[0] = 1;
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs,
											  typid, typlen, typbyval,
											  typalign));
}

/*
 * Store events [from, to) of b and save token, in one transaction, with
 * state (NULL: unchanged) as the stream's new state.  Raises an ERROR on
 * failure (the caller catches it).  Returns false when the definition
 * changed under the worker (the transaction is rolled back).
 */
static bool
store_range(Batch *b, int from, int to, const char *token, const char *state,
			const char *dead_error)
{
	int			n = to - from;
	Datum		args[N_EVENT_COLS + 2];
	char		argnulls[N_EVENT_COLS + 2];
	Datum	   *colvals[N_EVENT_COLS];
	bool	   *colnulls[N_EVENT_COLS];
	Datum		rowvals[N_EVENT_COLS];
	bool		rownulls[N_EVENT_COLS];
	int64	   *ids = NULL;
	int			i;
	int			k;
	uint64		last_ts = 0;
	bool		has_ts = false;
	Oid			stypes[6] = {TEXTOID, TEXTOID, TIMESTAMPTZOID, INT8OID, INT4OID, TEXTOID};
	Datum		svalues[6];
	char		snulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};

	begin_xact("storing change events");
	if (n > 0 && dead_error == NULL)
	{
		int			ret;

		if (insert_plan == NULL)
		{
			Oid			argtypes[N_EVENT_COLS + 2];
			SPIPlanPtr	plan;

			argtypes[0] = TEXTOID;
			for (k = 0; k < N_EVENT_COLS; k++)
			{
				argtypes[k + 1] = get_array_type(col_types[k]);
				if (!OidIsValid(argtypes[k + 1]))
					ereport(ERROR,
							(errcode(ERRCODE_DATATYPE_MISMATCH),
							 errmsg("column \"%s\" of event table %s has a type without arrays",
									event_cols[k], def.event_table_name)));
			}
			argtypes[N_EVENT_COLS + 1] = TIMESTAMPTZOID;
			plan = SPI_prepare(insert_sql, N_EVENT_COLS + 2, argtypes);
			if (plan == NULL)
				elog(ERROR, "qleaf_fdw: preparing the event INSERT failed: %s",
					 SPI_result_code_string(SPI_result));
			SPI_keepplan(plan);
			insert_plan = plan;
		}
		for (k = 0; k < N_EVENT_COLS; k++)
		{
			colvals[k] = palloc(sizeof(Datum) * n);
			colnulls[k] = palloc(sizeof(bool) * n);
		}
		for (i = 0; i < n; i++)
		{
			qleaf_event_to_row(&conv, b->events[from + i], true, rowvals,
							   rownulls, what);
			for (k = 0; k < N_EVENT_COLS; k++)
			{
				colvals[k][i] = rowvals[k];
				colnulls[k][i] = rownulls[k];
			}
		}
		memset(argnulls, ' ', sizeof(argnulls));
		args[0] = CStringGetTextDatum(def.name);
		for (k = 0; k < N_EVENT_COLS; k++)
			args[k + 1] = make_array(colvals[k], colnulls[k], n, col_types[k]);
		args[N_EVENT_COLS + 1] = TimestampTzGetDatum(b->received_at);
		ret = SPI_execute_plan(insert_plan, args, argnulls, false, 0);
		if (ret != SPI_OK_INSERT_RETURNING || SPI_processed != (uint64) n)
			elog(ERROR, "qleaf_fdw: the event INSERT stored " UINT64_FORMAT " of %d events",
				 SPI_processed, n);
		ids = palloc(sizeof(int64) * n);
		for (i = 0; i < n; i++)
		{
			bool		isnull;

			ids[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
												 SPI_tuptable->tupdesc, 1,
												 &isnull));
		}
		if (def.channel != NULL)
			for (i = 0; i < n; i++)
				Async_Notify(def.channel, event_payload(b->events[from + i], ids[i]));
	}
	else if (n > 0)
	{
		/* one event to the dead-letter table */
		Oid			dtypes[4] = {TEXTOID, TEXTOID, JSONBOID, TEXTOID};
		Datum		dvalues[4];

		dvalues[0] = CStringGetTextDatum(def.name);
		dvalues[1] = CStringGetTextDatum(b->tokens[from] ? b->tokens[from] : "");
		dvalues[2] = qleaf_bson_document_to_jsonb(b->events[from]);
		dvalues[3] = CStringGetTextDatum(dead_error);
		exec_as_superuser("INSERT INTO qleaf.dead_letter (stream, resume_token, event, error) "
						  "VALUES ($1, $2, $3, $4)", 4, dtypes, dvalues, NULL,
						  SPI_OK_INSERT);
	}

	if (b->snapshot && n > 0)
		qleaf_snapshot_save_position(def.name, b->events[to - 1], n);

	/* the last event's cluster time */
	if (n > 0)
	{
		bson_iter_t it;

		if (bson_iter_init_find(&it, b->events[to - 1], "clusterTime") &&
			BSON_ITER_HOLDS_TIMESTAMP(&it))
		{
			uint32_t	t,
						inc;

			bson_iter_timestamp(&it, &t, &inc);
			last_ts = ((uint64) t << 32) | inc;
			has_ts = true;
		}
	}
	svalues[0] = CStringGetTextDatum(def.name);
	svalues[1] = token ? CStringGetTextDatum(token) : (Datum) 0;
	snulls[1] = token ? ' ' : 'n';
	svalues[2] = TimestampTzGetDatum(time_t_to_timestamptz((pg_time_t) (last_ts >> 32)));
	svalues[3] = Int64GetDatum((int64) last_ts);
	snulls[2] = snulls[3] = has_ts ? ' ' : 'n';
	svalues[4] = Int32GetDatum(def.version);
	svalues[5] = state ? CStringGetTextDatum(state) : (Datum) 0;
	snulls[5] = state ? ' ' : 'n';
	if (exec_as_superuser("UPDATE qleaf.stream_state st SET "
						  "resume_token = coalesce($2, st.resume_token), "
						  "last_event_cluster_time = coalesce($3, st.last_event_cluster_time), "
						  "last_event_cluster_timestamp = coalesce($4, st.last_event_cluster_timestamp), "
						  "state = coalesce($6, st.state), "
						  "last_error = CASE WHEN $6 IS NULL THEN st.last_error "
						  "  ELSE 'the change stream was invalidated (its collection or database was dropped or renamed)' END, "
						  "last_error_at = CASE WHEN $6 IS NULL THEN st.last_error_at ELSE now() END, "
						  "updated_at = now() "
						  "FROM qleaf.streams s WHERE st.stream = $1 AND s.name = st.stream "
						  "AND s.version = $5 AND s.enabled AND st.state = 'ok'",
						  6, stypes, svalues, snulls, SPI_OK_UPDATE) == 0)
	{
		/* altered, paused, dropped or reset meanwhile: not this batch */
		SPI_finish();
		PopActiveSnapshot();
		AbortCurrentTransaction();
		return false;
	}
	commit_xact();

	LWLockAcquire(qleaf_stream_shared->lock, LW_EXCLUSIVE);
	slot->events_total += n;
	slot->batches_total++;
	slot->last_batch_at = GetCurrentTimestamp();
	slot->state = b->snapshot ? QLEAF_RUN_SNAPSHOTTING : QLEAF_RUN_RUNNING;
	slot->failures = 0;
	LWLockRelease(qleaf_stream_shared->lock);
	if (token && (def.token == NULL || strcmp(token, def.token) != 0))
	{
		char	   *prev = def.token;

		def.token = MemoryContextStrdup(worker_cxt, token);
		if (prev)
			pfree(prev);
	}
	if (n > 0 && def.refresh_views != NIL)
		refresh_pending = true;
	return true;
}

/*
 * Try to store events [from, to); on failure return the error's text
 * (and count it), else NULL.  Ends the worker when the definition changed.
 */
static char *
try_store(Batch *b, int from, int to, const char *token, const char *state,
		  const char *dead_error)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	char	   *volatile err = NULL;
	volatile bool current = true;

	PG_TRY();
	{
		current = store_range(b, from, to, token, state, dead_error);
	}
	PG_CATCH();
	{
		ErrorData  *edata = catch_error(batch_cxt);

		err = error_text(edata);
		FreeErrorData(edata);
		ereport(LOG,
				(errmsg("stream \"%s\" could not store %d event(s): %s",
						def.name, to - from, err)));
		qleaf_stream_set_error(slot, err);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	if (!current)
	{
		ereport(LOG,
				(errmsg("stream \"%s\" was changed; its worker restarts", def.name)));
		proc_exit(0);
	}
	return err;
}

/*
 * Store a batch: whole, then event by event; an event that still fails
 * goes by on_error.
 */
static void
store_batch(Batch *b)
{
	const char *final_state = b->invalidated ? "invalidated" : NULL;
	char	   *err = NULL;
	int			t;
	int			i;

	for (t = 0; t < BATCH_TRIES; t++)
	{
		err = try_store(b, 0, b->n, b->token, final_state, NULL);
		if (err == NULL)
			return;
		nap(100L << t);
	}
	for (i = 0; i < b->n; i++)
	{
		/* snapshot documents save their position, not a token */
		const char *token = b->snapshot ? NULL :
			i == b->n - 1 ? b->token : b->tokens[i];
		const char *state = i == b->n - 1 ? final_state : NULL;

		for (t = 0; t < EVENT_TRIES; t++)
		{
			err = try_store(b, i, i + 1, token, state, NULL);
			if (err == NULL)
				break;
			nap(100L << t);
		}
		if (err == NULL)
			continue;
		if (!def.dead_letter)
			stop_in_state("failed",
						  psprintf("event %s could not be stored: %s",
								   b->tokens[i] ? b->tokens[i] : "?", err));
		err = try_store(b, i, i + 1, token, state, err);
		if (err != NULL)
			stop_in_state("failed",
						  psprintf("event %s could not be stored nor dead-lettered: %s",
								   b->tokens[i] ? b->tokens[i] : "?", err));
	}
}

/* ----------------------------------------------------------------
 *		Projections
 * ----------------------------------------------------------------
 */

static void
run_maintenance(void)
{
	TimestampTz now = GetCurrentTimestamp();
	MemoryContext oldcxt = CurrentMemoryContext;

	if (refresh_pending &&
		TimestampDifferenceExceeds(last_refresh, now, (int) def.refresh_ms))
	{
		refresh_pending = false;
		last_refresh = now;
		PG_TRY();
		{
			ListCell   *lc;

			begin_xact("refreshing materialized views");
			foreach(lc, def.refresh_views)
			{
				Oid			view = lfirst_oid(lc);
				char	   *name = get_rel_name(view);
				char	   *nsp;
				bool		concurrently;
				Oid			types[1] = {OIDOID};
				Datum		values[1];
				int			ret;
				bool		isnull;

				if (name == NULL)
					continue;	/* dropped */
				nsp = get_namespace_name(get_rel_namespace(view));
				values[0] = ObjectIdGetDatum(view);
				ret = SPI_execute_with_args("SELECT c.relispopulated AND EXISTS ("
											"SELECT FROM pg_index i WHERE i.indrelid = c.oid "
											"AND i.indisunique AND i.indpred IS NULL "
											"AND i.indexprs IS NULL) FROM pg_class c WHERE c.oid = $1",
											1, types, values, NULL, true, 0);
				concurrently = ret == SPI_OK_SELECT && SPI_processed == 1 &&
					DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1,
											   &isnull)) && !isnull;
				ret = SPI_execute(psprintf("REFRESH MATERIALIZED VIEW %s%s",
										   concurrently ? "CONCURRENTLY " : "",
										   quote_qualified_identifier(nsp, name)),
								  false, 0);
				if (ret != SPI_OK_UTILITY)
					elog(ERROR, "qleaf_fdw: refreshing %s failed", name);
			}
			commit_xact();
		}
		PG_CATCH();
		{
			maintenance_failed("refresh its views");
		}
		PG_END_TRY();
		MemoryContextSwitchTo(oldcxt);
	}

	if (def.retention != NULL &&
		TimestampDifferenceExceeds(last_retention, now, RETENTION_EVERY_MS))
	{
		last_retention = now;
		PG_TRY();
		{
			int			round;
			char	   *sql = psprintf("DELETE FROM %s WHERE id IN (SELECT id FROM %s "
									   "WHERE stream = $1 AND received_at < now() - $2::interval "
									   "ORDER BY id LIMIT %d)",
									   def.event_table_name, def.event_table_name,
									   RETENTION_ROWS);
			Oid			types[2] = {TEXTOID, TEXTOID};
			Datum		values[2];

			values[0] = CStringGetTextDatum(def.name);
			values[1] = CStringGetTextDatum(def.retention);
			for (round = 0; round < RETENTION_ROUNDS; round++)
			{
				int			ret;

				begin_xact("deleting events past retention");
				ret = SPI_execute_with_args(sql, 2, types, values, NULL, false, 0);
				if (ret != SPI_OK_DELETE)
					elog(ERROR, "qleaf_fdw: retention delete failed");
				if (SPI_processed < RETENTION_ROWS)
				{
					commit_xact();
					break;
				}
				commit_xact();
				CHECK_FOR_INTERRUPTS();
			}
		}
		PG_CATCH();
		{
			maintenance_failed("delete old events");
		}
		PG_END_TRY();
		MemoryContextSwitchTo(oldcxt);
	}
}

static double
notify_queue_usage(void)
{
	LOCAL_FCINFO(fcinfo, 0);

	InitFunctionCallInfoData(*fcinfo, NULL, 0, InvalidOid, NULL, NULL);
	return DatumGetFloat8(pg_notification_queue_usage(fcinfo));
}

/*
 * Wait while the notification queue is fuller than
 * qleaf_fdw.notify_queue_limit: a listener that does not read (or sits in
 * an open transaction) holds the queue's tail, and once the queue is full
 * every NOTIFY fails its commit.  Pausing costs nothing: the events wait
 * in MongoDB.  The pause shows as state waiting_for_listeners in
 * qleaf.stream_status, in pg_stat_activity, and in the log (a listener
 * that reads slowly makes the worker pause and go on again and again:
 * the log has one pause a minute, DEBUG1 the others).
 */
static void
wait_for_notify_queue(void)
{
	static TimestampTz last_logged = 0;
	double		usage = notify_queue_usage();
	TimestampTz since;
	int			elevel;
	/* running or snapshotting: what the worker goes on with */
	QleafStreamRunState resume_state = slot->state;

	if (usage <= qleaf_notify_queue_limit)
		return;
	since = GetCurrentTimestamp();
	elevel = TimestampDifferenceExceeds(last_logged, since, 60000) ? LOG : DEBUG1;
	if (elevel == LOG)
		last_logged = since;
	ereport(elevel,
			(errmsg("stream \"%s\" pauses: the notification queue is %.6f full, above qleaf_fdw.notify_queue_limit (%g)",
					def.name, usage, qleaf_notify_queue_limit),
			 errdetail("A session that listens is not reading its notifications, or stays in an open transaction."),
			 errhint("Look in pg_stat_activity for sessions \"idle in transaction\" since long; the stream goes on by itself once they end their transactions and read.")));
	set_run_state(QLEAF_RUN_WAITING_LISTENERS);
	pgstat_report_activity(STATE_RUNNING,
						   "waiting for listeners to read the notification queue (above qleaf_fdw.notify_queue_limit)");
	while (usage > qleaf_notify_queue_limit)
	{
		nap(100);
		usage = notify_queue_usage();
	}
	set_run_state(resume_state);
	ereport(elevel,
			(errmsg("stream \"%s\" goes on: the notification queue is %.6f full after a pause of %ld ms",
					def.name, usage,
					(long) ((GetCurrentTimestamp() - since) / 1000))));
}

/* ----------------------------------------------------------------
 *		The initial snapshot (snapshot.c reads, this stores)
 * ----------------------------------------------------------------
 */

#define SNAPSHOT_LOG_MS		10000

static bool snapshot_clock_started = false;

/*
 * Connect and plan the snapshot from its committed position.  A new
 * snapshot first takes the server's time T and saves it as the stream's
 * start point, before any document is read.
 */
static QleafSnapshot *
snapshot_open(void)
{
	Oid			types[2] = {TEXTOID, INT8OID};
	Datum		values[2];
	QleafSnapshot *snap;
	ForeignServer *server;
	UserMapping *user;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	char	   *state;
	char	   *from_collection;
	char	   *from_id;
	int64		documents;
	uint64		total;
	Datum		d;

	begin_xact("starting the stream's snapshot");
	server = GetForeignServerByName(def.server, false);
	user = GetUserMapping(def.owner, server->serverid);
	if (def.database == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("stream \"%s\" names no database", def.name),
				 errhint("Set the stream's option \"database\" or the server's option \"database\".")));
	snap = qleaf_snapshot_connect(user, server, stream_cxt,
								  def.collection ?
								  psprintf("while reading the snapshot of collection \"%s.%s\" for stream \"%s\"",
										   def.database, def.collection, def.name) :
								  psprintf("while reading the snapshot of database \"%s\" for stream \"%s\"",
										   def.database, def.name));

	values[0] = CStringGetTextDatum(def.name);
	exec_as_superuser("SELECT snapshot, snapshot_collection, snapshot_last_id, "
					  "snapshot_documents, start_timestamp "
					  "FROM qleaf.stream_state WHERE stream = $1",
					  1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed != 1)
	{
		commit_xact();
		proc_exit(0);			/* dropped */
	}
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	state = SPI_getvalue(tup, desc, 1);
	from_collection = SPI_getvalue(tup, desc, 2);
	from_id = SPI_getvalue(tup, desc, 3);
	documents = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
	d = SPI_getbinval(tup, desc, 5, &isnull);
	if (state == NULL || strcmp(state, "done") == 0)
	{
		commit_xact();
		proc_exit(0);			/* reset meanwhile: start again */
	}
	if (strcmp(state, "pending") == 0)
	{
		uint64		at = qleaf_snapshot_server_time(snap);

		/*
		 * The snapshot's reads see every change up to at: the change stream
		 * starts just after it (Timestamps carry secs << 32 | inc).
		 */
		values[1] = Int64GetDatum((int64) (at + 1));
		if (exec_as_superuser("UPDATE qleaf.stream_state SET snapshot = 'running', "
							  "start_timestamp = $2, snapshot_started_at = now(), "
							  "updated_at = now() "
							  "WHERE stream = $1 AND snapshot = 'pending' AND resume_token IS NULL",
							  2, types, values, NULL, SPI_OK_UPDATE) != 1)
		{
			commit_xact();
			proc_exit(0);
		}
		def.start_ts = at + 1;
		from_collection = from_id = NULL;
		documents = 0;
		ereport(LOG,
				(errmsg("stream \"%s\" starts its snapshot at Timestamp(%u, %u)",
						def.name, (uint32) (at >> 32), (uint32) at)));
	}
	else if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the snapshot of stream \"%s\" has no start time", def.name),
				 errhint("Reset the stream with qleaf.reset_stream(name, snapshot => true).")));
	else
		def.start_ts = (uint64) DatumGetInt64(d);
	def.has_start = true;
	total = qleaf_snapshot_start(snap, def.database, def.collection,
								 from_collection, from_id, def.start_ts - 1);
	commit_xact();

	LWLockAcquire(qleaf_stream_shared->lock, LW_EXCLUSIVE);
	slot->snapshot_total = Max(total, (uint64) documents);
	slot->snapshot_done = documents;
	if (!snapshot_clock_started)
	{
		/* the rate counts from this worker's first read */
		snapshot_clock_started = true;
		slot->snapshot_done_at_start = documents;
		slot->snapshot_started_at = GetCurrentTimestamp();
	}
	slot->state = QLEAF_RUN_SNAPSHOTTING;
	LWLockRelease(qleaf_stream_shared->lock);
	return snap;
}

static void
log_snapshot_progress(const char *what_done)
{
	uint64		done,
				total,
				since;
	TimestampTz started;
	long		secs;
	int			usecs;
	double		elapsed;

	LWLockAcquire(qleaf_stream_shared->lock, LW_SHARED);
	done = slot->snapshot_done;
	total = slot->snapshot_total;
	since = slot->snapshot_done_at_start;
	started = slot->snapshot_started_at;
	LWLockRelease(qleaf_stream_shared->lock);
	TimestampDifference(started, GetCurrentTimestamp(), &secs, &usecs);
	elapsed = secs + usecs / 1000000.0;
	ereport(LOG,
			(errmsg("stream \"%s\" snapshot %s: " UINT64_FORMAT " of about " UINT64_FORMAT " documents, %.0f per second",
					def.name, what_done, done, Max(total, done),
					elapsed > 0 ? (done - since) / elapsed : 0.0)));
}

/*
 * Store the snapshot, batch by batch; return when it is complete.  A
 * failure to read closes the snapshot, backs off and opens it again from
 * the committed position.
 */
static void
run_snapshot(void)
{
	QleafSnapshot *volatile snap = NULL;
	TimestampTz last_log = GetCurrentTimestamp();
	Batch		batch;

	for (;;)
	{
		MemoryContext oldcxt = CurrentMemoryContext;
		char	   *volatile fatal = NULL;
		volatile bool failed = false;

		MemoryContextReset(batch_cxt);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		memset(&batch, 0, sizeof(Batch));
		PG_TRY();
		{
			if (snap == NULL)
				snap = snapshot_open();
			MemoryContextSwitchTo(batch_cxt);
			batch.snapshot = true;
			batch.cap = def.batch_size;
			batch.events = palloc(sizeof(bson_t *) * batch.cap);
			batch.tokens = palloc(sizeof(char *) * batch.cap);
			pgstat_report_activity(STATE_RUNNING, "reading the snapshot");
			batch.n = qleaf_snapshot_next(snap, batch.cap, batch.events,
										  batch.tokens, batch_cxt);
			batch.received_at = GetCurrentTimestamp();
		}
		PG_CATCH();
		{
			fatal = open_failed("read its snapshot");
			snap = NULL;
			MemoryContextReset(stream_cxt);
			failed = true;
		}
		PG_END_TRY();
		MemoryContextSwitchTo(oldcxt);
		if (fatal != NULL)
			stop_in_state("failed", fatal);
		if (failed)
		{
			set_run_state(QLEAF_RUN_STARTING);
			backoff();
			continue;
		}
		if (batch.n == 0)
			break;
		store_batch(&batch);
		backoff_attempt = 0;
		LWLockAcquire(qleaf_stream_shared->lock, LW_EXCLUSIVE);
		slot->snapshot_done += batch.n;
		LWLockRelease(qleaf_stream_shared->lock);
		if (TimestampDifferenceExceeds(last_log, GetCurrentTimestamp(),
									   SNAPSHOT_LOG_MS))
		{
			log_snapshot_progress("in progress");
			last_log = GetCurrentTimestamp();
		}
		run_maintenance();
		if (def.channel != NULL)
			wait_for_notify_queue();
	}

	/* complete: the change stream takes over at T */
	{
		Oid			types[1] = {TEXTOID};
		Datum		values[1];

		values[0] = CStringGetTextDatum(def.name);
		begin_xact("ending the stream's snapshot");
		if (exec_as_superuser("UPDATE qleaf.stream_state SET snapshot = 'done', "
							  "snapshot_collection = NULL, snapshot_last_id = NULL, "
							  "snapshot_finished_at = now(), updated_at = now() "
							  "WHERE stream = $1 AND snapshot = 'running' AND state = 'ok'",
							  1, types, values, NULL, SPI_OK_UPDATE) != 1)
		{
			commit_xact();
			proc_exit(0);
		}
		commit_xact();
	}
	log_snapshot_progress("complete");
	qleaf_snapshot_close(snap);
	def.snapshot = "done";
	set_run_state(QLEAF_RUN_STARTING);
}

/* ----------------------------------------------------------------
 *		Main
 * ----------------------------------------------------------------
 */

void
qleaf_stream_worker_main(Datum arg)
{
	int			slotno = DatumGetInt32(arg);
	Oid			dboid;
	Oid			owner;
	Batch		batch;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	slot = &qleaf_stream_shared->slots[slotno];
	LWLockAcquire(qleaf_stream_shared->lock, LW_EXCLUSIVE);
	slot->pid = MyProcPid;
	slot->state = QLEAF_RUN_STARTING;
	slot->started_at = GetCurrentTimestamp();
	dboid = qleaf_stream_shared->dboid;
	owner = slot->owner;
	LWLockRelease(qleaf_stream_shared->lock);
	before_shmem_exit(worker_exit, (Datum) 0);

	BackgroundWorkerInitializeConnectionByOid(dboid, owner, 0);
	pgstat_report_appname(psprintf("qleaf_fdw stream %s", slot->name));

	worker_cxt = AllocSetContextCreate(TopMemoryContext, "qleaf_fdw stream worker",
									   ALLOCSET_DEFAULT_SIZES);
	stream_cxt = AllocSetContextCreate(worker_cxt, "qleaf_fdw stream",
									   ALLOCSET_DEFAULT_SIZES);
	batch_cxt = AllocSetContextCreate(worker_cxt, "qleaf_fdw stream batch",
									  ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(worker_cxt);
	load_definition();
	if (def.snapshot != NULL && strcmp(def.snapshot, "done") != 0)
		run_snapshot();

	for (;;)
	{
		MemoryContextReset(batch_cxt);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (cs == NULL)
		{
			set_run_state(QLEAF_RUN_STARTING);
			if (!open_stream())
			{
				backoff();
				continue;
			}
		}

		collect_batch(&batch);

		if (batch.n > 0 ||
			(batch.token != NULL &&
			 (def.token == NULL || strcmp(batch.token, def.token) != 0) &&
			 TimestampDifferenceExceeds(last_token_save, GetCurrentTimestamp(),
										TOKEN_SAVE_MS)))
		{
			store_batch(&batch);
			last_token_save = GetCurrentTimestamp();
			backoff_attempt = 0;
		}
		else if (!batch.failed && slot->state != QLEAF_RUN_RUNNING)
			set_run_state(QLEAF_RUN_RUNNING);

		if (batch.invalidated)
		{
			ereport(LOG,
					(errmsg("stream \"%s\" stopped in state invalidated", def.name)));
			proc_exit(0);
		}
		if (batch.failed)
		{
			QleafStreamErrorKind kind =
				qleaf_change_stream_error_kind(&batch.error, batch.error_reply);
			char	   *msg = qleaf_mongo_error_text(batch.error.code, NULL,
													 batch.error.message);

			if (kind == QLEAF_STREAM_ERROR_HISTORY_LOST)
				stop_in_state("history_lost",
							  psprintf("the change stream's history is lost: the stream's position is older than the oldest event the server keeps (%s); "
									   "call qleaf.reset_stream to start again from a later point", msg));
			if (kind == QLEAF_STREAM_ERROR_FATAL)
				stop_in_state("failed", msg);
			ereport(LOG,
					(errmsg("stream \"%s\" will resume after a resumable error: %s",
							def.name, msg)));
			qleaf_stream_set_error(slot, msg);
			close_stream();
			set_run_state(QLEAF_RUN_STARTING);
			backoff();
			continue;
		}

		run_maintenance();
		if (def.channel != NULL && batch.n > 0)
			wait_for_notify_queue();
	}
}

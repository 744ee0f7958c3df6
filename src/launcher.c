/*-------------------------------------------------------------------------
 *
 * launcher.c
 *		  streams: shared memory, the launcher background worker, and the
 *		  SQL functions that change stream definitions
 *
 * Loaded through shared_preload_libraries, qleaf_fdw registers one
 * launcher worker.  It starts once recovery is over, connects to the
 * database qleaf_fdw.database (default "postgres"; streams are defined in
 * that database only, as pg_cron does), and keeps one dynamic worker
 * running per enabled stream whose state is 'ok':
 *
 * - a new, resumed or altered stream (qleaf.streams.version changes on
 *   every alter) starts at once: the SQL functions set the launcher's
 *   latch when their transaction commits;
 * - a paused, dropped or altered stream's worker gets SIGTERM, and an
 *   altered one starts again from its committed resume token;
 * - a worker that exits unasked (crash, error, kill) is started again
 *   after 1 s, 2 s, 4 s ... up to 60 s; the delay resets once a worker
 *   is running again.  Its slot counts the restart.
 *
 * With no stream defined, or the extension not created in that database,
 * the launcher only wakes every 10 s to look (one catalog lookup).
 *
 * All writes to qleaf.streams and qleaf.stream_state by users go through
 * qleaf._stream_apply, which checks ownership itself (the caller must be
 * the stream's owner, a member of the owner role, or a superuser) and then
 * writes as the bootstrap superuser with a fixed search_path: the tables
 * are readable by everyone and writable by no one else.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "stream.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* How often the launcher looks at qleaf.streams unasked. */
#define LAUNCHER_POLL_MS		10000
/* Restart delays of a worker that exits unasked. */
#define RESTART_MIN_MS			1000
#define RESTART_MAX_MS			60000
/* reset_stream keeps the position: failed, no start point, no snapshot */
#define RESET_KEEPS "(state = 'failed' AND $2->>'start_timestamp' IS NULL " \
	"AND NOT coalesce(($2->>'snapshot')::boolean, false))"

QleafStreamShared *qleaf_stream_shared = NULL;
bool		qleaf_streams_preloaded = false;
char	   *qleaf_stream_database = NULL;
int			qleaf_max_streams = 16;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static bool wake_at_commit = false;

/* the launcher's handles of its workers, by slot */
static BackgroundWorkerHandle **worker_handles = NULL;

PG_FUNCTION_INFO_V1(qleaf_stream_apply);
PG_FUNCTION_INFO_V1(qleaf_stream_runtime);

static Size
stream_shmem_size(void)
{
	return add_size(offsetof(QleafStreamShared, slots),
					mul_size(sizeof(QleafStreamSlot), qleaf_max_streams));
}

static void
stream_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(stream_shmem_size());
	RequestNamedLWLockTranche("qleaf_fdw streams", 1);
}

static void
stream_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	qleaf_stream_shared = ShmemInitStruct("qleaf_fdw streams",
										  stream_shmem_size(), &found);
	if (!found)
	{
		memset(qleaf_stream_shared, 0, stream_shmem_size());
		qleaf_stream_shared->lock =
			&(GetNamedLWLockTranche("qleaf_fdw streams"))->lock;
		qleaf_stream_shared->nslots = qleaf_max_streams;
	}
	LWLockRelease(AddinShmemInitLock);
}

static void
stream_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT && wake_at_commit)
		qleaf_stream_wake_launcher();
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT)
		wake_at_commit = false;
}

/*
 * Called from _PG_init.  The settings, shared memory and the launcher
 * exist only when the library is preloaded (shared_preload_libraries).
 */
void
qleaf_stream_init(void)
{
	BackgroundWorker bgw;

	RegisterXactCallback(stream_xact_callback, NULL);

	/* postmaster settings can be defined only while preloading */
	if (!process_shared_preload_libraries_in_progress)
		return;
	qleaf_streams_preloaded = true;

	DefineCustomStringVariable("qleaf_fdw.database",
							   "The database whose streams the launcher runs.",
							   "Streams (qleaf.create_stream) can be defined in this database only.",
							   &qleaf_stream_database,
							   "postgres",
							   PGC_POSTMASTER, 0,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("qleaf_fdw.max_streams",
							"The most streams that can run at once.",
							"Each running stream takes one background worker (max_worker_processes).",
							&qleaf_max_streams,
							16, 1, 1024,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = stream_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = stream_shmem_startup;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 5;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "qleaf_fdw");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "qleaf_stream_launcher_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "qleaf_fdw launcher");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "qleaf_fdw launcher");
	RegisterBackgroundWorker(&bgw);
}

void
qleaf_stream_wake_launcher(void)
{
	Latch	   *latch;

	if (qleaf_stream_shared == NULL)
		return;
	latch = qleaf_stream_shared->launcher_latch;
	if (latch != NULL)
		SetLatch(latch);
}

/* Record an error in the slot (the caller holds no lock). */
void
qleaf_stream_set_error(QleafStreamSlot *slot, const char *msg)
{
	LWLockAcquire(qleaf_stream_shared->lock, LW_EXCLUSIVE);
	slot->errors_total++;
	slot->last_error_at = GetCurrentTimestamp();
	strlcpy(slot->last_error, msg, QLEAF_STREAM_ERROR_LEN);
	LWLockRelease(qleaf_stream_shared->lock);
}

/* ----------------------------------------------------------------
 *		The launcher
 * ----------------------------------------------------------------
 */

typedef struct WantedStream
{
	char		name[QLEAF_STREAM_NAME_LEN];
	Oid			owner;
	int			version;
	bool		run;
} WantedStream;

/* The streams defined, read in a transaction of its own. */
static WantedStream *
read_streams(int *count)
{
	WantedStream *wanted = NULL;
	MemoryContext outer = CurrentMemoryContext;

	*count = 0;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (OidIsValid(get_extension_oid("qleaf_fdw", true)))
	{
		int			ret;
		uint64		i;

		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "reading qleaf.streams");
		ret = SPI_execute("SELECT s.name, s.owner::oid, s.version, "
						  "s.enabled AND st.state = 'ok' "
						  "FROM qleaf.streams s "
						  "JOIN qleaf.stream_state st ON st.stream = s.name",
						  true, 0);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "qleaf_fdw: reading qleaf.streams failed: %s",
				 SPI_result_code_string(ret));
		wanted = MemoryContextAllocZero(outer,
										sizeof(WantedStream) * Max(SPI_processed, 1));
		for (i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			char	   *name = SPI_getvalue(tup, desc, 1);

			strlcpy(wanted[i].name, name, QLEAF_STREAM_NAME_LEN);
			wanted[i].owner = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
			wanted[i].version = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
			wanted[i].run = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
		}
		*count = (int) SPI_processed;
		SPI_finish();
		PopActiveSnapshot();
	}
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return wanted;
}

static bool
start_worker(int slotno, QleafStreamSlot *slot)
{
	BackgroundWorker bgw;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "qleaf_fdw");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "qleaf_stream_worker_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "qleaf_fdw stream %s", slot->name);
	snprintf(bgw.bgw_type, BGW_MAXLEN, "qleaf_fdw stream");
	bgw.bgw_main_arg = Int32GetDatum(slotno);
	bgw.bgw_notify_pid = MyProcPid;
	return RegisterDynamicBackgroundWorker(&bgw, &worker_handles[slotno]);
}

/*
 * A slot whose stream has no worker and wants none (paused, failed,
 * history_lost, invalidated), or -1.  Such a slot keeps the stream's
 * counters for stream_status, so it is given up only when a stream that
 * must run finds every slot taken.
 */
static int
idle_slot(QleafStreamShared *sh, WantedStream *wanted, int nwanted)
{
	int			i;
	int			j;

	for (i = 0; i < sh->nslots; i++)
	{
		QleafStreamSlot *slot = &sh->slots[i];
		bool		wants_worker = false;

		if (!slot->in_use || worker_handles[i] != NULL || slot->pid != 0)
			continue;
		for (j = 0; j < nwanted; j++)
			if (wanted[j].run && strcmp(wanted[j].name, slot->name) == 0)
				wants_worker = true;
		if (!wants_worker)
			return i;
	}
	return -1;
}

/* The delay before restart number failures: 1 s, 2 s, 4 s ... 60 s. */
static long
restart_delay(int failures)
{
	long		delay = RESTART_MIN_MS;
	int			k;

	for (k = 1; k < failures && delay < RESTART_MAX_MS; k++)
		delay *= 2;
	return Min(delay, RESTART_MAX_MS);
}

/*
 * Make the running workers match qleaf.streams.  Returns how long the
 * launcher may sleep before it must look again.
 */
static long
reconcile(void)
{
	QleafStreamShared *sh = qleaf_stream_shared;
	WantedStream *wanted;
	int			nwanted;
	int			i;
	int			j;
	TimestampTz now;
	long		timeout = LAUNCHER_POLL_MS;

	wanted = read_streams(&nwanted);
	/* after the read: a restart's delay counts from when the exit is seen */
	now = GetCurrentTimestamp();

	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	for (i = 0; i < sh->nslots; i++)
	{
		QleafStreamSlot *slot = &sh->slots[i];
		WantedStream *w = NULL;

		if (!slot->in_use)
			continue;
		for (j = 0; j < nwanted; j++)
			if (strcmp(wanted[j].name, slot->name) == 0)
				w = &wanted[j];

		/* a worker that has exited */
		if (worker_handles[i] != NULL)
		{
			pid_t		pid;

			if (GetBackgroundWorkerPid(worker_handles[i], &pid) == BGWH_STOPPED)
			{
				pfree(worker_handles[i]);
				worker_handles[i] = NULL;
				slot->pid = 0;
				if (!slot->stop_requested)
				{
					long		delay;

					slot->failures++;
					delay = restart_delay(slot->failures);
					slot->next_start = TimestampTzPlusMilliseconds(now, delay);
					ereport(DEBUG1,
							(errmsg("the worker of stream \"%s\" exited unexpectedly: exit %d in a row, restarted in %ld ms",
									slot->name, slot->failures, delay)));
				}
				slot->stop_requested = false;
			}
		}

		/* a worker that must stop */
		if (worker_handles[i] != NULL && !slot->stop_requested &&
			(w == NULL || !w->run || w->version != slot->version ||
			 w->owner != slot->owner))
		{
			TerminateBackgroundWorker(worker_handles[i]);
			slot->stop_requested = true;
		}

		/* a dropped stream whose worker is gone */
		if (w == NULL && worker_handles[i] == NULL)
			memset(slot, 0, sizeof(QleafStreamSlot));
	}

	for (j = 0; j < nwanted; j++)
	{
		WantedStream *w = &wanted[j];
		QleafStreamSlot *slot = NULL;
		int			slotno = -1;
		int			free_slot = -1;

		if (!w->run)
			continue;
		for (i = 0; i < sh->nslots; i++)
		{
			if (sh->slots[i].in_use && strcmp(sh->slots[i].name, w->name) == 0)
				slotno = i;
			else if (!sh->slots[i].in_use && free_slot < 0)
				free_slot = i;
		}
		if (slotno < 0)
		{
			if (free_slot < 0)
				free_slot = idle_slot(sh, wanted, nwanted);
			if (free_slot < 0)
			{
				ereport(WARNING,
						(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
						 errmsg("stream \"%s\" cannot start: all %d stream slots are taken",
								w->name, sh->nslots),
						 errhint("Raise qleaf_fdw.max_streams and restart the server, or pause or drop a stream.")));
				continue;
			}
			slotno = free_slot;
			slot = &sh->slots[slotno];
			memset(slot, 0, sizeof(QleafStreamSlot));
			slot->in_use = true;
			strlcpy(slot->name, w->name, QLEAF_STREAM_NAME_LEN);
		}
		slot = &sh->slots[slotno];
		if (worker_handles[slotno] != NULL)
			continue;			/* running, or stopping */
		if (slot->pid != 0)
			continue;			/* an earlier launcher's worker, ending */
		/* a new definition (alter, resume, reset) starts without delay */
		if (w->version != slot->version)
			slot->failures = 0;
		if (slot->failures > 0 && slot->next_start > now)
		{
			long		secs;
			int			usecs;

			TimestampDifference(now, slot->next_start, &secs, &usecs);
			timeout = Min(timeout, secs * 1000 + usecs / 1000 + 1);
			continue;
		}
		slot->version = w->version;
		slot->owner = w->owner;
		slot->stop_requested = false;
		if (!start_worker(slotno, slot))
		{
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("stream \"%s\" cannot start: no background worker slot is free",
							w->name),
					 errhint("Raise max_worker_processes and restart the server.")));
			worker_handles[slotno] = NULL;
			timeout = Min(timeout, 5000);
			continue;
		}
		if (slot->ever_started && slot->failures > 0)
		{
			slot->restarts++;
			ereport(LOG,
					(errmsg("restarting the worker of stream \"%s\", which exited unexpectedly: restart " UINT64_FORMAT ", delayed %ld ms",
							w->name, slot->restarts,
							restart_delay(slot->failures))));
		}
		slot->ever_started = true;
	}
	LWLockRelease(sh->lock);
	if (wanted)
		pfree(wanted);
	return timeout;
}

void
qleaf_stream_launcher_main(Datum arg)
{
	QleafStreamShared *sh = qleaf_stream_shared;
	int			i;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(qleaf_stream_database, NULL, 0);
	pgstat_report_appname("qleaf_fdw launcher");

	worker_handles = MemoryContextAllocZero(TopMemoryContext,
											sizeof(BackgroundWorkerHandle *) * sh->nslots);

	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	sh->launcher_pid = MyProcPid;
	sh->launcher_latch = MyLatch;
	sh->dboid = MyDatabaseId;
	/* workers of an earlier launcher: we have no handles, stop them */
	for (i = 0; i < sh->nslots; i++)
		if (sh->slots[i].in_use && sh->slots[i].pid != 0)
			kill(sh->slots[i].pid, SIGTERM);
	LWLockRelease(sh->lock);

	ereport(LOG,
			(errmsg("qleaf_fdw launcher started in database \"%s\"",
					qleaf_stream_database)));

	for (;;)
	{
		long		timeout;

		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		timeout = reconcile();
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
	}
}

/* ----------------------------------------------------------------
 *		SQL functions
 * ----------------------------------------------------------------
 */

static void
check_preloaded(void)
{
	if (!qleaf_streams_preloaded || qleaf_stream_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("qleaf_fdw streams need qleaf_fdw to be loaded via \"shared_preload_libraries\""),
				 errhint("Add qleaf_fdw to shared_preload_libraries in postgresql.conf and restart the server.")));
	if (strcmp(get_database_name(MyDatabaseId), qleaf_stream_database) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("streams can only be defined in database \"%s\"",
						qleaf_stream_database),
				 errhint("Connect to database \"%s\", or set qleaf_fdw.database and restart the server.",
						 qleaf_stream_database)));
}

static void
spi_exec(const char *sql, int nargs, Oid *types, Datum *values, int expect)
{
	int			ret = SPI_execute_with_args(sql, nargs, types, values, NULL,
											false, 0);

	if (ret != expect)
		elog(ERROR, "qleaf_fdw: stream statement failed: %s",
			 SPI_result_code_string(ret));
}

/*
 * qleaf._stream_apply(op, name, def): create, alter, drop or reset a
 * stream.  def holds the options (create, alter) or the start point
 * (reset) as jsonb.
 */
Datum
qleaf_stream_apply(PG_FUNCTION_ARGS)
{
	char	   *op;
	text	   *name;
	Datum		def;
	Oid			user = GetUserId();
	Oid			save_user;
	int			save_sec;
	int			nestlevel;
	Oid			types[3] = {TEXTOID, JSONBOID, OIDOID};
	Datum		values[3];
	bool		exists;
	Oid			owner = InvalidOid;

	check_preloaded();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("a stream needs a name")));
	op = text_to_cstring(PG_GETARG_TEXT_PP(0));
	name = PG_GETARG_TEXT_PP(1);
	def = PG_ARGISNULL(2) ? DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")) :
		PG_GETARG_DATUM(2);
	values[0] = PointerGetDatum(name);
	values[1] = def;
	values[2] = ObjectIdGetDatum(user);

	SPI_connect();

	/* everything below as the bootstrap superuser, with a fixed path */
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);

	spi_exec("SELECT owner::oid FROM qleaf.streams WHERE name = $1 FOR UPDATE",
			 1, types, values, SPI_OK_SELECT);
	exists = SPI_processed > 0;
	if (exists)
	{
		bool		isnull;

		owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1, &isnull));
	}

	if (strcmp(op, "create") == 0)
	{
		if (exists)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("stream \"%s\" already exists", text_to_cstring(name))));
		spi_exec("INSERT INTO qleaf.streams "
				 "SELECT (jsonb_populate_record(NULL::qleaf.streams, $2 || "
				 "jsonb_build_object('name', $1, 'owner', $3::regrole::text, "
				 "'version', 1, 'created_at', now()))).*",
				 3, types, values, SPI_OK_INSERT);
		spi_exec("INSERT INTO qleaf.stream_state (stream, start_timestamp, start_after, snapshot) "
				 "VALUES ($1, ($2->>'start_timestamp')::bigint, $2->>'start_after', "
				 "CASE WHEN ($2->>'snapshot')::boolean THEN 'pending' END)",
				 2, types, values, SPI_OK_INSERT);
	}
	else
	{
		if (!exists)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("stream \"%s\" does not exist", text_to_cstring(name))));
		if (!has_privs_of_role(user, owner))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("must be owner of stream \"%s\"", text_to_cstring(name)),
					 errdetail("Only the stream's owner or a superuser may change it.")));
		if (strcmp(op, "alter") == 0)
			spi_exec("UPDATE qleaf.streams s SET "
					 "(server, database, collection, pipeline, \"where\", where_stages, full_document, "
					 "full_document_before_change, channel, event_table, payload, "
					 "batch_size, on_error, refresh_views, refresh_interval, "
					 "retention, enabled) = "
					 "(SELECT r.server, r.database, r.collection, r.pipeline, r.\"where\", r.where_stages, "
					 "r.full_document, r.full_document_before_change, r.channel, "
					 "r.event_table, r.payload, r.batch_size, r.on_error, "
					 "r.refresh_views, r.refresh_interval, r.retention, r.enabled "
					 "FROM jsonb_populate_record(s, $2) r), "
					 "version = s.version + 1 WHERE s.name = $1",
					 2, types, values, SPI_OK_UPDATE);
		else if (strcmp(op, "drop") == 0)
			spi_exec("DELETE FROM qleaf.streams WHERE name = $1",
					 1, types, values, SPI_OK_DELETE);
		else if (strcmp(op, "reset") == 0)
		{
			/*
			 * A failed stream's position is still good: without a start
			 * point or a new snapshot it resumes from it (its committed
			 * token, its first start point, or its snapshot's position).
			 * Otherwise: a new snapshot, the given point, or now.
			 */
			spi_exec("UPDATE qleaf.stream_state SET state = 'ok', "
					 "last_error = NULL, last_error_at = NULL, "
					 "resume_token = CASE WHEN " RESET_KEEPS " THEN resume_token END, "
					 "start_after = CASE WHEN " RESET_KEEPS " THEN start_after END, "
					 "start_timestamp = CASE WHEN " RESET_KEEPS " THEN start_timestamp "
					 "  ELSE ($2->>'start_timestamp')::bigint END, "
					 "snapshot = CASE WHEN ($2->>'snapshot')::boolean THEN 'pending' "
					 "  WHEN " RESET_KEEPS " THEN snapshot END, "
					 "snapshot_collection = CASE WHEN " RESET_KEEPS " THEN snapshot_collection END, "
					 "snapshot_last_id = CASE WHEN " RESET_KEEPS " THEN snapshot_last_id END, "
					 "snapshot_documents = CASE WHEN " RESET_KEEPS " THEN snapshot_documents ELSE 0 END, "
					 "snapshot_started_at = CASE WHEN " RESET_KEEPS " THEN snapshot_started_at END, "
					 "snapshot_finished_at = CASE WHEN " RESET_KEEPS " THEN snapshot_finished_at END, "
					 "updated_at = now() WHERE stream = $1",
					 2, types, values, SPI_OK_UPDATE);
			spi_exec("UPDATE qleaf.streams SET version = version + 1 WHERE name = $1",
					 1, types, values, SPI_OK_UPDATE);
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown stream operation \"%s\"", op)));
	}

	AtEOXact_GUC(true, nestlevel);
	SetUserIdAndSecContext(save_user, save_sec);
	SPI_finish();
	wake_at_commit = true;
	PG_RETURN_VOID();
}

/* qleaf._stream_runtime(): one row per stream slot in use */
Datum
qleaf_stream_runtime(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	QleafStreamShared *sh = qleaf_stream_shared;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	if (sh == NULL)
		return (Datum) 0;
	LWLockAcquire(sh->lock, LW_SHARED);
	for (i = 0; i < sh->nslots; i++)
	{
		QleafStreamSlot *s = &sh->slots[i];
		Datum		values[11];
		bool		nulls[11];

		if (!s->in_use)
			continue;
		memset(nulls, 0, sizeof(nulls));
		values[0] = CStringGetTextDatum(s->name);
		values[1] = CStringGetTextDatum(s->state == QLEAF_RUN_RUNNING ? "running" :
										s->state == QLEAF_RUN_WAITING_LISTENERS ?
										"waiting_for_listeners" :
										s->state == QLEAF_RUN_SNAPSHOTTING ? "snapshotting" :
										"starting");
		values[2] = Int32GetDatum(s->pid);
		nulls[2] = s->pid == 0;
		values[3] = Int64GetDatum((int64) s->events_total);
		values[4] = Int64GetDatum((int64) s->batches_total);
		values[5] = Int64GetDatum((int64) s->errors_total);
		values[6] = Int64GetDatum((int64) s->restarts);
		values[7] = CStringGetTextDatum(s->last_error);
		nulls[7] = s->last_error[0] == '\0';
		values[8] = TimestampTzGetDatum(s->last_error_at);
		nulls[8] = s->last_error_at == 0;
		values[9] = TimestampTzGetDatum(s->started_at);
		nulls[9] = s->started_at == 0;
		values[10] = TimestampTzGetDatum(s->last_batch_at);
		nulls[10] = s->last_batch_at == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(sh->lock);
	return (Datum) 0;
}

/*-------------------------------------------------------------------------
 *
 * stream.h
 *		  streams: the launcher, the per-stream workers and their shared
 *		  memory
 *
 * With qleaf_fdw in shared_preload_libraries, a launcher background worker
 * connects to the database named by qleaf_fdw.database and starts one
 * dynamic worker per enabled stream of qleaf.streams.  Each worker reads
 * its stream's change stream and writes batches of events to its event
 * table, with NOTIFY and the resume token, in one transaction per batch.
 *
 * Shared memory holds one slot per stream the launcher knows: what the
 * launcher needs to start and stop its worker, and the counters the
 * worker keeps for qleaf.stream_status.  One LWLock guards all slots.
 *
 *-------------------------------------------------------------------------
 */
#ifndef QLEAF_STREAM_H
#define QLEAF_STREAM_H

#include "postgres.h"

#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/timestamp.h"

#define QLEAF_STREAM_NAME_LEN	64
#define QLEAF_STREAM_ERROR_LEN	512

/* What a running worker is doing, as qleaf.stream_status shows it. */
typedef enum QleafStreamRunState
{
	QLEAF_RUN_STARTING,			/* connecting, or waiting to retry */
	QLEAF_RUN_RUNNING,			/* reading and storing events */
	QLEAF_RUN_WAITING_LISTENERS,	/* paused: the notification queue is above
									 * qleaf_fdw.notify_queue_limit */
	QLEAF_RUN_SNAPSHOTTING		/* storing the initial snapshot */
} QleafStreamRunState;

typedef struct QleafStreamSlot
{
	bool		in_use;
	char		name[QLEAF_STREAM_NAME_LEN];
	Oid			owner;
	int			version;		/* of the definition the worker runs */

	/* set by the launcher */
	bool		stop_requested; /* the worker was told to stop */
	bool		ever_started;
	int			failures;		/* exits in a row without a request */
	TimestampTz next_start;		/* no restart before this */

	/* set by the worker */
	pid_t		pid;			/* 0: no worker */
	QleafStreamRunState state;
	uint64		events_total;
	uint64		batches_total;
	uint64		errors_total;
	uint64		restarts;
	TimestampTz started_at;
	TimestampTz last_batch_at;
	TimestampTz last_error_at;
	char		last_error[QLEAF_STREAM_ERROR_LEN];

	/* set by the worker while it stores the initial snapshot (snapshot.c) */
	uint64		snapshot_total; /* estimated documents, 0: unknown */
	uint64		snapshot_done;	/* documents committed */
	uint64		snapshot_done_at_start; /* ... when this worker began */
	TimestampTz snapshot_started_at;	/* when this worker began it */
} QleafStreamSlot;

typedef struct QleafStreamShared
{
	LWLock	   *lock;
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	Oid			dboid;			/* the launcher's database */
	int			nslots;
	QleafStreamSlot slots[FLEXIBLE_ARRAY_MEMBER];
} QleafStreamShared;

/* in launcher.c */
extern QleafStreamShared *qleaf_stream_shared;
extern bool qleaf_streams_preloaded;
extern char *qleaf_stream_database;
extern int	qleaf_max_streams;
extern void qleaf_stream_init(void);
extern void qleaf_stream_wake_launcher(void);
extern void qleaf_stream_set_error(QleafStreamSlot *slot, const char *msg);
extern PGDLLEXPORT void qleaf_stream_launcher_main(Datum arg);

/* in worker.c */
extern int	qleaf_stream_await_ms;
extern double qleaf_notify_queue_limit;
extern PGDLLEXPORT void qleaf_stream_worker_main(Datum arg);

#endif							/* QLEAF_STREAM_H */

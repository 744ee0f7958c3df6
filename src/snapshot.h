/*-------------------------------------------------------------------------
 *
 * snapshot.h
 *		  the initial snapshot of a stream: every current document of its
 *		  collection (or of each collection of its database) as events
 *
 * The worker (worker.c) drives it: qleaf_snapshot_connect, then the start
 * time (qleaf_snapshot_server_time) when the snapshot is new, then
 * qleaf_snapshot_start from the committed position, then batches from
 * qleaf_snapshot_next stored like change events, each with
 * qleaf_snapshot_save_position in its transaction.  Everything libmongoc
 * makes for a snapshot belongs to its memory context: deleting it, or an
 * ERROR resetting its parent, frees it all.
 *
 *-------------------------------------------------------------------------
 */
#ifndef QLEAF_SNAPSHOT_H
#define QLEAF_SNAPSHOT_H

#include "postgres.h"

#include <mongoc/mongoc.h>

#include "foreign/foreign.h"

typedef struct QleafSnapshot QleafSnapshot;

/* the operationType of snapshot rows */
#define QLEAF_SNAPSHOT_OP	"snapshot"

extern QleafSnapshot *qleaf_snapshot_connect(UserMapping *user,
											 ForeignServer *server,
											 MemoryContext parent,
											 const char *what);
extern uint64 qleaf_snapshot_server_time(QleafSnapshot *snap);

/*
 * Plan the reads: collection, or every collection of database when it is
 * NULL (in name order); from the committed position (from_collection and
 * from_id, the canonical Extended JSON of {"_id": ...}) when there is
 * one.  Reads wait for the majority-committed data at time at.  Returns
 * the estimated number of documents of all the collections.
 */
extern uint64 qleaf_snapshot_start(QleafSnapshot *snap, const char *database,
								   const char *collection,
								   const char *from_collection,
								   const char *from_id, uint64 at);

/*
 * Up to max next documents as snapshot events, allocated in cxt, with
 * their synthetic resume tokens; 0 when the snapshot is complete.  Raises
 * an ERROR when MongoDB fails.
 */
extern int	qleaf_snapshot_next(QleafSnapshot *snap, int max, bson_t **events,
								char **tokens, MemoryContext cxt);

extern void qleaf_snapshot_close(QleafSnapshot *snap);

/*
 * In the transaction that stores events (SPI connected): save the
 * position after the last of them and count n documents.
 */
extern void qleaf_snapshot_save_position(const char *stream,
										 const bson_t *last_event, int n);

#endif							/* QLEAF_SNAPSHOT_H */

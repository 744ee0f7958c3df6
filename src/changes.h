/*-------------------------------------------------------------------------
 *
 * changes.h
 *		  change streams shared by changes tables (changes.c) and stream
 *		  workers (worker.c)
 *
 * One piece of code opens a change stream, converts its events to
 * columns and tells its errors apart; both readers use it.
 *
 * A QleafChangeStream and everything libmongoc made for it (the change
 * stream, the collection or database handle, the connection reference)
 * belong to its own memory context: deleting that context, directly or
 * because an ERROR reset its parent, frees them all.
 *
 *-------------------------------------------------------------------------
 */
#ifndef QLEAF_CHANGES_H
#define QLEAF_CHANGES_H

#include "postgres.h"

#include <mongoc/mongoc.h>

#include "access/tupdesc.h"
#include "connection.h"
#include "convert.h"

typedef struct QleafChangeStream
{
	MemoryContext cxt;			/* owns this struct and its libmongoc objects */
	MemoryContextCallback cleanup;

	QleafConn  *conn;
	mongoc_collection_t *collection;
	mongoc_database_t *database;
	mongoc_change_stream_t *stream;
} QleafChangeStream;

/*
 * A new change stream object in a child context of parent, holding a
 * connection for user (ERROR if the server cannot be reached); then
 * qleaf_change_stream_watch runs the aggregate.
 */
extern QleafChangeStream *qleaf_change_stream_connect(UserMapping *user,
													  ForeignServer *server,
													  MemoryContext parent);
extern void qleaf_change_stream_watch(QleafChangeStream *cs,
									  const char *database,
									  const char *collection,
									  const bson_t *pipeline,
									  const bson_t *opts);
extern void qleaf_change_stream_close(QleafChangeStream *cs);

/* The server's current operation time (secs << 32 | inc), from a ping. */
extern uint64 qleaf_change_stream_server_time(QleafConn *conn,
											  const char *what);

/* secs << 32 | inc of a resume token's _data; false if it is none */
extern bool qleaf_resume_token_time(const char *data, size_t len,
									uint64 *time);

/* What to do about a failed change stream. */
typedef enum QleafStreamErrorKind
{
	QLEAF_STREAM_ERROR_RESUMABLE,	/* network or resumable: resume */
	QLEAF_STREAM_ERROR_HISTORY_LOST,	/* 286: the token left the oplog */
	QLEAF_STREAM_ERROR_FATAL	/* anything else */
} QleafStreamErrorKind;

extern QleafStreamErrorKind qleaf_change_stream_error_kind(const bson_error_t *error,
														   const bson_t *reply);

/*
 * Conversion of events to the columns of a relation: changes tables and
 * event tables.  nkeys columns, each reading one event field; key k
 * fills column key_att[k] of the row.
 */
typedef struct QleafEventConv
{
	int			natts;			/* columns of the row */
	int			nkeys;			/* columns filled */
	QleafColumnConv *convs;
	int		   *key_att;
	bool	   *key_exact;		/* key holds clusterTime for bigint/numeric */
	const char **key_field;		/* per key: its event field */
	int		   *id_keys;		/* keys of the projection's "_id" */
	int			n_id_keys;
} QleafEventConv;

extern void qleaf_event_conv_init(QleafEventConv *ec, int natts, int nkeys);
extern void qleaf_event_conv_column(QleafEventConv *ec, int k, int att,
									Oid typid, int32 typmod,
									const char *colname, const char *field,
									bool null_on_error);

/*
 * Fill values/isnull (natts entries) from an event.  With extract, each
 * key's field is read from the event; without, from the keys c0, c1, ...
 * of a projected event (and "_id").
 */
extern void qleaf_event_to_row(QleafEventConv *ec, const bson_t *doc,
							   bool extract, Datum *values, bool *isnull,
							   const char *what);

/* The event field of a standard changes-table column name, or NULL. */
extern const char *qleaf_changes_standard_field(const char *colname);

#endif							/* QLEAF_CHANGES_H */

/*-------------------------------------------------------------------------
 *
 * connection.h
 *		  libmongoc client cache and error reporting for qleaf_fdw
 *
 * One mongoc_client_t per user mapping per backend, cached for the life
 * of the backend, dropped when its server or user mapping changes.  The
 * client's network streams wait in short slices and give up as soon as a
 * query cancel, statement_timeout or termination is pending, so libmongoc
 * never keeps the backend deaf to interrupts.
 *
 * Credentials (username, password, auth_source, auth_mechanism) come from
 * the user mapping only.  Unless the server's URI sets them,
 * connectTimeoutMS and serverSelectionTimeoutMS are 5000 ms (libmongoc's
 * defaults are 10 s and 30 s); the application name is "qleaf_fdw".
 *
 *-------------------------------------------------------------------------
 */
#ifndef QLEAF_CONNECTION_H
#define QLEAF_CONNECTION_H

#include "postgres.h"

#include <mongoc/mongoc.h>

#include "foreign/foreign.h"

typedef struct QleafConn QleafConn;

/*
 * Get (or open) the cached connection for this user mapping.  The first
 * use pings the server so unreachable servers and bad credentials fail
 * here with a clear ERROR.  Every qleaf_get_connection must be paired
 * with qleaf_release_connection, normally from a memory context reset
 * callback so that an ERROR releases it too.  Destroy every libmongoc
 * object made from the client (cursors, collections) before releasing:
 * a connection that was invalidated, lost or cut by a cancel is destroyed
 * when its last user releases it.
 */
extern QleafConn *qleaf_get_connection(UserMapping *user, ForeignServer *server);
extern void qleaf_release_connection(QleafConn *conn);
extern mongoc_client_t *qleaf_conn_client(QleafConn *conn);

/*
 * One more reference to a connection already held, for an owner that
 * outlives its statement (a MongoDB transaction keeps its client until
 * the PostgreSQL transaction ends); paired with qleaf_release_connection.
 */
extern void qleaf_conn_retain(QleafConn *conn);

/* The foreign server's name, for messages. */
extern const char *qleaf_conn_server_name(QleafConn *conn);

/*
 * Report a libmongoc failure.  Checks for a pending interrupt first (so a
 * cancel reports as a cancel, not as a network error), then raises
 * ereport(elevel) with an SQLSTATE chosen from the error's domain/code,
 * MongoDB's message in the detail, the server named, and context naming
 * what was being done.  what is the context line as it is shown, e.g.
 * "while running aggregate on collection \"db.coll\""; NULL for none.
 * reply may be NULL.  Never shows a password.  Network and
 * authentication failures mark the connection broken: it is replaced
 * once released.
 */
extern void qleaf_report_error(int elevel, QleafConn *conn,
							   const bson_error_t *error,
							   const bson_t *reply, const char *what);

/*
 * "MongoDB error CODE (CodeName): message", palloc'd, as error details show
 * a MongoDB error; codename may be NULL or empty (the name is then known
 * only for the codes a user must recognize, e.g. 13 Unauthorized).
 */
extern char *qleaf_mongo_error_text(uint32 code, const char *codename,
									const char *message);

/*
 * Round trips and reply bytes seen on this connection since it was
 * opened, counted from libmongoc's command monitoring (aggregate, find,
 * getMore replies).  A scan reads them before and after to report
 * batches and bytes in EXPLAIN ANALYZE.
 */
typedef struct QleafConnStats
{
	uint64		round_trips;
	uint64		bytes_received;
} QleafConnStats;

extern const QleafConnStats *qleaf_conn_stats(QleafConn *conn);

/* Called from _PG_init. */
extern void qleaf_connection_init(void);

#endif							/* QLEAF_CONNECTION_H */

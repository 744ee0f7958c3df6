/*-------------------------------------------------------------------------
 *
 * modify.h
 *		  INSERT / UPDATE / DELETE / COPY on foreign tables, and the MongoDB
 *		  transactions that follow PostgreSQL's
 *
 *-------------------------------------------------------------------------
 */
#ifndef QLEAF_MODIFY_H
#define QLEAF_MODIFY_H

#include "postgres.h"

#include <mongoc/mongoc.h>

#include "connection.h"
#include "foreign/fdwapi.h"

/* in modify.c: fill in the modify callbacks of the handler */
extern void qleaf_modify_routines(FdwRoutine *routine);

/* in xact.c */

/*
 * The session a write on conn runs in: the PostgreSQL transaction's
 * MongoDB transaction, started on the first write.  The transaction holds
 * a reference to conn until PostgreSQL's transaction ends.
 */
extern mongoc_client_session_t *qleaf_xact_write_session(QleafConn *conn);

/*
 * The session a read on conn should use: the open MongoDB transaction of
 * this PostgreSQL transaction, if it wrote through conn; else NULL.
 */
extern mongoc_client_session_t *qleaf_xact_read_session(QleafConn *conn);

/* Refuse a write when an earlier rollback undid this transaction's MongoDB part. */
extern void qleaf_xact_check_usable(void);

#endif							/* QLEAF_MODIFY_H */

/*-------------------------------------------------------------------------
 *
 * costs.c
 *		  size and cost estimates of foreign scans, and ANALYZE's sample
 *
 * What the planner needs to know about a collection comes from the
 * server once per planning, in two round trips: its document count and
 * average document size (collStats, else estimatedDocumentCount), and
 * the fields that lead an index (listIndexes).  The answers are cached for the rest of the planning
 * (all paths, all references to the same collection); the cache dies
 * with the planner's memory.  A table that was ANALYZEd takes its
 * document count from pg_class and asks the server only for its indexes.
 *
 * The selectivity of conditions comes from PostgreSQL's own statistics
 * (clauselist_selectivity: ANALYZE's histograms when ANALYZE ran, the
 * built-in defaults otherwise), separately for the conditions MongoDB
 * evaluates (they decide how many documents cross the network) and those
 * PostgreSQL checks.
 *
 * The cost of a scan, in the planner's units:
 *
 *   startup  = fdw_startup_cost                      (the first round trip)
 *   + (round trips - 1) * fdw_startup_cost           (getMores)
 *   + examined * cpu_operator_cost                   (MongoDB's $match)
 *   + transferred * (fdw_tuple_cost + cpu_tuple_cost + local quals)
 *   + rows * (output expressions)
 *
 * where "examined" is the whole collection, unless a shipped condition
 * on a field that leads an index lets MongoDB read only what matches.
 * That is what makes a parameterized nested loop (one pipeline per outer
 * row) win over a hash join on a full scan only when its lookups are
 * cheap: a few outer rows, or an indexed join field.
 *
 * ANALYZE samples with $sample (MongoDB picks the documents and sends only
 * those) and reports the server's document count as the table's total.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "qleaf_fdw.h"

#include "access/htup_details.h"
#include "commands/vacuum.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "parser/parsetree.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

/* MongoDB's cap on a reply: a batch never carries more than this. */
#define QLEAF_MAX_REPLY_BYTES	(16 * 1024 * 1024)
/* The server's first batch when no batch size is set. */
#define QLEAF_FIRST_BATCH		101
/* Documents per getMore when no batch size is set (as scan.c asks). */
#define QLEAF_GETMORE_BATCH		10000

/*
 * What the server said about one collection during this planning.
 */
typedef struct CollectionStats
{
	Oid			serverid;
	Oid			umid;
	char	   *database;
	char	   *collection;
	double		count;			/* documents, -1 if unknown */
	double		avg_size;		/* bytes per document, 0 if unknown */
	bool		have_count;		/* count (and size) were asked for */
	List	   *index_keys;		/* String: the leading field of each index */
} CollectionStats;

/*
 * The cache of one planning: identified by its PlannerGlobal, freed with
 * the memory context it lives in.
 */
typedef struct StatsCache
{
	PlannerGlobal *glob;
	MemoryContext cxt;
	MemoryContextCallback cb;
	List	   *entries;		/* CollectionStats */
} StatsCache;

static StatsCache *stats_cache = NULL;

static void
stats_cache_forget(void *arg)
{
	if (stats_cache == (StatsCache *) arg)
		stats_cache = NULL;
}

/*
 * A connection and the libmongoc objects made from it, all freed when
 * the owning memory context goes, so that an ERROR (or a cancel) in the
 * middle of a command leaks nothing.
 */
struct QleafRemote
{
	MemoryContext cxt;
	MemoryContextCallback cb;
	QleafConn  *conn;
	mongoc_database_t *db;
	mongoc_collection_t *coll;
	mongoc_cursor_t *cursor;
	char	   *what;
};

static void
remote_cleanup(void *arg)
{
	QleafRemote *r = (QleafRemote *) arg;

	if (r->cursor != NULL)
	{
		mongoc_cursor_t *c = r->cursor;

		r->cursor = NULL;
		mongoc_cursor_destroy(c);
	}
	if (r->coll != NULL)
	{
		mongoc_collection_t *c = r->coll;

		r->coll = NULL;
		mongoc_collection_destroy(c);
	}
	if (r->db != NULL)
	{
		mongoc_database_t *d = r->db;

		r->db = NULL;
		mongoc_database_destroy(d);
	}
	if (r->conn != NULL)
	{
		QleafConn  *c = r->conn;

		r->conn = NULL;
		qleaf_release_connection(c);
	}
}

/*
 * Open a database (collection NULL) or a collection of it for a few
 * commands.  Everything is owned by a new child of CurrentMemoryContext.
 */
QleafRemote *
qleaf_remote_open(ForeignServer *server, UserMapping *user,
				  const char *database, const char *collection)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "qleaf_fdw remote",
											  ALLOCSET_SMALL_SIZES);
	QleafRemote *r = MemoryContextAllocZero(cxt, sizeof(QleafRemote));

	r->cxt = cxt;
	r->cb.func = remote_cleanup;
	r->cb.arg = r;
	MemoryContextRegisterResetCallback(cxt, &r->cb);
	r->conn = qleaf_get_connection(user, server);
	if (collection != NULL)
		r->coll = mongoc_client_get_collection(qleaf_conn_client(r->conn),
											   database, collection);
	else
		r->db = mongoc_client_get_database(qleaf_conn_client(r->conn),
										   database);
	return r;
}

void
qleaf_remote_close(QleafRemote *r)
{
	MemoryContextDelete(r->cxt);
}

mongoc_client_t *
qleaf_remote_client(QleafRemote *r)
{
	return qleaf_conn_client(r->conn);
}

QleafConn *
qleaf_remote_conn(QleafRemote *r)
{
	return r->conn;
}

mongoc_database_t *
qleaf_remote_database(QleafRemote *r)
{
	return r->db;
}

mongoc_collection_t *
qleaf_remote_collection(QleafRemote *r)
{
	return r->coll;
}

/*
 * Make cursor the remote's current cursor (destroying the previous one):
 * it is then destroyed with the remote, ERROR or not.
 */
void
qleaf_remote_set_cursor(QleafRemote *r, mongoc_cursor_t *cursor)
{
	if (r->cursor != NULL)
	{
		mongoc_cursor_t *c = r->cursor;

		r->cursor = NULL;
		mongoc_cursor_destroy(c);
	}
	r->cursor = cursor;
}

/*
 * Next document of the current cursor, or NULL at its end.  A cursor
 * error is an ERROR at elevel ERROR; at a lower elevel it is reported at
 * that level (DEBUG1 for an estimate we can do without) and ends the
 * cursor, and *failed is set.
 */
const bson_t *
qleaf_remote_next(QleafRemote *r, int elevel, const char *what, bool *failed)
{
	const bson_t *doc;
	bson_error_t error;
	const bson_t *reply = NULL;

	if (failed)
		*failed = false;
	if (r->cursor == NULL)
		return NULL;
	if (mongoc_cursor_next(r->cursor, &doc))
		return doc;
	if (mongoc_cursor_error_document(r->cursor, &error, &reply))
	{
		CHECK_FOR_INTERRUPTS();
		if (failed)
			*failed = true;
		if (elevel >= ERROR)
			qleaf_report_error(ERROR, r->conn, &error, reply, what);
		ereport(elevel,
				(errmsg_internal("qleaf_fdw: %s failed: %s", what, error.message)));
	}
	return NULL;
}

/*
 * Ask the server for count and average size (the collStats command, one
 * round trip that reads metadata only).  A view, or a user without the
 * collStats privilege, gets estimatedDocumentCount instead, and failing
 * that nothing.  (The command, not the $collStats stage: an aggregate at
 * planning time would be one more aggregate than the query shows.)
 */
static void
fetch_count(QleafRemote *r, CollectionStats *st)
{
	bson_t	   *cmd;
	bson_t		reply;
	bson_error_t error;
	bson_iter_t it;
	bool		ok;

	st->count = -1;
	st->avg_size = 0;

	cmd = BCON_NEW("collStats", BCON_UTF8(st->collection));
	ok = mongoc_collection_command_simple(r->coll, cmd, NULL, &reply, &error);
	if (ok && bson_iter_init(&it, &reply))
	{
		while (bson_iter_next(&it))
		{
			const char *key = bson_iter_key(&it);

			if (!BSON_ITER_HOLDS_NUMBER(&it))
				continue;
			if (strcmp(key, "count") == 0)
				st->count = (double) bson_iter_as_int64(&it);
			else if (strcmp(key, "avgObjSize") == 0)
				st->avg_size = (double) bson_iter_as_int64(&it);
		}
	}
	/* freed before anything that may ERROR */
	bson_destroy(&reply);
	bson_destroy(cmd);
	if (!ok)
	{
		CHECK_FOR_INTERRUPTS();
		ereport(DEBUG1,
				(errmsg_internal("qleaf_fdw: collStats failed for \"%s.%s\": %s",
								 st->database, st->collection, error.message)));
	}

	if (st->count < 0)
	{
		int64		n;

		n = mongoc_collection_estimated_document_count(r->coll, NULL, NULL,
													   NULL, &error);
		if (n < 0)
		{
			CHECK_FOR_INTERRUPTS();
			ereport(DEBUG1,
					(errmsg_internal("qleaf_fdw: no document count for \"%s.%s\": %s",
									 st->database, st->collection,
									 error.message)));
		}
		else
			st->count = (double) n;
	}
	st->have_count = true;
}

/* The leading field of each index (a missing collection has none). */
static void
fetch_indexes(QleafRemote *r, CollectionStats *st)
{
	const bson_t *doc;
	char	   *what = psprintf("listIndexes on collection \"%s.%s\"",
								st->database, st->collection);

	qleaf_remote_set_cursor(r, mongoc_collection_find_indexes_with_opts(r->coll,
																		NULL));
	while ((doc = qleaf_remote_next(r, DEBUG1, what, NULL)) != NULL)
	{
		bson_iter_t it;
		bson_iter_t key;

		if (bson_iter_init_find(&it, doc, "key") &&
			BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &key) &&
			bson_iter_next(&key))
		{
			/* text and hashed indexes do not serve comparisons */
			if (BSON_ITER_HOLDS_UTF8(&key))
				continue;
			st->index_keys = lappend(st->index_keys,
									 makeString(MemoryContextStrdup(stats_cache->cxt,
																	bson_iter_key(&key))));
		}
	}
	qleaf_remote_set_cursor(r, NULL);
}

/*
 * The cached stats of the collection a relation reads, asking the server
 * for what is missing (need_count: the document count too).
 */
static CollectionStats *
collection_stats(PlannerInfo *root, QleafRelInfo *fpinfo, bool need_count)
{
	CollectionStats *st = NULL;
	ListCell   *lc;
	MemoryContext oldcxt;
	QleafRemote *r;

	if (stats_cache == NULL || stats_cache->glob != root->glob)
	{
		StatsCache *c = palloc0(sizeof(StatsCache));

		c->glob = root->glob;
		c->cxt = CurrentMemoryContext;
		c->cb.func = stats_cache_forget;
		c->cb.arg = c;
		MemoryContextRegisterResetCallback(CurrentMemoryContext, &c->cb);
		stats_cache = c;
	}

	foreach(lc, stats_cache->entries)
	{
		CollectionStats *e = (CollectionStats *) lfirst(lc);

		if (e->serverid == fpinfo->server->serverid &&
			e->umid == fpinfo->user->umid &&
			strcmp(e->database, fpinfo->opts.database) == 0 &&
			strcmp(e->collection, fpinfo->opts.collection) == 0)
		{
			st = e;
			break;
		}
	}
	if (st != NULL && (st->have_count || !need_count))
		return st;

	oldcxt = MemoryContextSwitchTo(stats_cache->cxt);
	if (st == NULL)
	{
		st = palloc0(sizeof(CollectionStats));
		st->serverid = fpinfo->server->serverid;
		st->umid = fpinfo->user->umid;
		st->database = pstrdup(fpinfo->opts.database);
		st->collection = pstrdup(fpinfo->opts.collection);
		st->count = -1;
		r = qleaf_remote_open(fpinfo->server, fpinfo->user, st->database,
							  st->collection);
		fetch_indexes(r, st);
		stats_cache->entries = lappend(stats_cache->entries, st);
	}
	else
		r = qleaf_remote_open(fpinfo->server, fpinfo->user, st->database,
							  st->collection);
	if (need_count)
		fetch_count(r, st);
	qleaf_remote_close(r);
	MemoryContextSwitchTo(oldcxt);
	return st;
}

/*
 * True if clause compares a column whose field leads one of the
 * collection's indexes: MongoDB then reads only what matches.
 */
static bool
clause_uses_index(PlannerInfo *root, RelOptInfo *baserel, List *index_keys,
				  Expr *clause)
{
	List	   *args;
	ListCell   *lc;
	Oid			relid = planner_rt_fetch(baserel->relid, root)->relid;

	if (IsA(clause, OpExpr))
		args = ((OpExpr *) clause)->args;
	else if (IsA(clause, ScalarArrayOpExpr))
		args = ((ScalarArrayOpExpr *) clause)->args;
	else
		return false;

	foreach(lc, args)
	{
		Expr	   *e = (Expr *) lfirst(lc);
		Var		   *var;
		char	   *colname;
		char	   *field;
		bool		dummy = false;
		ListCell   *lk;

		while (IsA(e, RelabelType))
			e = ((RelabelType *) e)->arg;
		if (!IsA(e, Var))
			continue;
		var = (Var *) e;
		if (var->varno != (int) baserel->relid || var->varattno <= 0)
			continue;
		colname = get_attname(relid, var->varattno, false);
		field = qleaf_get_column_field(relid, var->varattno, colname, &dummy);
		if (strcmp(field, "_id") == 0)
			return true;
		foreach(lk, index_keys)
		{
			if (strcmp(strVal(lfirst(lk)), field) == 0)
				return true;
		}
	}
	return false;
}

/*
 * The cost of fetching "transferred" documents matched by the shipped
 * conditions "remote" out of ntuples, of which "rows" pass the local
 * conditions.
 */
static void
scan_cost(PlannerInfo *root, RelOptInfo *baserel, QleafRelInfo *fpinfo,
		  List *remote, double ntuples, double transferred, double rows,
		  Cost *startup_cost, Cost *total_cost)
{
	QualCost	local_cost;
	double		examined = ntuples;
	double		per_batch;
	double		first;
	double		round_trips;
	int			batch_size;
	ListCell   *lc;

	/* MongoDB reads only the matching documents through an index */
	foreach(lc, remote)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);

		if (clause_uses_index(root, baserel, fpinfo->index_keys, ri->clause))
		{
			examined = transferred;
			break;
		}
	}

	batch_size = fpinfo->opts.batch_size > 0 ? fpinfo->opts.batch_size :
		qleaf_batch_size;
	if (batch_size > 0)
		first = per_batch = batch_size;
	else
	{
		first = QLEAF_FIRST_BATCH;
		per_batch = QLEAF_GETMORE_BATCH;
	}
	if (fpinfo->avg_size > 0)
	{
		double		fit = Max(1.0, floor(QLEAF_MAX_REPLY_BYTES / fpinfo->avg_size));

		per_batch = Min(per_batch, fit);
		first = Min(first, fit);
	}
	round_trips = 1;
	if (transferred > first)
		round_trips += ceil((transferred - first) / per_batch);

	cost_qual_eval(&local_cost, fpinfo->local_conds, root);
	*startup_cost = fpinfo->fdw_startup_cost + local_cost.startup +
		baserel->reltarget->cost.startup;
	*total_cost = *startup_cost +
		(round_trips - 1) * fpinfo->fdw_startup_cost +
		examined * cpu_operator_cost +
		transferred * (fpinfo->fdw_tuple_cost + cpu_tuple_cost +
					   local_cost.per_tuple) +
		rows * baserel->reltarget->cost.per_tuple;
}

/*
 * Estimate rows, width and cost of a plain scan of baserel, whose
 * conditions are already split into fpinfo->remote_conds and
 * local_conds.
 */
void
qleaf_estimate_rel_size(PlannerInfo *root, RelOptInfo *baserel,
						QleafRelInfo *fpinfo)
{
	CollectionStats *st;
	double		ntuples;
	Selectivity remote_sel;
	Selectivity local_sel;

	fpinfo->fdw_startup_cost = fpinfo->opts.fdw_startup_cost;
	fpinfo->fdw_tuple_cost = fpinfo->opts.fdw_tuple_cost;

	/*
	 * Documents in the collection: from ANALYZE if it ran (reltuples is -1
	 * until then), else from the server, else a default.
	 */
	st = collection_stats(root, fpinfo, baserel->tuples < 0);
	fpinfo->index_keys = st->index_keys;
	fpinfo->avg_size = st->avg_size;
	if (baserel->tuples >= 0)
		ntuples = baserel->tuples;
	else
	{
		ntuples = st->count >= 0 ? st->count : QLEAF_DEFAULT_ROWS;
		baserel->tuples = ntuples;
	}

	remote_sel = clauselist_selectivity(root, fpinfo->remote_conds,
										baserel->relid, JOIN_INNER, NULL);
	local_sel = clauselist_selectivity(root, fpinfo->local_conds,
									   baserel->relid, JOIN_INNER, NULL);
	fpinfo->retrieved_rows = clamp_row_est(ntuples * remote_sel);
	fpinfo->rows = clamp_row_est(fpinfo->retrieved_rows * local_sel);
	fpinfo->width = baserel->reltarget->width;
	baserel->rows = fpinfo->rows;

	scan_cost(root, baserel, fpinfo, fpinfo->remote_conds, ntuples,
			  fpinfo->retrieved_rows, fpinfo->rows,
			  &fpinfo->startup_cost, &fpinfo->total_cost);
}

/*
 * Rows and cost of a scan parameterized by the join clauses of ppi: those
 * MongoDB can evaluate narrow what it sends.  A nested loop runs it once
 * per outer row.
 */
void
qleaf_estimate_param_path(PlannerInfo *root, RelOptInfo *baserel,
						  ParamPathInfo *ppi, double *rows,
						  Cost *startup_cost, Cost *total_cost)
{
	QleafRelInfo *fpinfo = (QleafRelInfo *) baserel->fdw_private;
	List	   *remote = list_copy(fpinfo->remote_conds);
	ListCell   *lc;
	double		transferred;

	foreach(lc, ppi->ppi_clauses)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);

		if (qleaf_is_foreign_expr(root, baserel, ri->clause))
			remote = lappend(remote, ri);
	}
	transferred = clamp_row_est(baserel->tuples *
								clauselist_selectivity(root, remote,
													   baserel->relid,
													   JOIN_INNER, NULL));
	*rows = ppi->ppi_rows;
	scan_cost(root, baserel, fpinfo, remote, baserel->tuples, transferred,
			  *rows, startup_cost, total_cost);
}

/*
 * The number of documents in a collection, for ANALYZE's total: asked
 * anew (ANALYZE is when the stored count is refreshed).  -1 if the
 * server cannot say.
 */
double
qleaf_collection_count(ForeignServer *server, UserMapping *user,
					   const char *database, const char *collection)
{
	CollectionStats st;
	QleafRemote *r;

	memset(&st, 0, sizeof(st));
	st.database = (char *) database;
	st.collection = (char *) collection;
	r = qleaf_remote_open(server, user, database, collection);
	fetch_count(r, &st);
	qleaf_remote_close(r);
	return st.count;
}

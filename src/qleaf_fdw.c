/*-------------------------------------------------------------------------
 *
 * qleaf_fdw.c
 *		  foreign data wrapper for MongoDB: entry points, planning, EXPLAIN
 *
 * This file holds _PG_init, the handler and the FDW callbacks.  Planning
 * splits the conditions (deparse.c decides what MongoDB may evaluate),
 * has costs.c estimate sizes and costs, and stores the pipeline in the
 * plan's fdw_private list.  The executor side (scan.c) runs that
 * pipeline.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>
#include <malloc.h>

#include "qleaf_fdw.h"
#include "modify.h"
#include "stream.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/explain.h"
#include "commands/vacuum.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"

PG_MODULE_MAGIC;

/* GUCs */
int			qleaf_batch_size = 0;
bool		qleaf_enable_pushdown = true;

void		_PG_init(void);

PG_FUNCTION_INFO_V1(qleaf_fdw_handler);

static void qleafGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
								   Oid foreigntableid);
static void qleafGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel,
								 Oid foreigntableid);
static ForeignScan *qleafGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel,
										Oid foreigntableid,
										ForeignPath *best_path, List *tlist,
										List *scan_clauses, Plan *outer_plan);
static void qleafBeginForeignScan(ForeignScanState *node, int eflags);
static TupleTableSlot *qleafIterateForeignScan(ForeignScanState *node);
static void qleafReScanForeignScan(ForeignScanState *node);
static void qleafEndForeignScan(ForeignScanState *node);
static void qleafExplainForeignScan(ForeignScanState *node, ExplainState *es);
static bool qleafAnalyzeForeignTable(Relation relation,
									 AcquireSampleRowsFunc *func,
									 BlockNumber *totalpages);
static int	qleaf_acquire_sample_rows(Relation relation, int elevel,
									  HeapTuple *rows, int targrows,
									  double *totalrows,
									  double *totaldeadrows);

void
_PG_init(void)
{
	if (IsBinaryUpgrade)
		return;

	/*
	 * libmongoc mallocs a buffer for every reply (a batch of up to 16 MB)
	 * and frees it after the batch.  With glibc's defaults such buffers are
	 * mmap'd, or the heap top is trimmed after them, so every batch pays
	 * page faults on fresh memory: measured, that was a third of the
	 * backend CPU of a scan.  Keep buffers of this size in the heap, and
	 * keep up to 64 MB of free heap top instead of returning it at once.
	 */
	mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
	mongoc_init();
	qleaf_connection_init();

	DefineCustomIntVariable("qleaf_fdw.batch_size",
							"Documents MongoDB returns per round trip of a scan.",
							"0 lets qleaf_fdw choose: the server's first batch (101 documents), then 10000 documents per round trip. "
							"A foreign table's or server's \"batch_size\" option overrides it.",
							&qleaf_batch_size,
							0, 0, INT_MAX,
							PGC_USERSET, 0,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("qleaf_fdw.enable_pushdown",
							 "Lets MongoDB evaluate the conditions it can evaluate exactly.",
							 "When off, every condition is checked by PostgreSQL.",
							 &qleaf_enable_pushdown,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);

	qleaf_join_init();
	qleaf_upper_init();
	DefineCustomIntVariable("qleaf_fdw.stream_await_ms",
							"How long a stream worker waits for change events before storing them.",
							"A getMore on an idle stream waits this long, and a batch is stored once its first event has waited this long: "
							"this bounds the time from a change in MongoDB to its NOTIFY.",
							&qleaf_stream_await_ms,
							50, 10, 10000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomRealVariable("qleaf_fdw.notify_queue_limit",
							 "Notification queue usage above which stream workers pause.",
							 "A fraction of the queue, as pg_notification_queue_usage() reports it.  "
							 "Above it a worker stores nothing more until listeners have read enough.",
							 &qleaf_notify_queue_limit,
							 0.5, 0.0, 1.0,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	qleaf_stream_init();

	MarkGUCPrefixReserved("qleaf_fdw");
}

Datum
qleaf_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = qleafGetForeignRelSize;
	routine->GetForeignPaths = qleafGetForeignPaths;
	routine->GetForeignPlan = qleafGetForeignPlan;
	routine->BeginForeignScan = qleafBeginForeignScan;
	routine->IterateForeignScan = qleafIterateForeignScan;
	routine->ReScanForeignScan = qleafReScanForeignScan;
	routine->EndForeignScan = qleafEndForeignScan;
	routine->ExplainForeignScan = qleafExplainForeignScan;
	routine->AnalyzeForeignTable = qleafAnalyzeForeignTable;
	routine->ImportForeignSchema = qleaf_import_foreign_schema;
	routine->GetForeignJoinPaths = qleaf_get_foreign_join_paths;
	qleaf_modify_routines(routine);
	routine->GetForeignUpperPaths = qleafGetForeignUpperPaths;

	PG_RETURN_POINTER(routine);
}

/*
 * A bson_t freed when cxt is reset or deleted, so that building BSON may
 * be interrupted by an ERROR without leaking it.
 */
typedef struct OwnedBson
{
	MemoryContextCallback cb;
	bson_t	   *bson;
} OwnedBson;

static void
owned_bson_free(void *arg)
{
	OwnedBson  *owned = (OwnedBson *) arg;

	if (owned->bson != NULL)
		bson_destroy(owned->bson);
	owned->bson = NULL;
}

bson_t *
qleaf_bson_new_owned(MemoryContext cxt)
{
	OwnedBson  *owned = MemoryContextAllocZero(cxt, sizeof(OwnedBson));

	owned->cb.func = owned_bson_free;
	owned->cb.arg = owned;
	MemoryContextRegisterResetCallback(cxt, &owned->cb);
	owned->bson = bson_new();
	return owned->bson;
}

/*
 * Append a pipeline (a BSON array of stages) as JSON, in the rendering
 * qleaf_fdw uses everywhere (relaxed Extended JSON).
 */
void
qleaf_append_pipeline_json(StringInfo buf, const bson_t *pipeline)
{
	bson_iter_t iter;
	bool		first = true;

	appendStringInfoChar(buf, '[');
	if (bson_iter_init(&iter, pipeline))
	{
		while (bson_iter_next(&iter))
		{
			if (!first)
				appendStringInfoString(buf, ", ");
			first = false;
			qleaf_append_json_value(buf, &iter);
		}
	}
	appendStringInfoChar(buf, ']');
}

/*
 * Estimate the size of a foreign table scan and split its conditions.
 */
static void
qleafGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
					   Oid foreigntableid)
{
	QleafRelInfo *fpinfo;
	Oid			userid;
	ListCell   *lc;

	fpinfo = palloc0(sizeof(QleafRelInfo));
	baserel->fdw_private = fpinfo;

	fpinfo->table = GetForeignTable(foreigntableid);
	fpinfo->server = GetForeignServer(fpinfo->table->serverid);
	userid = OidIsValid(baserel->userid) ? baserel->userid : GetUserId();
	fpinfo->user = GetUserMapping(userid, fpinfo->server->serverid);
	qleaf_get_table_options(fpinfo->table, fpinfo->server, &fpinfo->opts);
	if (qleaf_is_changes_table(fpinfo->table))
	{
		qleaf_changes_rel_size(root, baserel);
		return;
	}

	qleaf_classify_conditions(root, baserel, baserel->baserestrictinfo,
							  &fpinfo->remote_conds, &fpinfo->local_conds);

	/* the columns to fetch: the output's and those local_conds read */
	fpinfo->attrs_used = NULL;
	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid,
				   &fpinfo->attrs_used);
	foreach(lc, fpinfo->local_conds)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);

		pull_varattnos((Node *) ri->clause, baserel->relid,
					   &fpinfo->attrs_used);
	}

	qleaf_estimate_rel_size(root, baserel, fpinfo);
}

static void
qleafGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel,
					 Oid foreigntableid)
{
	QleafRelInfo *fpinfo = (QleafRelInfo *) baserel->fdw_private;
	ForeignPath *path;
	ListCell   *lc;

	path = create_foreignscan_path(root, baserel,
								   NULL,	/* default pathtarget */
								   fpinfo->rows,
								   fpinfo->startup_cost,
								   fpinfo->total_cost,
								   NIL,		/* no pathkeys */
								   baserel->lateral_relids,
								   NULL,	/* no extra plan */
								   NIL);	/* no fdw_private */
	add_path(baserel, (Path *) path);

	/*
	 * A path parameterized by the other side of each join clause $match
	 * can take: a nested loop then runs the pipeline once per outer row
	 * and receives only the matching documents.
	 */
	foreach(lc, qleaf_pushable_join_clauses(root, baserel))
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		Relids		required_outer;
		ParamPathInfo *ppi;
		double		rows;
		Cost		startup_cost;
		Cost		total_cost;

		required_outer = bms_union(ri->clause_relids, baserel->lateral_relids);
		required_outer = bms_del_member(required_outer, baserel->relid);
		if (bms_is_empty(required_outer))
			continue;
		ppi = get_baserel_parampathinfo(root, baserel, required_outer);
		qleaf_estimate_param_path(root, baserel, ppi, &rows,
								  &startup_cost, &total_cost);
		path = create_foreignscan_path(root, baserel, NULL, rows,
									   startup_cost, total_cost,
									   NIL, required_outer, NULL, NIL);
		add_path(baserel, (Path *) path);
	}

	/* a path MongoDB sorts, for ORDER BY */
	qleaf_add_sorted_paths(root, baserel);
}

static ForeignScan *
qleafGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel,
					Oid foreigntableid, ForeignPath *best_path,
					List *tlist, List *scan_clauses, Plan *outer_plan)
{
	QleafRelInfo *fpinfo;
	List	   *remote_conds = NIL;
	List	   *remote_exprs = NIL;
	List	   *local_exprs = NIL;
	List	   *local_reasons = NIL;
	List	   *param_exprs;
	List	   *retrieved_attrs;
	List	   *fields;
	List	   *fdw_private;
	ListCell   *lc;
	Relation	rel;
	bytea	   *pipeline;
	Bitmapset  *attrs_used;
	bson_t	   *sort_stages = NULL;

	/* grouped or limited: upper.c */
	if (IS_UPPER_REL(baserel))
		return qleaf_upper_plan(root, baserel, tlist, outer_plan);
	if (IS_JOIN_REL(baserel))
		return qleaf_join_plan(root, baserel, best_path, tlist, scan_clauses,
							   outer_plan);

	fpinfo = (QleafRelInfo *) baserel->fdw_private;
	if (qleaf_is_changes_table(fpinfo->table))
		return qleaf_changes_plan(root, baserel, tlist, scan_clauses,
								  outer_plan);

	/*
	 * Classify scan_clauses (join clauses of a parameterized path too): an
	 * exact condition is only shipped, a lossy one shipped and rechecked,
	 * an unsafe one only checked here; the reason of each local condition
	 * goes to EXPLAIN VERBOSE.
	 */
	foreach(lc, scan_clauses)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);

		if (ri->pseudoconstant)
			continue;
		qleaf_place_clause(root, baserel, ri, &remote_conds, &remote_exprs,
						   &local_exprs, &local_reasons);
	}

	/*
	 * Fetch what the output and the local conditions read, and the columns
	 * of shipped conditions, so that their conversion errors are raised.
	 */
	attrs_used = bms_copy(fpinfo->attrs_used);
	foreach(lc, local_exprs)
		pull_varattnos((Node *) lfirst(lc), baserel->relid, &attrs_used);
	qleaf_add_condition_columns(baserel, remote_exprs, &attrs_used);

	if (best_path->path.pathkeys != NIL)
		sort_stages = qleaf_sort_stages(root, baserel, best_path->path.pathkeys);

	rel = table_open(foreigntableid, NoLock);
	pipeline = qleaf_build_pipeline_with(root, baserel, rel, attrs_used,
										 remote_conds, sort_stages,
										 &retrieved_attrs, &fields,
										 &param_exprs);
	table_close(rel, NoLock);

	fdw_private = NIL;
	fdw_private = lappend(fdw_private,
						  makeConst(BYTEAOID, -1, InvalidOid, -1,
									PointerGetDatum(pipeline), false, false));
	fdw_private = lappend(fdw_private, retrieved_attrs);
	fdw_private = lappend(fdw_private, fields);
	fdw_private = lappend(fdw_private, makeString(fpinfo->opts.database));
	fdw_private = lappend(fdw_private, makeString(fpinfo->opts.collection));
	fdw_private = lappend(fdw_private, makeInteger(fpinfo->opts.batch_size));
	fdw_private = lappend(fdw_private, local_reasons);
	fdw_private = lappend(fdw_private, qleaf_join_refusals(root, baserel));
	fdw_private = lappend(fdw_private,
						  qleaf_kept_local(root, baserel,
										   best_path->path.pathkeys));

	return make_foreignscan(tlist,
							local_exprs,
							baserel->relid,
							param_exprs,	/* values of $match placeholders */
							fdw_private,
							NIL,	/* no custom tlist */
							remote_exprs,
							outer_plan);
}

static bytea *
plan_pipeline(List *fdw_private)
{
	Const	   *c = list_nth_node(Const, fdw_private, FdwScanPrivatePipeline);

	return DatumGetByteaPP(c->constvalue);
}

static void
qleafBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	List	   *fdw_private = fsplan->fdw_private;
	EState	   *estate = node->ss.ps.state;
	Relation	rel = node->ss.ss_currentRelation;
	QleafScanState *state;
	RangeTblEntry *rte;
	Oid			userid;
	ForeignTable *table;
	ForeignServer *server;
	UserMapping *user;
	QleafTableOptions opts;
	int			batch_size;
	bytea	   *pipeline;

	if (qleaf_is_changes_plan(fsplan))
	{
		qleaf_changes_begin(node, eflags);
		return;
	}

	state = palloc0(sizeof(QleafScanState));
	node->fdw_state = state;

	/* a grouped or limited scan (upper.c) */
	if (fsplan->scan.scanrelid == 0 && !qleaf_is_join_plan(fsplan))
	{
		qleaf_upper_begin(node, eflags, state);
		return;
	}

	/* EXPLAIN without ANALYZE needs only the plan */
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	batch_size = intVal(list_nth(fdw_private, FdwScanPrivateBatchSize));
	if (batch_size <= 0)
		batch_size = qleaf_batch_size;

	/*
	 * Values the pipeline's $match needs are computed once per scan, at
	 * its first row (as postgres_fdw does: an initplan's value may not be
	 * ready yet here).
	 */
	pipeline = plan_pipeline(fdw_private);
	if (fsplan->fdw_exprs != NIL)
	{
		state->param_states = ExecInitExprList(fsplan->fdw_exprs,
											   (PlanState *) node);
		state->params_pending = true;
	}

	if (qleaf_is_join_plan(fsplan))
	{
		state->scan = qleaf_join_scan_begin(node, pipeline, batch_size);
		return;
	}

	rte = exec_rt_fetch(fsplan->scan.scanrelid, estate);
	userid = OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
	table = GetForeignTable(RelationGetRelid(rel));
	server = GetForeignServer(table->serverid);
	user = GetUserMapping(userid, server->serverid);
	qleaf_get_table_options(table, server, &opts);

	state->scan = qleaf_scan_begin(rel, server, user,
								   strVal(list_nth(fdw_private, FdwScanPrivateDatabase)),
								   strVal(list_nth(fdw_private, FdwScanPrivateCollection)),
								   pipeline,
								   (List *) list_nth(fdw_private, FdwScanPrivateRetrievedAttrs),
								   (List *) list_nth(fdw_private, FdwScanPrivateFields),
								   batch_size, opts.null_on_error,
								   estate->es_query_cxt);
}

/*
 * Return the next row.  Values are built in the scan's row arena or in the
 * per-tuple memory, which the executor resets before it asks for the next
 * row: either way they live until then.
 */
static TupleTableSlot *
qleafIterateForeignScan(ForeignScanState *node)
{
	QleafScanState *state = (QleafScanState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	MemoryContext oldcxt;

	if (qleaf_is_changes_plan((ForeignScan *) node->ss.ps.plan))
		return qleaf_changes_iterate(node);

	if (state->params_pending)
	{
		bytea	   *pipeline;

		pipeline = qleaf_fill_pipeline(plan_pipeline(((ForeignScan *) node->ss.ps.plan)->fdw_private),
									   state->param_states,
									   node->ss.ps.ps_ExprContext);
		qleaf_scan_set_pipeline(state->scan, pipeline);
		pfree(pipeline);
		state->params_pending = false;
	}
	if (state->upper != NULL)
		return qleaf_upper_iterate(node, state);

	ExecClearTuple(slot);
	oldcxt = MemoryContextSwitchTo(node->ss.ps.ps_ExprContext->ecxt_per_tuple_memory);
	if (qleaf_scan_next(state->scan, slot->tts_values, slot->tts_isnull))
		ExecStoreVirtualTuple(slot);
	MemoryContextSwitchTo(oldcxt);
	return slot;
}

static void
qleafReScanForeignScan(ForeignScanState *node)
{
	QleafScanState *state = (QleafScanState *) node->fdw_state;

	if (qleaf_is_changes_plan((ForeignScan *) node->ss.ps.plan))
	{
		qleaf_changes_rescan(node);
		return;
	}
	if (state->scan == NULL)
		return;
	if (state->param_states != NIL)
		state->params_pending = true;
	qleaf_upper_rescan(state);
	qleaf_scan_rescan(state->scan);
}

static void
qleafEndForeignScan(ForeignScanState *node)
{
	QleafScanState *state = (QleafScanState *) node->fdw_state;

	if (qleaf_is_changes_plan((ForeignScan *) node->ss.ps.plan))
	{
		qleaf_changes_end(node);
		return;
	}
	if (state == NULL || state->scan == NULL)
		return;
	state->counters = *qleaf_scan_counters(state->scan);
	qleaf_scan_end(state->scan);
	state->scan = NULL;
}

static void
qleafExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	List	   *fdw_private = ((ForeignScan *) node->ss.ps.plan)->fdw_private;
	QleafScanState *state = (QleafScanState *) node->fdw_state;

	if (qleaf_is_changes_plan((ForeignScan *) node->ss.ps.plan))
	{
		qleaf_changes_explain(node, es);
		return;
	}
	if (qleaf_is_join_plan((ForeignScan *) node->ss.ps.plan))
		qleaf_join_explain(node, es);
	ExplainPropertyText("Collection",
						psprintf("%s.%s",
								 strVal(list_nth(fdw_private, FdwScanPrivateDatabase)),
								 strVal(list_nth(fdw_private, FdwScanPrivateCollection))),
						es);

	if (es->verbose)
	{
		bytea	   *pipeline = plan_pipeline(fdw_private);
		bson_t		stages;
		StringInfoData json;

		if (!bson_init_static(&stages, (const uint8_t *) VARDATA_ANY(pipeline),
							  VARSIZE_ANY_EXHDR(pipeline)))
			elog(ERROR, "qleaf_fdw: invalid pipeline in plan");
		initStringInfo(&json);
		qleaf_append_pipeline_json(&json, &stages);
		ExplainPropertyText("Pipeline", json.data, es);

		/* why each condition of the Filter line is checked here */
		if (list_length(fdw_private) > FdwScanPrivateLocalReasons)
		{
			List	   *reasons = NIL;
			ListCell   *lc;

			foreach(lc, (List *) list_nth(fdw_private, FdwScanPrivateLocalReasons))
				reasons = lappend(reasons, strVal(lfirst(lc)));
			if (reasons != NIL)
				ExplainPropertyList("Local Filter Reasons", reasons, es);
		}
		if (!qleaf_is_join_plan((ForeignScan *) node->ss.ps.plan))
			qleaf_join_explain_refusals(fdw_private, es);

		/* what the query asked for that PostgreSQL does, and why */
		if (list_length(fdw_private) > FdwScanPrivateKeptLocal)
		{
			List	   *notes = NIL;
			ListCell   *lc;

			foreach(lc, (List *) list_nth(fdw_private, FdwScanPrivateKeptLocal))
				notes = lappend(notes, strVal(lfirst(lc)));
			if (notes != NIL)
				ExplainPropertyList("Kept Local", notes, es);
		}
	}

	if (es->analyze && state != NULL)
	{
		const QleafScanCounters *c = state->scan != NULL ?
		qleaf_scan_counters(state->scan) : &state->counters;

		ExplainPropertyUInteger("Documents Received", NULL, c->documents, es);
		ExplainPropertyUInteger("Batches", NULL, c->batches, es);
		ExplainPropertyUInteger("Bytes Received", NULL, c->bytes, es);
	}
}

static bool
qleafAnalyzeForeignTable(Relation relation, AcquireSampleRowsFunc *func,
						 BlockNumber *totalpages)
{
	/* a change stream has no contents to sample */
	if (qleaf_is_changes_table(GetForeignTable(RelationGetRelid(relation))))
		return false;
	*func = qleaf_acquire_sample_rows;
	*totalpages = 1;
	return true;
}

/*
 * Sample rows for ANALYZE with $sample: MongoDB picks targrows documents
 * and sends only those, never the whole collection.  The total comes
 * from the server's document count.
 */
static int
qleaf_acquire_sample_rows(Relation relation, int elevel, HeapTuple *rows,
						  int targrows, double *totalrows,
						  double *totaldeadrows)
{
	ForeignTable *table = GetForeignTable(RelationGetRelid(relation));
	ForeignServer *server = GetForeignServer(table->serverid);
	UserMapping *user = GetUserMapping(relation->rd_rel->relowner,
									   server->serverid);
	TupleDesc	tupdesc = RelationGetDescr(relation);
	QleafTableOptions opts;
	List	   *retrieved_attrs;
	List	   *fields;
	bytea	   *pipeline;
	QleafScan  *scan;
	MemoryContext rowcxt;
	MemoryContext oldcxt;
	Datum	   *values;
	bool	   *isnull;
	int			nrows = 0;
	double		count;

	qleaf_get_table_options(table, server, &opts);
	pipeline = qleaf_build_sample_pipeline(relation, targrows,
										   &retrieved_attrs, &fields);
	scan = qleaf_scan_begin(relation, server, user, opts.database,
							opts.collection, pipeline, retrieved_attrs,
							fields,
							opts.batch_size > 0 ? opts.batch_size : qleaf_batch_size,
							opts.null_on_error, CurrentMemoryContext);

	values = palloc(sizeof(Datum) * tupdesc->natts);
	isnull = palloc(sizeof(bool) * tupdesc->natts);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "qleaf_fdw analyze row",
								   ALLOCSET_DEFAULT_SIZES);

	while (nrows < targrows)
	{
		bool		found;

		vacuum_delay_point();
		MemoryContextReset(rowcxt);
		oldcxt = MemoryContextSwitchTo(rowcxt);
		found = qleaf_scan_next(scan, values, isnull);
		MemoryContextSwitchTo(oldcxt);
		if (!found)
			break;
		rows[nrows++] = heap_form_tuple(tupdesc, values, isnull);
	}
	qleaf_scan_end(scan);
	MemoryContextDelete(rowcxt);

	/* fewer documents than asked for: that is the whole collection */
	count = nrows;
	if (nrows >= targrows)
	{
		count = qleaf_collection_count(server, user, opts.database,
									   opts.collection);
		if (count < nrows)
			count = nrows;
	}
	*totalrows = count;
	*totaldeadrows = 0;

	ereport(elevel,
			(errmsg("\"%s\": sampled %d documents of collection \"%s.%s\", about %.0f in all",
					RelationGetRelationName(relation), nrows,
					opts.database, opts.collection, count)));
	return nrows;
}

/*-------------------------------------------------------------------------
 *
 * changes.c
 *		  changes tables: a MongoDB change stream read as rows
 *
 * A foreign table with the option changes 'true' reads the change stream
 * of its collection (option "collection"), or of its whole database when
 * no collection is given.  Each row is one change event.
 *
 * Columns.  A column maps the event field its "field" option names, else
 * the standard field of its name:
 *
 *	 resume_token		_id._data (text; tokens sort in event order)
 *	 operation_type		operationType
 *	 database, collection	ns.db, ns.coll
 *	 document_key		documentKey
 *	 full_document		fullDocument
 *	 full_document_before_change	fullDocumentBeforeChange
 *	 updated_fields		updateDescription.updatedFields
 *	 removed_fields		updateDescription.removedFields
 *	 truncated_arrays	updateDescription.truncatedArrays
 *	 cluster_time		clusterTime (timestamptz: whole seconds)
 *	 cluster_timestamp	clusterTime (bigint or numeric: secs * 2^32 + inc,
 *						the exact BSON Timestamp, sortable)
 *	 wall_time, txn_number, lsid	wallTime, txnNumber, lsid
 *
 * Any other name is a field of the event, like any column of an ordinary
 * table ('fullDocument.stockLevel').  Values convert as in table scans
 * (convert.c); a column of type bigint or numeric mapped to clusterTime
 * gets the exact Timestamp.
 *
 * Start position, from the query:
 *	 resume_token > x				resumeAfter {_data: x}
 *	 resume_token >= x				startAtOperationTime of x's cluster time
 *	 cluster_timestamp >= / > n		startAtOperationTime, exactly
 *	 cluster_time >= / > t			startAtOperationTime of t's second
 * x, n and t may be constants, parameters or uncorrelated subqueries; they
 * are evaluated when the scan starts.  A NULL start value returns no rows,
 * as the comparison would.  Without such a condition the stream starts
 * "start_lookback" (a table option, an interval, default 1 hour) before the
 * server's current time; a window of 0 reads nothing.  Start conditions
 * stay in the query's filter, so a start point that is rounded down never
 * returns extra rows.  A collection dropped (or renamed) inside the window
 * ends the stream at the drop, as MongoDB does: start after it.  EXPLAIN
 * VERBOSE shows the start point of a constant exactly, else what the scan
 * computes it from.
 *
 * End: when the scan starts it asks the server for its current operation
 * time, and reads until the stream has passed it (an event later than it,
 * or an empty batch whose postBatchResumeToken is at or after it); then
 * the scan ends.  Events written while the scan runs are left for the next
 * one.  LIMIT ends the scan early.  An invalidate event (the collection
 * was dropped or renamed) is the last row.
 *
 * Other conditions go into the stream's $match by the rules of table
 * scans (deparse.c), with the event's field paths; conditions on the
 * cluster time are checked by PostgreSQL.  When a $match is shipped,
 * invalidate events still pass it so that the scan sees the stream end,
 * but they are returned only when nothing was shipped.
 *
 * Options fullDocument and fullDocumentBeforeChange come from the table
 * options full_document ('default', 'updateLookup', 'whenAvailable',
 * 'required') and full_document_before_change ('off', 'whenAvailable',
 * 'required').
 *
 * Resource rules are those of scan.c: the change stream, the collection
 * or database handle and the connection reference belong to the scan's
 * memory context, whose reset callback frees them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "qleaf_fdw.h"
#include "changes.h"

#include "access/stratnum.h"
#include "access/table.h"
#include "access/tupdesc.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/explain.h"
#include "datatype/timestamp.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

/* How long a getMore waits for new events before it returns empty. */
#define CHANGES_AWAIT_MS		100

/* Rows assumed for a change stream scan. */
#define CHANGES_DEFAULT_ROWS	1000

/* The default look-back window, in seconds. */
#define CHANGES_DEFAULT_LOOKBACK	3600

/* The key under which the projection carries the operation type. */
#define CHANGES_OP_KEY			"op"

/* Indexes of the items of a changes scan's fdw_private list. */
enum ChangesPrivateIndex
{
	ChangesPrivateMarker,		/* String "changes": tells the plan apart */
	ChangesPrivatePipeline,		/* bytea Const: the stages after $changeStream */
	ChangesPrivateRetrievedAttrs,
	ChangesPrivateFields,
	ChangesPrivateDatabase,		/* String */
	ChangesPrivateCollection,	/* String, "" for the whole database */
	ChangesPrivateStreamOpts,	/* bytea Const: fullDocument... (BSON) */
	ChangesPrivateExplainStage, /* String: $changeStream as EXPLAIN shows it */
	ChangesPrivateStartKind,	/* Integer: a StartKind */
	ChangesPrivateLookback,		/* Integer: seconds */
	ChangesPrivateBatchSize,	/* Integer */
	ChangesPrivateShipped,		/* Boolean: a $match was shipped */
	ChangesPrivateExtract,		/* Boolean: no $project, fields read here */
	ChangesPrivateLocalReasons	/* list of String */
};

typedef enum StartKind
{
	START_DEFAULT,				/* start_lookback before the server's time */
	START_TOKEN_AFTER,			/* resume_token > x */
	START_TOKEN_AT,				/* resume_token >= x */
	START_TIMESTAMP_AFTER,		/* cluster_timestamp > n */
	START_TIMESTAMP_AT,			/* cluster_timestamp >= n */
	START_TIME					/* cluster_time >= / > t */
} StartKind;

/* standard columns: name and event field */
static const char *const standard_columns[][2] = {
	{"resume_token", "_id._data"},
	{"operation_type", "operationType"},
	{"database", "ns.db"},
	{"collection", "ns.coll"},
	{"document_key", "documentKey"},
	{"full_document", "fullDocument"},
	{"full_document_before_change", "fullDocumentBeforeChange"},
	{"updated_fields", "updateDescription.updatedFields"},
	{"removed_fields", "updateDescription.removedFields"},
	{"truncated_arrays", "updateDescription.truncatedArrays"},
	{"update_description", "updateDescription"},
	{"cluster_time", "clusterTime"},
	{"cluster_timestamp", "clusterTime"},
	{"wall_time", "wallTime"},
	{"txn_number", "txnNumber"},
	{"lsid", "lsid"},
	{NULL, NULL}
};

static const char *const full_document_values[] = {
	"default", "updateLookup", "whenAvailable", "required", NULL
};
static const char *const before_change_values[] = {
	"off", "whenAvailable", "required", NULL
};

/* Options of a changes table. */
typedef struct ChangesOptions
{
	bool		changes;
	const char *collection;		/* NULL: the whole database */
	const char *full_document;	/* NULL: the server's default */
	const char *before_change;	/* NULL: off */
	int			lookback;		/* seconds */
} ChangesOptions;

/* State of a changes scan at execution. */
typedef struct ChangesState
{
	QleafChangeStream *scan;	/* NULL until the first row is asked for */
	MemoryContext scan_parent;
	ForeignServer *server;
	UserMapping *user;
	char	   *dbname;
	char	   *collname;		/* NULL: the whole database */
	char	   *what;			/* error context */
	List	   *param_states;	/* ExprStates of fdw_exprs */
	ExprState  *start_state;	/* the start value, or NULL */
	StartKind	start_kind;
	int			lookback;
	int			batch_size;
	bool		shipped;
	bool		extract;		/* no projection: read fields from events */
	bson_t	   *stream_opts;	/* fullDocument... */
	bytea	   *pipeline;		/* filled for the current scan */

	QleafEventConv conv;		/* event -> row */

	/* per scan */
	bool		started;
	bool		done;
	uint64		end_time;		/* secs << 32 | inc: the server's time at start */
	QleafScanCounters counters;
} ChangesState;

static void change_stream_cleanup(void *arg);
static char *start_point(StartKind kind, Datum value, Oid vtype,
						 uint64 *start);
static void append_timestamp(bson_t *b, const char *key, uint64 ts);

/* ----------------------------------------------------------------
 *		Options
 * ----------------------------------------------------------------
 */

static int
parse_lookback(const char *value)
{
	Datum		d;
	Interval   *iv;
	double		secs;

	d = DirectFunctionCall3(interval_in, CStringGetDatum(value),
							ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	iv = DatumGetIntervalP(d);
	secs = (double) iv->time / USECS_PER_SEC +
		(double) iv->day * SECS_PER_DAY +
		(double) iv->month * DAYS_PER_MONTH * SECS_PER_DAY;
	if (secs < 0 || secs > (double) PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"start_lookback\": \"%s\"",
						value),
				 errdetail("The look-back window must be an interval between 0 and about 68 years.")));
	return (int) secs;
}

static const char *
check_choice(const char *option, const char *value, const char *const *choices,
			 const char *valid)
{
	int			i;

	for (i = 0; choices[i] != NULL; i++)
		if (strcmp(value, choices[i]) == 0)
			return choices[i];
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
			 errmsg("invalid value for option \"%s\": \"%s\"", option, value),
			 errhint("Valid values are %s.", valid)));
	return NULL;				/* keep compiler quiet */
}

/* Is name a table option of changes tables? */
bool
qleaf_changes_option(const char *name)
{
	return strcmp(name, "changes") == 0 ||
		strcmp(name, "full_document") == 0 ||
		strcmp(name, "full_document_before_change") == 0 ||
		strcmp(name, "start_lookback") == 0;
}

static void
parse_changes_options(List *options, ChangesOptions *opts)
{
	ListCell   *lc;

	memset(opts, 0, sizeof(*opts));
	opts->lookback = CHANGES_DEFAULT_LOOKBACK;
	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "changes") == 0)
			opts->changes = defGetBoolean(def);
		else if (strcmp(def->defname, "collection") == 0)
			opts->collection = defGetString(def);
		else if (strcmp(def->defname, "full_document") == 0)
			opts->full_document =
				check_choice("full_document", defGetString(def),
							 full_document_values,
							 "\"default\", \"updateLookup\", \"whenAvailable\" and \"required\"");
		else if (strcmp(def->defname, "full_document_before_change") == 0)
			opts->before_change =
				check_choice("full_document_before_change", defGetString(def),
							 before_change_values,
							 "\"off\", \"whenAvailable\" and \"required\"");
		else if (strcmp(def->defname, "start_lookback") == 0)
			opts->lookback = parse_lookback(defGetString(def));
	}
}

/*
 * Validate the options of a foreign table that concern changes tables
 * (the validator's whole list): their values, and that they are not set
 * on an ordinary table.
 */
void
qleaf_changes_validate_options(List *options)
{
	ChangesOptions opts;
	ListCell   *lc;

	parse_changes_options(options, &opts);
	if (opts.changes)
		return;
	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (qleaf_changes_option(def->defname) &&
			strcmp(def->defname, "changes") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("option \"%s\" applies only to changes tables",
							def->defname),
					 errhint("Set option \"changes\" to 'true' to read the change stream of the collection.")));
	}
}

bool
qleaf_is_changes_table(ForeignTable *table)
{
	ListCell   *lc;

	foreach(lc, table->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "changes") == 0)
			return defGetBoolean(def);
	}
	return false;
}

/*
 * The event field of a standard column of a changes table, or NULL when
 * relid is no changes table or colname no standard column.
 */
char *
qleaf_changes_column_field(Oid relid, const char *colname)
{
	int			i;

	for (i = 0; standard_columns[i][0] != NULL; i++)
		if (strcmp(colname, standard_columns[i][0]) == 0)
			break;
	if (standard_columns[i][0] == NULL)
		return NULL;
	if (!qleaf_is_changes_table(GetForeignTable(relid)))
		return NULL;
	return pstrdup(standard_columns[i][1]);
}

bool
qleaf_is_changes_plan(ForeignScan *fsplan)
{
	return fsplan->fdw_private != NIL &&
		IsA(linitial(fsplan->fdw_private), String);
}

/* ----------------------------------------------------------------
 *		Planning
 * ----------------------------------------------------------------
 */

/*
 * Size estimate: a change stream has no count to ask for, so a fixed
 * number of events, reduced by the conditions' selectivity.
 */
void
qleaf_changes_rel_size(PlannerInfo *root, RelOptInfo *baserel)
{
	QleafRelInfo *fpinfo = (QleafRelInfo *) baserel->fdw_private;
	Selectivity sel;
	ListCell   *lc;

	fpinfo->attrs_used = NULL;
	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid,
				   &fpinfo->attrs_used);
	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);

		pull_varattnos((Node *) ri->clause, baserel->relid,
					   &fpinfo->attrs_used);
	}

	baserel->tuples = CHANGES_DEFAULT_ROWS;
	sel = clauselist_selectivity(root, baserel->baserestrictinfo, 0,
								 JOIN_INNER, NULL);
	fpinfo->rows = clamp_row_est(CHANGES_DEFAULT_ROWS * sel);
	fpinfo->width = baserel->reltarget->width;
	baserel->rows = fpinfo->rows;
	fpinfo->startup_cost = 100.0;
	fpinfo->total_cost = fpinfo->startup_cost +
		CHANGES_DEFAULT_ROWS * (cpu_tuple_cost + 0.01);
}

/* The event field a column of the scanned table maps to, or NULL. */
static char *
var_field(Oid relid, RelOptInfo *baserel, Expr *expr, Var **var_out)
{
	Var		   *var;
	bool		ignored = false;

	while (IsA(expr, RelabelType))
		expr = ((RelabelType *) expr)->arg;
	if (!IsA(expr, Var))
		return NULL;
	var = (Var *) expr;
	if ((Index) var->varno != baserel->relid || var->varlevelsup != 0 ||
		var->varattno <= 0)
		return NULL;
	if (var_out)
		*var_out = var;
	return qleaf_get_column_field(relid, var->varattno,
								  get_attname(relid, var->varattno, false),
								  &ignored);
}

/* Does expr read a column mapped to clusterTime? */
static bool
reads_cluster_time(Oid relid, RelOptInfo *baserel, Node *expr)
{
	Bitmapset  *attrs = NULL;
	int			x = -1;

	pull_varattnos(expr, baserel->relid, &attrs);
	while ((x = bms_next_member(attrs, x)) >= 0)
	{
		AttrNumber	attnum = x + FirstLowInvalidHeapAttributeNumber;
		bool		ignored = false;
		char	   *field;

		if (attnum <= 0)
			continue;
		field = qleaf_get_column_field(relid, attnum,
									   get_attname(relid, attnum, false),
									   &ignored);
		if (strcmp(field, "clusterTime") == 0)
			return true;
	}
	return false;
}

/*
 * Is clause a start condition: a column mapped to _id._data or
 * clusterTime compared with > or >= to a value known when the scan
 * starts?  Sets *kind and *value.
 */
static bool
start_condition(Oid relid, RelOptInfo *baserel, Expr *clause,
				StartKind *kind, Expr **value)
{
	OpExpr	   *op;
	Expr	   *left;
	Expr	   *right;
	Var		   *var = NULL;
	char	   *field;
	TypeCacheEntry *tce;
	int			strategy;
	bool		commuted = false;
	Oid			vtype;

	if (!IsA(clause, OpExpr))
		return false;
	op = (OpExpr *) clause;
	if (list_length(op->args) != 2)
		return false;
	left = linitial(op->args);
	right = lsecond(op->args);
	field = var_field(relid, baserel, left, &var);
	if (field == NULL)
	{
		field = var_field(relid, baserel, right, &var);
		if (field == NULL)
			return false;
		commuted = true;
		right = left;
	}

	/* the value: no column of any relation, nothing volatile */
	if (contain_var_clause((Node *) right) ||
		contain_volatile_functions((Node *) right))
		return false;
	vtype = exprType((Node *) right);
	if (vtype != var->vartype &&
		!((var->vartype == INT8OID || var->vartype == NUMERICOID) &&
		  (vtype == INT2OID || vtype == INT4OID || vtype == INT8OID)))
		return false;

	tce = lookup_type_cache(var->vartype, TYPECACHE_BTREE_OPFAMILY);
	if (!OidIsValid(tce->btree_opf))
		return false;
	strategy = get_op_opfamily_strategy(op->opno, tce->btree_opf);
	if (commuted)
	{
		if (strategy == BTLessStrategyNumber)
			strategy = BTGreaterStrategyNumber;
		else if (strategy == BTLessEqualStrategyNumber)
			strategy = BTGreaterEqualStrategyNumber;
		else
			return false;
	}
	if (strategy != BTGreaterStrategyNumber &&
		strategy != BTGreaterEqualStrategyNumber)
		return false;

	if (strcmp(field, "_id._data") == 0 &&
		(var->vartype == TEXTOID || var->vartype == VARCHAROID))
		*kind = strategy == BTGreaterStrategyNumber ?
			START_TOKEN_AFTER : START_TOKEN_AT;
	else if (strcmp(field, "clusterTime") == 0 &&
			 (var->vartype == INT8OID || var->vartype == NUMERICOID))
		*kind = strategy == BTGreaterStrategyNumber ?
			START_TIMESTAMP_AFTER : START_TIMESTAMP_AT;
	else if (strcmp(field, "clusterTime") == 0 && var->vartype == TIMESTAMPTZOID)
		*kind = START_TIME;
	else
		return false;
	*value = right;
	return true;
}

/* the preference among start conditions: an exact resume point first */
static int
start_rank(StartKind kind)
{
	switch (kind)
	{
		case START_TOKEN_AFTER:
			return 5;
		case START_TIMESTAMP_AFTER:
		case START_TIMESTAMP_AT:
			return 4;
		case START_TOKEN_AT:
			return 3;
		case START_TIME:
			return 2;
		case START_DEFAULT:
			break;
	}
	return 0;
}

/*
 * Can the scan read field from the event itself, with the same result as
 * the projection's "$field"?  Yes when the path cannot cross an array:
 * one name, or a path through the event's own structure (_id, ns, to,
 * documentKey, lsid, and the standard fields).  Paths into the documents
 * (fullDocument.items.sku) keep the projection, whose traversal of
 * arrays is MongoDB's.  Reading from the event spares the server the
 * projection, which matters for servers that run stages slowly.
 */
static bool
event_field_safe(const char *field)
{
	static const char *const structure[] = {
		"_id.", "ns.", "to.", "documentKey.", "lsid.", NULL
	};
	int			i;

	if (qleaf_is_root_field(field))
		return false;
	if (strchr(field, '.') == NULL)
		return true;
	for (i = 0; standard_columns[i][0] != NULL; i++)
		if (strcmp(field, standard_columns[i][1]) == 0)
			return true;
	for (i = 0; structure[i] != NULL; i++)
		if (strncmp(field, structure[i], strlen(structure[i])) == 0)
			return true;
	return false;
}

/*
 * The stages after $changeStream: deparse.c's [$match?, $project] with
 * two changes.  A shipped $match lets invalidate events through, so the
 * scan sees the end of the stream; the projection adds the operation
 * type, by which the scan recognizes an invalidate.  With extract, the
 * projection is left out (see event_field_safe).
 */
static bytea *
adapt_pipeline(const bytea *pipeline, bool extract)
{
	bson_t		in;
	bson_t	   *out = qleaf_bson_new_owned(CurrentMemoryContext);
	bson_iter_t stages;

	if (!bson_init_static(&in, (const uint8_t *) VARDATA_ANY(pipeline),
						  VARSIZE_ANY_EXHDR(pipeline)) ||
		!bson_iter_init(&stages, &in))
		elog(ERROR, "qleaf_fdw: invalid pipeline");
	while (bson_iter_next(&stages))
	{
		const char *key = bson_iter_key(&stages);
		bson_iter_t stage;
		bson_t		outstage;
		bson_t		body;

		if (!BSON_ITER_HOLDS_DOCUMENT(&stages) ||
			!bson_iter_recurse(&stages, &stage) ||
			!bson_iter_next(&stage) ||
			!BSON_ITER_HOLDS_DOCUMENT(&stage))
		{
			bson_append_iter(out, key, -1, &stages);
			continue;
		}
		/* the last stage: without it the scan reads fields from the events */
		if (extract && strcmp(bson_iter_key(&stage), "$project") == 0)
			continue;
		bson_append_document_begin(out, key, -1, &outstage);
		if (strcmp(bson_iter_key(&stage), "$match") == 0)
		{
			bson_t		or;
			bson_t		alt;
			const uint8_t *data;
			uint32_t	len;
			bson_t		filter;

			bson_iter_document(&stage, &len, &data);
			if (!bson_init_static(&filter, data, len))
				elog(ERROR, "qleaf_fdw: invalid $match");
			bson_append_document_begin(&outstage, "$match", -1, &body);
			bson_append_array_begin(&body, "$or", -1, &or);
			bson_append_document(&or, "0", -1, &filter);
			bson_append_document_begin(&or, "1", -1, &alt);
			bson_append_utf8(&alt, "operationType", -1, "invalidate", -1);
			bson_append_document_end(&or, &alt);
			bson_append_array_end(&body, &or);
			bson_append_document_end(&outstage, &body);
		}
		else if (strcmp(bson_iter_key(&stage), "$project") == 0)
		{
			bson_iter_t fields;

			bson_append_document_begin(&outstage, "$project", -1, &body);
			bson_iter_recurse(&stage, &fields);
			while (bson_iter_next(&fields))
				bson_append_iter(&body, NULL, 0, &fields);
			bson_append_utf8(&body, CHANGES_OP_KEY, -1, "$operationType", -1);
			bson_append_document_end(&outstage, &body);
		}
		else
			bson_append_iter(&outstage, NULL, 0, &stage);
		bson_append_document_end(out, &outstage);
	}
	return qleaf_bson_to_bytea(out);
}

/*
 * How EXPLAIN shows the start point: exactly for a constant, else what
 * the scan will compute it from.
 */
static void
explain_start(bson_t *stage, StartKind kind, Expr *value, int lookback)
{
	const char *what = NULL;

	if (kind == START_DEFAULT)
	{
		char	   *text;

		text = psprintf("server time at scan start minus start_lookback (%d s)",
						lookback);
		bson_append_utf8(stage, "startAtOperationTime", -1, text, -1);
		return;
	}
	if (IsA(value, Const) && !((Const *) value)->constisnull)
	{
		Const	   *c = (Const *) value;
		uint64		start;
		char	   *token = start_point(kind, c->constvalue, c->consttype,
										&start);

		if (token != NULL && token[0] != '\0')
		{
			bson_t		ra;

			bson_append_document_begin(stage, "resumeAfter", -1, &ra);
			bson_append_utf8(&ra, "_data", -1, token, -1);
			bson_append_document_end(stage, &ra);
			return;
		}
		if (token == NULL)
		{
			append_timestamp(stage, "startAtOperationTime", start);
			return;
		}
	}
	switch (kind)
	{
		case START_DEFAULT:
			break;
		case START_TOKEN_AFTER:
			bson_append_utf8(stage, "resumeAfter", -1,
							 "{_data: the resume_token lower bound}", -1);
			return;
		case START_TOKEN_AT:
			what = "the cluster time of the resume_token lower bound";
			break;
		case START_TIMESTAMP_AFTER:
		case START_TIMESTAMP_AT:
			what = "the cluster_timestamp lower bound";
			break;
		case START_TIME:
			what = "the second of the cluster_time lower bound";
			break;
	}
	bson_append_utf8(stage, "startAtOperationTime", -1, what, -1);
}

ForeignScan *
qleaf_changes_plan(PlannerInfo *root, RelOptInfo *baserel, List *tlist,
				   List *scan_clauses, Plan *outer_plan)
{
	QleafRelInfo *fpinfo = (QleafRelInfo *) baserel->fdw_private;
	RangeTblEntry *rte = planner_rt_fetch(baserel->relid, root);
	Oid			relid = rte->relid;
	ChangesOptions copts;
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
	Bitmapset  *attrs_used = NULL;
	bool		extract;
	StartKind	start_kind = START_DEFAULT;
	Expr	   *start_value = NULL;
	bson_t	   *stream_opts;
	bson_t	   *explain_stage;
	bson_t		cs;
	StringInfoData json;
	bson_iter_t it;

	parse_changes_options(fpinfo->table->options, &copts);

	foreach(lc, scan_clauses)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		StartKind sk;
		Expr	   *value;

		if (ri->pseudoconstant)
			continue;
		if (start_condition(relid, baserel, ri->clause, &sk, &value))
		{
			if (start_rank(sk) > start_rank(start_kind))
			{
				start_kind = sk;
				start_value = value;
			}
			local_exprs = lappend(local_exprs, ri->clause);
			local_reasons = lappend(local_reasons,
									makeString("start position of the change stream, rechecked"));
			continue;
		}
		if (reads_cluster_time(relid, baserel, (Node *) ri->clause))
		{
			local_exprs = lappend(local_exprs, ri->clause);
			local_reasons = lappend(local_reasons,
									makeString("the cluster time is compared by PostgreSQL"));
			continue;
		}
		qleaf_place_clause(root, baserel, ri, &remote_conds, &remote_exprs,
						   &local_exprs, &local_reasons);
	}

	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid,
				   &attrs_used);
	foreach(lc, local_exprs)
		pull_varattnos((Node *) lfirst(lc), baserel->relid, &attrs_used);

	rel = table_open(relid, NoLock);
	pipeline = qleaf_build_pipeline(root, baserel, rel, attrs_used,
									remote_conds, &retrieved_attrs, &fields,
									&param_exprs);
	table_close(rel, NoLock);
	extract = true;
	foreach(lc, fields)
		if (!event_field_safe(strVal(lfirst(lc))))
			extract = false;
	pipeline = adapt_pipeline(pipeline, extract);

	/* the start value is evaluated after the $match parameters */
	if (start_value != NULL)
		param_exprs = lappend(param_exprs, start_value);

	stream_opts = qleaf_bson_new_owned(CurrentMemoryContext);
	if (copts.full_document != NULL)
		bson_append_utf8(stream_opts, "fullDocument", -1,
						 copts.full_document, -1);
	if (copts.before_change != NULL)
		bson_append_utf8(stream_opts, "fullDocumentBeforeChange", -1,
						 copts.before_change, -1);

	/* $changeStream as EXPLAIN VERBOSE shows it */
	explain_stage = qleaf_bson_new_owned(CurrentMemoryContext);
	bson_append_document_begin(explain_stage, "0", -1, &cs);
	{
		bson_t		spec;

		bson_append_document_begin(&cs, "$changeStream", -1, &spec);
		if (bson_iter_init(&it, stream_opts))
			while (bson_iter_next(&it))
				bson_append_iter(&spec, NULL, 0, &it);
		explain_start(&spec, start_kind, start_value, copts.lookback);
		bson_append_document_end(&cs, &spec);
	}
	bson_append_document_end(explain_stage, &cs);
	initStringInfo(&json);
	qleaf_append_pipeline_json(&json, explain_stage);
	/* drop the brackets: the stage is one element of the pipeline shown */
	json.data[json.len - 1] = '\0';

	fdw_private = NIL;
	fdw_private = lappend(fdw_private, makeString("changes"));
	fdw_private = lappend(fdw_private,
						  makeConst(BYTEAOID, -1, InvalidOid, -1,
									PointerGetDatum(pipeline), false, false));
	fdw_private = lappend(fdw_private, retrieved_attrs);
	fdw_private = lappend(fdw_private, fields);
	fdw_private = lappend(fdw_private, makeString(fpinfo->opts.database));
	fdw_private = lappend(fdw_private,
						  makeString(pstrdup(copts.collection ? copts.collection : "")));
	fdw_private = lappend(fdw_private,
						  makeConst(BYTEAOID, -1, InvalidOid, -1,
									PointerGetDatum(qleaf_bson_to_bytea(stream_opts)),
									false, false));
	fdw_private = lappend(fdw_private, makeString(pstrdup(json.data + 1)));
	fdw_private = lappend(fdw_private, makeInteger(start_kind));
	fdw_private = lappend(fdw_private, makeInteger(copts.lookback));
	fdw_private = lappend(fdw_private, makeInteger(fpinfo->opts.batch_size));
	fdw_private = lappend(fdw_private, makeBoolean(remote_conds != NIL));
	fdw_private = lappend(fdw_private, makeBoolean(extract));
	fdw_private = lappend(fdw_private, local_reasons);

	return make_foreignscan(tlist, local_exprs, baserel->relid, param_exprs,
							fdw_private, NIL, remote_exprs, outer_plan);
}

/* ----------------------------------------------------------------
 *		Execution
 * ----------------------------------------------------------------
 */

static bytea *
private_bytea(List *fdw_private, int n)
{
	return DatumGetByteaPP(list_nth_node(Const, fdw_private, n)->constvalue);
}

void
qleaf_changes_begin(ForeignScanState *node, int eflags)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	List	   *fdw_private = fsplan->fdw_private;
	EState	   *estate = node->ss.ps.state;
	Relation	rel = node->ss.ss_currentRelation;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	ChangesState *st;
	RangeTblEntry *rte;
	Oid			userid;
	ForeignTable *table;
	QleafTableOptions opts;
	const char *coll;
	bytea	   *so;
	List	   *retrieved_attrs;
	List	   *fields;
	ListCell   *lc;
	ListCell   *lf;
	int			i;
	int			nparams;

	st = palloc0(sizeof(ChangesState));
	node->fdw_state = st;
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	rte = exec_rt_fetch(fsplan->scan.scanrelid, estate);
	userid = OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
	table = GetForeignTable(RelationGetRelid(rel));
	st->server = GetForeignServer(table->serverid);
	st->user = GetUserMapping(userid, st->server->serverid);
	qleaf_get_table_options(table, st->server, &opts);
	st->scan_parent = estate->es_query_cxt;

	st->dbname = strVal(list_nth(fdw_private, ChangesPrivateDatabase));
	coll = strVal(list_nth(fdw_private, ChangesPrivateCollection));
	st->collname = coll[0] != '\0' ? (char *) coll : NULL;
	st->what = st->collname ?
		psprintf("while reading the change stream of collection \"%s.%s\"",
				 st->dbname, st->collname) :
		psprintf("while reading the change stream of database \"%s\"",
				 st->dbname);
	st->start_kind = (StartKind) intVal(list_nth(fdw_private, ChangesPrivateStartKind));
	st->lookback = intVal(list_nth(fdw_private, ChangesPrivateLookback));
	st->batch_size = intVal(list_nth(fdw_private, ChangesPrivateBatchSize));
	if (st->batch_size <= 0)
		st->batch_size = qleaf_batch_size;
	st->shipped = boolVal(list_nth(fdw_private, ChangesPrivateShipped));
	st->extract = boolVal(list_nth(fdw_private, ChangesPrivateExtract));

	so = private_bytea(fdw_private, ChangesPrivateStreamOpts);
	st->stream_opts = bson_new_from_data((const uint8_t *) VARDATA_ANY(so),
										 VARSIZE_ANY_EXHDR(so));
	if (st->stream_opts == NULL)
		elog(ERROR, "qleaf_fdw: invalid change stream options in plan");
	{
		/* a copy owned by the query's memory */
		bson_t	   *owned = qleaf_bson_new_owned(estate->es_query_cxt);

		bson_concat(owned, st->stream_opts);
		bson_destroy(st->stream_opts);
		st->stream_opts = owned;
	}

	st->param_states = ExecInitExprList(fsplan->fdw_exprs, (PlanState *) node);
	nparams = list_length(st->param_states);
	if (st->start_kind != START_DEFAULT)
	{
		st->start_state = (ExprState *) llast(st->param_states);
		st->param_states = list_truncate(list_copy(st->param_states),
										 nparams - 1);
	}

	/* per fetched column: its conversion */
	retrieved_attrs = (List *) list_nth(fdw_private, ChangesPrivateRetrievedAttrs);
	fields = (List *) list_nth(fdw_private, ChangesPrivateFields);
	qleaf_event_conv_init(&st->conv, tupdesc->natts,
						  list_length(retrieved_attrs));
	i = 0;
	forboth(lc, retrieved_attrs, lf, fields)
	{
		AttrNumber	attnum = lfirst_int(lc);
		const char *field = strVal(lfirst(lf));
		Form_pg_attribute attr = TupleDescAttr(tupdesc, attnum - 1);
		bool		null_on_error = opts.null_on_error;
		char	   *colname = pstrdup(NameStr(attr->attname));

		(void) qleaf_get_column_field(RelationGetRelid(rel), attnum, colname,
									  &null_on_error);
		qleaf_event_conv_column(&st->conv, i, attnum - 1, attr->atttypid,
								attr->atttypmod, colname, field,
								null_on_error);
		i++;
	}
}

/* ----------------------------------------------------------------
 *		Change streams and events (shared with worker.c)
 * ----------------------------------------------------------------
 */

/* A table of nkeys of natts columns; qleaf_event_conv_column fills it. */
void
qleaf_event_conv_init(QleafEventConv *ec, int natts, int nkeys)
{
	memset(ec, 0, sizeof(*ec));
	ec->natts = natts;
	ec->nkeys = nkeys;
	ec->convs = palloc0(sizeof(QleafColumnConv) * Max(nkeys, 1));
	ec->key_att = palloc(sizeof(int) * Max(nkeys, 1));
	ec->key_exact = palloc0(sizeof(bool) * Max(nkeys, 1));
	ec->id_keys = palloc(sizeof(int) * Max(nkeys, 1));
	ec->key_field = palloc(sizeof(char *) * Max(nkeys, 1));
}

/*
 * Key k fills column att (0-based) of type typid from the event field
 * field.  clusterTime read into bigint or numeric is the exact Timestamp.
 */
void
qleaf_event_conv_column(QleafEventConv *ec, int k, int att, Oid typid,
						int32 typmod, const char *colname, const char *field,
						bool null_on_error)
{
	Assert(k < ec->nkeys);
	ec->key_att[k] = att;
	ec->key_field[k] = pstrdup(field);
	if (strcmp(field, "clusterTime") == 0 &&
		(typid == INT8OID || typid == NUMERICOID))
	{
		ec->key_exact[k] = true;
		ec->convs[k].typid = typid;
	}
	else
		qleaf_init_column_conv(&ec->convs[k], typid, typmod, pstrdup(colname),
							   pstrdup(field), null_on_error);
	if (strcmp(field, "_id") == 0)
		ec->id_keys[ec->n_id_keys++] = k;
}

const char *
qleaf_changes_standard_field(const char *colname)
{
	int			i;

	for (i = 0; standard_columns[i][0] != NULL; i++)
		if (strcmp(colname, standard_columns[i][0]) == 0)
			return standard_columns[i][1];
	return NULL;
}

QleafChangeStream *
qleaf_change_stream_connect(UserMapping *user, ForeignServer *server,
							MemoryContext parent)
{
	MemoryContext cxt;
	QleafChangeStream *cs;

	cxt = AllocSetContextCreate(parent, "qleaf_fdw change stream",
								ALLOCSET_SMALL_SIZES);
	cs = MemoryContextAllocZero(cxt, sizeof(QleafChangeStream));
	cs->cxt = cxt;
	cs->cleanup.func = change_stream_cleanup;
	cs->cleanup.arg = cs;
	MemoryContextRegisterResetCallback(cxt, &cs->cleanup);
	cs->conn = qleaf_get_connection(user, server);
	return cs;
}

/*
 * Run the change stream's aggregate: on collection, or on the whole
 * database when collection is NULL.  pipeline holds the stages after
 * $changeStream, opts its options.  Errors come from
 * mongoc_change_stream_next / mongoc_change_stream_error_document.
 */
void
qleaf_change_stream_watch(QleafChangeStream *cs, const char *database,
						  const char *collection, const bson_t *pipeline,
						  const bson_t *opts)
{
	mongoc_client_t *client = qleaf_conn_client(cs->conn);

	if (collection != NULL)
	{
		cs->collection = mongoc_client_get_collection(client, database,
													  collection);
		cs->stream = mongoc_collection_watch(cs->collection, pipeline, opts);
	}
	else
	{
		cs->database = mongoc_client_get_database(client, database);
		cs->stream = mongoc_database_watch(cs->database, pipeline, opts);
	}
}

void
qleaf_change_stream_close(QleafChangeStream *cs)
{
	if (cs != NULL)
		MemoryContextDelete(cs->cxt);
}

/*
 * Resumable, per the change streams specification: network errors
 * (libmongoc's stream and server selection domains), server errors with
 * the ResumableChangeStreamError label (4.4+), and for older servers the
 * specification's list of codes.  286 is history lost; the rest is fatal.
 */
QleafStreamErrorKind
qleaf_change_stream_error_kind(const bson_error_t *error, const bson_t *reply)
{
	static const uint32 resumable_codes[] = {
		6, 7, 63, 89, 91, 133, 150, 189, 234, 262, 9001, 10107, 11600,
		11602, 13388, 13435, 13436, 0
	};
	bson_iter_t it;
	int			i;

	if (error->code == 286)
		return QLEAF_STREAM_ERROR_HISTORY_LOST;
	if (error->domain == MONGOC_ERROR_STREAM ||
		error->domain == MONGOC_ERROR_SERVER_SELECTION ||
		(error->domain == MONGOC_ERROR_CLIENT &&
		 error->code == MONGOC_ERROR_CLIENT_NOT_READY))
		return QLEAF_STREAM_ERROR_RESUMABLE;
	if (reply != NULL && bson_iter_init_find(&it, reply, "errorLabels") &&
		BSON_ITER_HOLDS_ARRAY(&it))
	{
		bson_iter_t labels;

		if (bson_iter_recurse(&it, &labels))
			while (bson_iter_next(&labels))
				if (BSON_ITER_HOLDS_UTF8(&labels) &&
					(strcmp(bson_iter_utf8(&labels, NULL), "ResumableChangeStreamError") == 0 ||
					 strcmp(bson_iter_utf8(&labels, NULL), "NetworkError") == 0))
					return QLEAF_STREAM_ERROR_RESUMABLE;
	}
	for (i = 0; resumable_codes[i] != 0; i++)
		if (error->code == resumable_codes[i] &&
			(error->domain == MONGOC_ERROR_SERVER ||
			 error->domain == MONGOC_ERROR_QUERY))
			return QLEAF_STREAM_ERROR_RESUMABLE;
	return QLEAF_STREAM_ERROR_FATAL;
}

static void
change_stream_cleanup(void *arg)
{
	QleafChangeStream *scan = (QleafChangeStream *) arg;

	if (scan->stream != NULL)
	{
		mongoc_change_stream_t *stream = scan->stream;

		scan->stream = NULL;
		mongoc_change_stream_destroy(stream);
	}
	if (scan->collection != NULL)
	{
		mongoc_collection_destroy(scan->collection);
		scan->collection = NULL;
	}
	if (scan->database != NULL)
	{
		mongoc_database_destroy(scan->database);
		scan->database = NULL;
	}
	if (scan->conn != NULL)
	{
		QleafConn  *conn = scan->conn;

		scan->conn = NULL;
		qleaf_release_connection(conn);
	}
}

static void
changes_scan_close(ChangesState *st)
{
	if (st->scan != NULL)
	{
		QleafChangeStream *cs = st->scan;

		st->scan = NULL;
		qleaf_change_stream_close(cs);
	}
}

/* secs << 32 | inc of a resume token's _data, or false if not one */
bool
qleaf_resume_token_time(const char *data, size_t len, uint64 *time)
{
	uint64		v = 0;
	size_t		i;

	/* "82", then the Timestamp big-endian: secs and inc, 8 bytes */
	if (len < 18 || data[0] != '8' || data[1] != '2')
		return false;
	for (i = 2; i < 18; i++)
	{
		char		c = data[i];
		int			d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else
			return false;
		v = (v << 4) | d;
	}
	*time = v;
	return true;
}

static bool
token_doc_time(const bson_t *token, uint64 *time)
{
	bson_iter_t it;
	const char *data;
	uint32_t	len;

	if (token == NULL || !bson_iter_init_find(&it, token, "_data") ||
		!BSON_ITER_HOLDS_UTF8(&it))
		return false;
	data = bson_iter_utf8(&it, &len);
	return qleaf_resume_token_time(data, len, time);
}

/* Raise the error of a failed change stream, explaining known codes. */
static void
report_stream_error(ChangesState *st, QleafConn *conn, bson_error_t *error,
					const bson_t *reply)
{
	CHECK_FOR_INTERRUPTS();
	if (error->code == 286)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("the change stream's history is lost: its start point is older than the oldest event the server keeps"),
				 errdetail("MongoDB: %s", error->message),
				 errhint("Read from a later point: a condition such as cluster_time >= now() - interval '10 minutes', "
						 "or no start condition and a shorter \"start_lookback\" on the table."),
				 errcontext("%s", st->what)));
	if (error->code == 40573)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("MongoDB server has no change streams"),
				 errdetail("MongoDB: %s", error->message),
				 errhint("Change streams need a replica set or a sharded cluster; a standalone server can be made a one-member replica set."),
				 errcontext("%s", st->what)));
	qleaf_report_error(ERROR, conn, error, reply, st->what);
}

/* The server's current operation time, from a ping. */
uint64
qleaf_change_stream_server_time(QleafConn *conn, const char *what)
{
	bson_t		cmd = BSON_INITIALIZER;
	bson_t		reply;
	bson_error_t error;
	bson_iter_t it;
	bool		ok;
	uint32_t	t = 0,
				i = 0;
	bool		found;

	bson_append_int32(&cmd, "ping", -1, 1);
	ok = mongoc_client_command_simple(qleaf_conn_client(conn), "admin",
									  &cmd, NULL, &reply, &error);
	bson_destroy(&cmd);
	if (!ok)
	{
		bson_destroy(&reply);
		qleaf_report_error(ERROR, conn, &error, NULL, what);
	}
	found = bson_iter_init_find(&it, &reply, "operationTime") &&
		BSON_ITER_HOLDS_TIMESTAMP(&it);
	if (found)
		bson_iter_timestamp(&it, &t, &i);
	bson_destroy(&reply);
	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("MongoDB server has no change streams"),
				 errdetail("The server reports no operation time: it is no replica set member."),
				 errhint("Change streams need a replica set or a sharded cluster; a standalone server can be made a one-member replica set."),
				 errcontext("%s", what)));
	return ((uint64) t << 32) | i;
}

static void
append_timestamp(bson_t *b, const char *key, uint64 ts)
{
	bson_append_timestamp(b, key, -1, (uint32_t) (ts >> 32),
						  (uint32_t) (ts & 0xFFFFFFFF));
}

/* secs * 2^32 + inc from a bigint or numeric Datum, clamped */
static uint64
datum_to_ts(Datum v, Oid type)
{
	int64		n;

	if (type == NUMERICOID)
	{
		Numeric		num = DatumGetNumeric(v);
		double		d;

		if (numeric_is_nan(num))
			return PG_UINT64_MAX;
		d = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
											   NumericGetDatum(num)));
		if (d < 0)
			return 0;
		if (d >= 9.2e18)
			return PG_INT64_MAX;
		n = DatumGetInt64(DirectFunctionCall1(numeric_int8,
											  NumericGetDatum(num)));
	}
	else if (type == INT4OID)
		n = DatumGetInt32(v);
	else if (type == INT2OID)
		n = DatumGetInt16(v);
	else
		n = DatumGetInt64(v);
	return n < 0 ? 0 : (uint64) n;
}

/*
 * The start point of a start condition's value: the resume token of
 * resume_token > x (returned), else the startAtOperationTime in *start
 * (secs << 32 | inc).  value is not NULL.
 */
static char *
start_point(StartKind kind, Datum value, Oid vtype, uint64 *start)
{
	*start = 0;
	switch (kind)
	{
		case START_DEFAULT:
			break;
		case START_TOKEN_AFTER:
			return TextDatumGetCString(value);
		case START_TOKEN_AT:
			{
				char	   *token = TextDatumGetCString(value);

				if (token[0] == '\0')
					return token;
				if (!qleaf_resume_token_time(token, strlen(token), start))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("invalid resume token \"%s\"", token),
							 errdetail("A resume token is the hexadecimal \"_data\" of a change event's _id.")));
				break;
			}
		case START_TIMESTAMP_AFTER:
		case START_TIMESTAMP_AT:
			*start = datum_to_ts(value, vtype);
			if (kind == START_TIMESTAMP_AFTER && *start < PG_UINT64_MAX)
				(*start)++;
			break;
		case START_TIME:
			{
				TimestampTz ts = DatumGetTimestampTz(value);
				int64		secs;

				/* the whole second: the condition, kept, drops the rest */
				if (TIMESTAMP_IS_NOBEGIN(ts))
					secs = 0;
				else if (TIMESTAMP_IS_NOEND(ts))
					secs = PG_UINT32_MAX;
				else
				{
					secs = ts / USECS_PER_SEC;
					if (ts % USECS_PER_SEC < 0)
						secs--;
					secs += (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
				}
				secs = Max(secs, 0);
				secs = Min(secs, (int64) PG_UINT32_MAX);
				*start = (uint64) secs << 32;
				break;
			}
	}
	return NULL;
}

/*
 * The default start: the events after the server's time minus the
 * look-back window, so that a window of 0 reads nothing.
 */
static uint64
lookback_start(ChangesState *st)
{
	uint64		back = (uint64) st->lookback << 32;

	return st->end_time >= back ? st->end_time - back + 1 : 0;
}

/*
 * Open the change stream: learn the server's time (the end of this
 * scan), compute the start point, and run the aggregate.  Returns false
 * when the start value is NULL: no row can pass.
 */
static bool
changes_open(ForeignScanState *node, ChangesState *st)
{
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	QleafChangeStream *scan;
	MemoryContext cxt;
	MemoryContext oldcxt;
	bson_t	   *opts;
	bson_t		pipeline;
	Datum		value = (Datum) 0;
	bool		isnull = false;
	Oid			vtype = InvalidOid;
	uint64		start = 0;
	bool		use_token = false;
	char	   *token = NULL;
	List	   *fdw_private = ((ForeignScan *) node->ss.ps.plan)->fdw_private;

	/* the stages after $changeStream, with the current parameter values */
	st->pipeline = private_bytea(fdw_private, ChangesPrivatePipeline);
	if (st->param_states != NIL)
		st->pipeline = qleaf_fill_pipeline(st->pipeline, st->param_states,
										   econtext);

	if (st->start_state != NULL)
	{
		oldcxt = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
		value = ExecEvalExpr(st->start_state, econtext, &isnull);
		vtype = exprType((Node *) st->start_state->expr);
		MemoryContextSwitchTo(oldcxt);
		/* a NULL start value: the condition is never true */
		if (isnull)
			return false;
	}

	scan = qleaf_change_stream_connect(st->user, st->server, st->scan_parent);
	st->scan = scan;
	cxt = scan->cxt;
	oldcxt = MemoryContextSwitchTo(cxt);
	st->end_time = qleaf_change_stream_server_time(scan->conn, st->what);

	opts = qleaf_bson_new_owned(cxt);
	bson_concat(opts, st->stream_opts);
	if (st->start_kind == START_DEFAULT)
		start = lookback_start(st);
	else
	{
		token = start_point(st->start_kind, value, vtype, &start);
		/* an empty token: every token is greater, the default window */
		if (token != NULL && token[0] == '\0')
		{
			token = NULL;
			start = lookback_start(st);
		}
	}
	if (token != NULL)
	{
		bson_t		ra;

		bson_append_document_begin(opts, "resumeAfter", -1, &ra);
		bson_append_utf8(&ra, "_data", -1, token, -1);
		bson_append_document_end(opts, &ra);
		use_token = true;
	}
	/* a start point after the end: nothing to read */
	if (!use_token && start > st->end_time)
	{
		MemoryContextSwitchTo(oldcxt);
		return false;
	}
	if (!use_token)
		append_timestamp(opts, "startAtOperationTime", start);
	bson_append_int64(opts, "maxAwaitTimeMS", -1, CHANGES_AWAIT_MS);
	if (st->batch_size > 0)
		bson_append_int32(opts, "batchSize", -1, st->batch_size);

	if (!bson_init_static(&pipeline, (const uint8_t *) VARDATA_ANY(st->pipeline),
						  VARSIZE_ANY_EXHDR(st->pipeline)))
		elog(ERROR, "qleaf_fdw: invalid pipeline in plan");

	qleaf_change_stream_watch(scan, st->dbname, st->collname, &pipeline, opts);
	MemoryContextSwitchTo(oldcxt);
	return true;
}

/* Convert the value at iter to key k. */
static void
key_value(QleafEventConv *ec, int k, const bson_iter_t *iter,
		  const bson_t *doc, Datum *values, bool *isnull)
{
	int			att = ec->key_att[k];

	if (ec->key_exact[k])
	{
		uint32_t	t,
					i;
		int64		n;

		/* the exact BSON Timestamp, secs * 2^32 + inc */
		if (!BSON_ITER_HOLDS_TIMESTAMP(iter))
			return;
		bson_iter_timestamp(iter, &t, &i);
		n = (int64) (((uint64) t << 32) | i);
		values[att] = ec->convs[k].typid == NUMERICOID ?
			NumericGetDatum(int64_to_numeric(n)) : Int64GetDatum(n);
		isnull[att] = false;
	}
	else
		values[att] = qleaf_bson_to_datum(&ec->convs[k], iter, doc,
										  &isnull[att]);
}

/*
 * Fill the row from an event: from the keys of the projection, or with
 * extract from the event's own fields.
 */
void
qleaf_event_to_row(QleafEventConv *ec, const bson_t *doc, bool extract,
				   Datum *values, bool *isnull, const char *what)
{
	bson_iter_t iter;

	memset(isnull, true, sizeof(bool) * ec->natts);
	if (!bson_iter_init(&iter, doc))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("MongoDB returned a malformed document"),
				 errcontext("%s", what)));
	if (extract)
	{
		int			k;

		for (k = 0; k < ec->nkeys; k++)
		{
			bson_iter_t desc;

			if (bson_iter_init(&iter, doc) &&
				bson_iter_find_descendant(&iter, ec->key_field[k], &desc))
				key_value(ec, k, &desc, doc, values, isnull);
		}
		return;
	}
	while (bson_iter_next(&iter))
	{
		const char *key = bson_iter_key(&iter);

		if (key[0] == 'c')
		{
			const char *p = key + 1;
			int			k = 0;

			while (*p >= '0' && *p <= '9')
				k = k * 10 + (*p++ - '0');
			if (*p == '\0' && p > key + 1 && k < ec->nkeys)
				key_value(ec, k, &iter, doc, values, isnull);
		}
		else if (ec->n_id_keys > 0 && strcmp(key, "_id") == 0)
		{
			int			j;

			for (j = 0; j < ec->n_id_keys; j++)
				key_value(ec, ec->id_keys[j], &iter, doc, values, isnull);
		}
	}
}

TupleTableSlot *
qleaf_changes_iterate(ForeignScanState *node)
{
	ChangesState *st = (ChangesState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	MemoryContext oldcxt;

	ExecClearTuple(slot);
	if (st->done)
		return slot;
	if (!st->started)
	{
		st->started = true;
		if (!changes_open(node, st))
		{
			st->done = true;
			return slot;
		}
	}

	oldcxt = MemoryContextSwitchTo(node->ss.ps.ps_ExprContext->ecxt_per_tuple_memory);
	for (;;)
	{
		QleafChangeStream *scan = st->scan;
		const bson_t *doc;
		const QleafConnStats *stats;
		uint64		rt;
		uint64		bytes;
		bool		found;
		bson_error_t error;
		const bson_t *reply;
		uint64		t;

		CHECK_FOR_INTERRUPTS();
		stats = qleaf_conn_stats(scan->conn);
		rt = stats->round_trips;
		bytes = stats->bytes_received;
		found = mongoc_change_stream_next(scan->stream, &doc);
		stats = qleaf_conn_stats(scan->conn);
		st->counters.batches += stats->round_trips - rt;
		st->counters.bytes += stats->bytes_received - bytes;

		if (!found)
		{
			if (mongoc_change_stream_error_document(scan->stream, &error, &reply))
				report_stream_error(st, scan->conn, &error, reply);
			/* caught up: the stream's position has passed the end */
			if (token_doc_time(mongoc_change_stream_get_resume_token(scan->stream), &t) &&
				t >= st->end_time)
			{
				st->done = true;
				break;
			}
			continue;
		}
		st->counters.documents++;

		{
			bson_iter_t it;

			/* an event after the end is left for the next scan */
			if (bson_iter_init_find(&it, doc, "_id") &&
				BSON_ITER_HOLDS_DOCUMENT(&it))
			{
				bson_iter_t data;

				if (bson_iter_recurse(&it, &data) &&
					bson_iter_find(&data, "_data") &&
					BSON_ITER_HOLDS_UTF8(&data))
				{
					uint32_t	len;
					const char *s = bson_iter_utf8(&data, &len);

					if (qleaf_resume_token_time(s, len, &t) && t > st->end_time)
					{
						st->done = true;
						break;
					}
				}
			}
			if (bson_iter_init_find(&it, doc,
									st->extract ? "operationType" : CHANGES_OP_KEY) &&
				BSON_ITER_HOLDS_UTF8(&it) &&
				strcmp(bson_iter_utf8(&it, NULL), "invalidate") == 0)
			{
				st->done = true;
				/* it passed the $match only as the end of the stream */
				if (st->shipped)
					break;
			}
			qleaf_event_to_row(&st->conv, doc, st->extract, slot->tts_values,
							   slot->tts_isnull, st->what);
			ExecStoreVirtualTuple(slot);
			break;
		}
	}
	MemoryContextSwitchTo(oldcxt);
	if (st->done)
		changes_scan_close(st);
	return slot;
}

void
qleaf_changes_rescan(ForeignScanState *node)
{
	ChangesState *st = (ChangesState *) node->fdw_state;

	changes_scan_close(st);
	st->started = false;
	st->done = false;
}

void
qleaf_changes_end(ForeignScanState *node)
{
	ChangesState *st = (ChangesState *) node->fdw_state;

	if (st != NULL)
		changes_scan_close(st);
}

void
qleaf_changes_explain(ForeignScanState *node, ExplainState *es)
{
	List	   *fdw_private = ((ForeignScan *) node->ss.ps.plan)->fdw_private;
	ChangesState *st = (ChangesState *) node->fdw_state;
	const char *db = strVal(list_nth(fdw_private, ChangesPrivateDatabase));
	const char *coll = strVal(list_nth(fdw_private, ChangesPrivateCollection));

	ExplainPropertyText("Change Stream",
						coll[0] != '\0' ? psprintf("collection %s.%s", db, coll) :
						psprintf("database %s", db), es);
	if (es->verbose)
	{
		bytea	   *pipeline = private_bytea(fdw_private, ChangesPrivatePipeline);
		bson_t		stages;
		StringInfoData json;
		StringInfoData all;
		List	   *reasons = NIL;
		ListCell   *lc;

		if (!bson_init_static(&stages, (const uint8_t *) VARDATA_ANY(pipeline),
							  VARSIZE_ANY_EXHDR(pipeline)))
			elog(ERROR, "qleaf_fdw: invalid pipeline in plan");
		initStringInfo(&json);
		qleaf_append_pipeline_json(&json, &stages);
		initStringInfo(&all);
		appendStringInfo(&all, "[%s%s%s",
						 strVal(list_nth(fdw_private, ChangesPrivateExplainStage)),
						 json.len > 2 ? ", " : "", json.data + 1);
		ExplainPropertyText("Pipeline", all.data, es);

		foreach(lc, (List *) list_nth(fdw_private, ChangesPrivateLocalReasons))
			reasons = lappend(reasons, strVal(lfirst(lc)));
		if (reasons != NIL)
			ExplainPropertyList("Local Filter Reasons", reasons, es);
	}
	if (es->analyze && st != NULL)
	{
		ExplainPropertyUInteger("Events Received", NULL, st->counters.documents, es);
		ExplainPropertyUInteger("Batches", NULL, st->counters.batches, es);
		ExplainPropertyUInteger("Bytes Received", NULL, st->counters.bytes, es);
	}
}

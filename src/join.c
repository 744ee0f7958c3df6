/*-------------------------------------------------------------------------
 *
 * join.c
 *		  joins of two foreign tables run by MongoDB as one pipeline with
 *		  $lookup
 *
 * An INNER or LEFT join of two tables of the same server, user mapping
 * and database becomes one aggregation on the outer collection:
 *
 *	 $match		the outer table's shipped conditions
 *	 $project	the outer columns needed, as "c<N>" keys (N: the position
 *				in the scan's target list, fdw_scan_tlist)
 *	 $lookup	from the inner collection, with let variables k0, k1, ...
 *				holding the outer join keys, and a sub-pipeline:
 *				  $match	{$expr: the join keys, with type guards}
 *				  $match	the inner table's shipped conditions
 *				  $project	the inner columns needed, as "c<N>" keys
 *				into the field "j"
 *	 $unwind	"$j", keeping documents without a match for a LEFT join
 *
 * A row is then the outer document's keys plus those of its joined
 * document under "j", whose _id names it in conversion errors.
 *
 * Rules of this file:
 * - The joined rows are exactly SQL's.  Only equalities of two columns
 *   are shipped, and only for types where MongoDB's aggregation $eq on
 *   the BSON values means SQL's = on the converted values: integers and
 *   unconstrained numeric (every BSON number, compared by value across
 *   types, as convert.c converts them exactly), text under a
 *   deterministic collation (strings byte by byte; an ObjectId, which a
 *   text column reads as 24 hex digits, is compared as that string) and
 *   boolean.  $eq alone is not SQL's =: it matches null to null, missing
 *   to missing, an array to the same array, never an element of it.  So
 *   each key is guarded by $type: an outer key that is null, missing, an
 *   array or of another type joins nothing, as SQL's NULL (or the
 *   conversion error, which the outer row raises) would.
 * - A condition that cannot ship keeps the join local, except in an
 *   INNER join, where PostgreSQL checks it on the joined rows (so do the
 *   unshipped conditions of both tables).  In a LEFT join every ON
 *   condition must ship, and the inner table's conditions too: after
 *   null-extension they cannot be checked.
 * - The join keys and the columns of shipped conditions are fetched, so
 *   that a matched document whose value does not fit its column raises
 *   the error it raises without pushdown.
 * - Cost, in the units of costs.c: a round trip per batch, the outer
 *   collection's $match, one lookup per outer document (reading the inner
 *   collection's matching documents through an index on the key's field,
 *   else the whole collection) and each joined row sent.  The local join
 *   costs both scans and the join; the planner picks the cheaper.
 * - Why a join stays local is shown on the scans of its two tables
 *   (EXPLAIN VERBOSE, Local Join Reasons).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "qleaf_fdw.h"

#include "access/table.h"
#include "access/stratnum.h"
#include "catalog/pg_type.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "optimizer/tlist.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

/* Documents per getMore (as scan.c asks), for the round trips of a join. */
#define QLEAF_JOIN_GETMORE_BATCH	10000

/* The field $lookup writes the joined document to. */
#define QLEAF_JOINED_KEY			"j"

/* Tag of the join item of a plan's fdw_private list. */
#define QLEAF_JOIN_TAG				"join"

bool		qleaf_enable_join_pushdown = true;

/* What a join key compares, for its $type guard. */
typedef enum JoinKeyKind
{
	JK_NUMBER,					/* integers, numeric */
	JK_TEXT,
	JK_BOOL
} JoinKeyKind;

/* One shipped equality: outer column = inner column. */
typedef struct JoinKey
{
	Var		   *outer;
	Var		   *inner;
	JoinKeyKind kind;
} JoinKey;

/*
 * Planner state of a join relation, in joinrel->fdw_private.  Set at the
 * first GetForeignJoinPaths call for the relation: pushable or not, the
 * answer holds for the later calls.
 */
typedef struct QleafJoinInfo
{
	bool		pushable;
	JoinType	jointype;		/* JOIN_INNER or JOIN_LEFT */
	RelOptInfo *outerrel;		/* the collection aggregated */
	RelOptInfo *innerrel;		/* the collection of $lookup */
	List	   *keys;			/* JoinKeys */
	List	   *inner_on_conds; /* LEFT: ON conditions on the inner table
								 * alone, shipped in the sub-pipeline */
	List	   *local_conds;	/* RestrictInfos PostgreSQL checks on rows */
	List	   *local_reasons;	/* why, one String each */
	const char *refusal;		/* why the join stays local, if it does */
} QleafJoinInfo;

/*
 * Note why a join stays local; the scans of its two tables show it in
 * EXPLAIN VERBOSE (qleaf_join_refusals).
 */
static bool
refuse(QleafJoinInfo *ji, const char *reason)
{
	ji->refusal = reason;
	return false;
}

void
qleaf_join_init(void)
{
	DefineCustomBoolVariable("qleaf_fdw.enable_join_pushdown",
							 "Lets MongoDB join two foreign tables with $lookup.",
							 "Only joins whose result MongoDB computes exactly are shipped. "
							 "qleaf_fdw.enable_pushdown off turns join pushdown off too.",
							 &qleaf_enable_join_pushdown,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
}

/*
 * A column of rel under a cast that keeps its value (a RelabelType, or an
 * integer widened to numeric), with what it holds for a join key.
 */
static Var *
key_column(Expr *expr, RelOptInfo *rel, QleafValueKind *kind,
		   const char **reason)
{
	QleafRelInfo *fpinfo = (QleafRelInfo *) rel->fdw_private;
	Var		   *var;
	bool		null_mode;
	char	   *colname;
	char	   *field;

	for (;;)
	{
		if (IsA(expr, RelabelType))
			expr = ((RelabelType *) expr)->arg;
		else if (IsA(expr, FuncExpr) &&
				 list_length(((FuncExpr *) expr)->args) == 1 &&
				 (((FuncExpr *) expr)->funcid == F_NUMERIC_INT2 ||
				  ((FuncExpr *) expr)->funcid == F_NUMERIC_INT4 ||
				  ((FuncExpr *) expr)->funcid == F_NUMERIC_INT8))
			expr = linitial(((FuncExpr *) expr)->args);
		else
			break;
	}
	if (!IsA(expr, Var))
	{
		*reason = "a join condition compares an expression, not a column";
		return NULL;
	}
	var = (Var *) expr;
	if ((Index) var->varno != rel->relid || var->varlevelsup != 0)
		return NULL;
	if (var->varattno <= 0)
	{
		*reason = "a join condition compares a system column";
		return NULL;
	}
	colname = get_attname(fpinfo->table->relid, var->varattno, false);
	null_mode = fpinfo->opts.null_on_error;
	field = qleaf_get_column_field(fpinfo->table->relid, var->varattno,
								   colname, &null_mode);
	if (qleaf_is_root_field(field))
	{
		*reason = psprintf("column \"%s\" maps the whole document", colname);
		return NULL;
	}
	*kind = qleaf_value_kind(var->vartype, var->vartypmod, reason);

	/*
	 * With on_conversion_error 'null', what does not convert is NULL and
	 * joins nothing.  For numeric, text and boolean that is what the type
	 * guard excludes anyway; an integer column also turns numbers into
	 * NULL (fractions, out of range), which $eq would still join.
	 */
	if (null_mode && *kind == QLEAF_VK_INT)
	{
		*reason = psprintf("integer column \"%s\" reads numbers that do not fit as NULL (on_conversion_error 'null'), which MongoDB would still join",
						   colname);
		return NULL;
	}
	if (*kind != QLEAF_VK_INT && *kind != QLEAF_VK_NUMERIC &&
		*kind != QLEAF_VK_TEXT && *kind != QLEAF_VK_BOOL)
	{
		if (*kind != QLEAF_VK_NONE)
			*reason = psprintf("no join pushdown for type %s",
							   format_type_be(var->vartype));
		*reason = psprintf("column \"%s\": %s", colname, *reason);
		return NULL;
	}
	return var;
}

/*
 * Is clause "outer column = inner column" (either way round) with a
 * meaning MongoDB's $eq keeps?  Fills key; else says why not.
 */
static bool
join_key(PlannerInfo *root, Expr *clause, RelOptInfo *outerrel,
		 RelOptInfo *innerrel, JoinKey *key, const char **reason)
{
	OpExpr	   *op;
	Expr	   *l;
	Expr	   *r;
	Var		   *lv;
	Var		   *rv;
	QleafValueKind lk = QLEAF_VK_NONE;
	QleafValueKind rk = QLEAF_VK_NONE;
	Oid			lt;
	Oid			rt;
	const char *lreason = NULL;
	const char *rreason = NULL;
	int			strategy = 0;

	*reason = "the join condition is not an equality of two columns";
	if (!IsA(clause, OpExpr) || list_length(((OpExpr *) clause)->args) != 2)
		return false;
	op = (OpExpr *) clause;
	l = linitial(op->args);
	r = lsecond(op->args);

	lv = key_column(l, outerrel, &lk, &lreason);
	if (lv != NULL)
		rv = key_column(r, innerrel, &rk, &rreason);
	else
	{
		if (lreason != NULL)
		{
			*reason = lreason;
			return false;
		}
		lv = key_column(l, innerrel, &lk, &lreason);
		if (lv == NULL)
		{
			if (lreason != NULL)
				*reason = lreason;
			return false;
		}
		rv = key_column(r, outerrel, &rk, &rreason);
	}
	if (rv == NULL)
	{
		if (rreason != NULL)
			*reason = rreason;
		return false;
	}

	/* the operator: a built-in equality of the operands' types */
	lt = exprType((Node *) l);
	rt = exprType((Node *) r);
	if (lt == NUMERICOID && rt == NUMERICOID)
		strategy = qleaf_comparison_strategy(op->opno, QLEAF_VK_NUMERIC,
											 NUMERICOID, NUMERICOID);
	else if ((lk == QLEAF_VK_INT && rk == QLEAF_VK_INT) ||
			 (lk == QLEAF_VK_TEXT && rk == QLEAF_VK_TEXT) ||
			 (lk == QLEAF_VK_BOOL && rk == QLEAF_VK_BOOL))
		strategy = qleaf_comparison_strategy(op->opno, lk, lt, rt);
	if (strategy != BTEqualStrategyNumber)
	{
		*reason = psprintf("operator %s is no built-in equality MongoDB evaluates alike",
						   get_opname(op->opno));
		return false;
	}
	if (lk == QLEAF_VK_TEXT &&
		!qleaf_collation_ok(op->inputcollid, false, reason))
		return false;

	if (bms_is_member(lv->varno, outerrel->relids))
	{
		key->outer = lv;
		key->inner = rv;
	}
	else
	{
		key->outer = rv;
		key->inner = lv;
	}
	key->kind = lk == QLEAF_VK_TEXT ? JK_TEXT :
		lk == QLEAF_VK_BOOL ? JK_BOOL : JK_NUMBER;
	return true;
}

/* Does expr need a value a join scan cannot produce (whole row, ctid)? */
static bool
needs_system_or_whole_row(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
		return ((Var *) node)->varattno <= 0;
	return expression_tree_walker(node, needs_system_or_whole_row, context);
}

/* The base relation's planner state, or NULL with *reason. */
static QleafRelInfo *
base_info(RelOptInfo *rel, const char **reason)
{
	QleafRelInfo *fpinfo;

	if (rel->reloptkind != RELOPT_BASEREL)
	{
		*reason = "only joins of two tables are pushed down";
		return NULL;
	}
	fpinfo = (QleafRelInfo *) rel->fdw_private;
	if (fpinfo == NULL || qleaf_is_changes_table(fpinfo->table))
	{
		*reason = "a changes table never joins in MongoDB";
		return NULL;
	}
	if (!bms_is_empty(rel->lateral_relids))
	{
		*reason = "a table reads a lateral reference";
		return NULL;
	}
	return fpinfo;
}

/*
 * Decide whether MongoDB can run the join, and how; fill ji.
 */
static bool
join_is_pushable(PlannerInfo *root, RelOptInfo *joinrel,
				 RelOptInfo *outerrel, RelOptInfo *innerrel,
				 JoinType jointype, JoinPathExtraData *extra,
				 QleafJoinInfo *ji)
{
	QleafRelInfo *fo;
	QleafRelInfo *fi;
	const char *reason = NULL;
	const char *key_reason = NULL;
	ListCell   *lc;

	if (!qleaf_enable_pushdown)
		return refuse(ji, "qleaf_fdw.enable_pushdown is off");
	if (!qleaf_enable_join_pushdown)
		return refuse(ji, "qleaf_fdw.enable_join_pushdown is off");
	/* rows to lock or recheck (EvalPlanQual) need a scan per table */
	if (root->rowMarks != NIL ||
		(root->parse->resultRelation > 0 &&
		 bms_is_member(root->parse->resultRelation, joinrel->relids)))
		return refuse(ji, "the query locks or modifies rows of the tables");

	/* a RIGHT join is a LEFT join the other way round */
	if (jointype == JOIN_RIGHT)
	{
		RelOptInfo *t = outerrel;

		outerrel = innerrel;
		innerrel = t;
		jointype = JOIN_LEFT;
	}
	if (jointype != JOIN_INNER && jointype != JOIN_LEFT)
		return refuse(ji, psprintf("%s joins have no $lookup equivalent",
								   jointype == JOIN_FULL ? "FULL" :
								   jointype == JOIN_SEMI ? "SEMI" :
								   jointype == JOIN_ANTI ? "ANTI" :
								   "unique-ified"));

	if ((fo = base_info(outerrel, &reason)) == NULL ||
		(fi = base_info(innerrel, &reason)) == NULL)
		return refuse(ji, reason);

	if (fo->server->serverid != fi->server->serverid)
		return refuse(ji, "the tables are on different servers");
	if (fo->user == NULL || fi->user == NULL ||
		fo->user->umid != fi->user->umid)
		return refuse(ji, "the tables use different user mappings");
	if (strcmp(fo->opts.database, fi->opts.database) != 0)
		return refuse(ji, psprintf("the tables are in different databases (\"%s\", \"%s\")",
							   fo->opts.database, fi->opts.database));

	/* a placeholder computed at or below this join needs a local join */
	foreach(lc, root->placeholder_list)
	{
		PlaceHolderInfo *phi = (PlaceHolderInfo *) lfirst(lc);

		if (bms_overlap(phi->ph_eval_at, joinrel->relids))
			return refuse(ji, "the join computes a placeholder expression");
	}
	if (needs_system_or_whole_row((Node *) joinrel->reltarget->exprs, NULL))
		return refuse(ji, "the query reads a whole row or a system column");

	/* the nullable side of a LEFT join must be filtered by MongoDB alone */
	if (jointype == JOIN_LEFT && fi->local_conds != NIL)
		return refuse(ji, "the inner table of a LEFT join has conditions MongoDB cannot evaluate exactly");

	ji->jointype = jointype;

	/*
	 * An INNER join gets the smaller side as its outer collection: fewer
	 * lookups.
	 */
	if (jointype == JOIN_INNER && innerrel->rows < outerrel->rows)
	{
		RelOptInfo *t = outerrel;
		QleafRelInfo *tf = fo;

		outerrel = innerrel;
		innerrel = t;
		fo = fi;
		fi = tf;
	}
	ji->outerrel = outerrel;
	ji->innerrel = innerrel;

	foreach(lc, extra->restrictlist)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		bool		is_join_cond = !(IS_OUTER_JOIN(jointype) &&
									 RINFO_IS_PUSHED_DOWN(ri, joinrel->relids));
		JoinKey		key;

		if (is_join_cond &&
			join_key(root, ri->clause, outerrel, innerrel, &key, &reason))
		{
			JoinKey    *k = palloc(sizeof(JoinKey));

			*k = key;
			ji->keys = lappend(ji->keys, k);
			continue;
		}

		if (is_join_cond && key_reason == NULL)
			key_reason = reason;
		if (jointype == JOIN_LEFT && is_join_cond)
		{
			const char *why;

			/* ON conditions on the inner table alone filter the lookup */
			if (bms_is_subset(ri->clause_relids, innerrel->relids) &&
				qleaf_classify_expr(root, innerrel, ri->clause, &why) ==
				QLEAF_SHIP_EXACT)
			{
				ji->inner_on_conds = lappend(ji->inner_on_conds, ri);
				continue;
			}
			return refuse(ji, psprintf("a condition of the LEFT join cannot be evaluated by MongoDB: %s",
								   bms_is_subset(ri->clause_relids, innerrel->relids) ?
								   why : reason));
		}

		/* INNER join conditions and filters above a LEFT join: local */
		ji->local_conds = lappend(ji->local_conds, ri);
		ji->local_reasons = lappend(ji->local_reasons,
									makeString(is_join_cond ?
											   psprintf("join condition: %s", reason) :
											   pstrdup("a condition on the result of the LEFT join")));
		reason = NULL;
	}
	if (ji->keys == NIL)
		return refuse(ji, psprintf("no join condition is an equality MongoDB evaluates exactly (%s)",
								   key_reason != NULL ? key_reason :
								   "there is no join condition"));

	ji->pushable = true;
	return true;
}

/*
 * Does an index of the inner collection lead with the field of the first
 * join key (or is it _id)?  Then a lookup reads only the matching
 * documents.
 */
static bool
inner_key_indexed(QleafJoinInfo *ji)
{
	QleafRelInfo *fi = (QleafRelInfo *) ji->innerrel->fdw_private;
	JoinKey    *k = (JoinKey *) linitial(ji->keys);
	char	   *colname = get_attname(fi->table->relid, k->inner->varattno, false);
	bool		ignored = false;
	char	   *field = qleaf_get_column_field(fi->table->relid,
											   k->inner->varattno, colname,
											   &ignored);
	ListCell   *lc;

	if (k->kind == JK_TEXT)
		return false;			/* compared as $toString: no index */
	if (strcmp(field, "_id") == 0)
		return true;
	foreach(lc, fi->index_keys)
	{
		if (strcmp(strVal(lfirst(lc)), field) == 0)
			return true;
	}
	return false;
}

/*
 * GetForeignJoinPaths: a path that runs the join in MongoDB, when it can
 * and it moves fewer documents than joining locally.
 */
void
qleaf_get_foreign_join_paths(PlannerInfo *root, RelOptInfo *joinrel,
							 RelOptInfo *outerrel, RelOptInfo *innerrel,
							 JoinType jointype, JoinPathExtraData *extra)
{
	QleafJoinInfo *ji;
	QleafRelInfo *fo;
	QleafRelInfo *fi;
	QualCost	local_cost;
	double		rows;
	double		lookups;
	double		per_lookup;
	Cost		startup_cost;
	Cost		total_cost;
	ForeignPath *path;

	/* decided at the first call for this relation */
	if (joinrel->fdw_private != NULL)
		return;
	ji = palloc0(sizeof(QleafJoinInfo));
	joinrel->fdw_private = ji;
	if (!join_is_pushable(root, joinrel, outerrel, innerrel, jointype, extra,
						  ji))
		return;

	/*
	 * MongoDB reads the outer collection, runs the lookup for each outer
	 * document its $match lets through, and sends the joined rows;
	 * PostgreSQL checks the local conditions on them.  In the units of
	 * costs.c: a lookup examines the inner collection's documents that
	 * match the key through an index on the inner key's field, else the
	 * whole collection.
	 */
	fo = (QleafRelInfo *) ji->outerrel->fdw_private;
	fi = (QleafRelInfo *) ji->innerrel->fdw_private;
	rows = joinrel->rows;
	lookups = fo->retrieved_rows;
	per_lookup = ji->innerrel->tuples;
	if (inner_key_indexed(ji))
		per_lookup = lookups > 0 ? Min(rows / lookups, per_lookup) : 0;
	cost_qual_eval(&local_cost, ji->local_conds, root);
	{
		QualCost	c;

		cost_qual_eval(&c, fo->local_conds, root);
		local_cost.startup += c.startup;
		local_cost.per_tuple += c.per_tuple;
		cost_qual_eval(&c, fi->local_conds, root);
		local_cost.startup += c.startup;
		local_cost.per_tuple += c.per_tuple;
	}
	startup_cost = fo->fdw_startup_cost + local_cost.startup;
	total_cost = startup_cost +
		ceil(rows / QLEAF_JOIN_GETMORE_BATCH) * fo->fdw_startup_cost +
		ji->outerrel->tuples * cpu_operator_cost +
		lookups * per_lookup * cpu_operator_cost +
		rows * (fo->fdw_tuple_cost + cpu_tuple_cost + local_cost.per_tuple);

	path = create_foreign_join_path(root, joinrel,
									NULL,	/* default pathtarget */
									rows,
									startup_cost,
									total_cost,
									NIL,	/* no pathkeys */
									joinrel->lateral_relids,
									NULL,	/* no EPQ path: SELECT only */
									NIL);
	add_path(joinrel, (Path *) path);
}

/* Add {name: <value of expression path, an ObjectId as its hex string>} */
static void
append_key_value(bson_t *doc, const char *name, const char *path,
				 JoinKeyKind kind)
{
	bson_t		cond;
	bson_t		arr;
	bson_t		e;
	bson_t		t;

	if (kind != JK_TEXT)
	{
		bson_append_utf8(doc, name, -1, path, -1);
		return;
	}
	/* {$cond: [{$eq: [{$type: path}, "objectId"]}, {$toString: path}, path]} */
	bson_append_document_begin(doc, name, -1, &cond);
	bson_append_array_begin(&cond, "$cond", -1, &arr);
	bson_append_document_begin(&arr, "0", -1, &e);
	{
		bson_t		eqarr;

		bson_append_array_begin(&e, "$eq", -1, &eqarr);
		bson_append_document_begin(&eqarr, "0", -1, &t);
		bson_append_utf8(&t, "$type", -1, path, -1);
		bson_append_document_end(&eqarr, &t);
		bson_append_utf8(&eqarr, "1", -1, "objectId", -1);
		bson_append_array_end(&e, &eqarr);
	}
	bson_append_document_end(&arr, &e);
	bson_append_document_begin(&arr, "1", -1, &t);
	bson_append_utf8(&t, "$toString", -1, path, -1);
	bson_append_document_end(&arr, &t);
	bson_append_utf8(&arr, "2", -1, path, -1);
	bson_append_array_end(&cond, &arr);
	bson_append_document_end(doc, &cond);
}

/*
 * The $expr of key i: {$and: [{$in: [{$type: "$$k<i>"}, [types]]},
 * {$eq: [<inner value>, "$$k<i>"]}]}, as element key of arr.
 */
static void
append_key_condition(bson_t *arr, const char *key, int i,
					 const char *inner_path, JoinKeyKind kind)
{
	static const char *const number_types[] = {"int", "long", "double", "decimal", NULL};
	static const char *const text_types[] = {"string", "symbol", NULL};
	static const char *const bool_types[] = {"bool", NULL};
	const char *const *types = kind == JK_NUMBER ? number_types :
		kind == JK_TEXT ? text_types : bool_types;
	char		var[32];
	char		k[16];
	bson_t		and;
	bson_t		andarr;
	bson_t		d;
	bson_t		a;
	bson_t		t;
	bson_t		list;
	int			n;

	snprintf(var, sizeof(var), "$$k%d", i);
	bson_append_document_begin(arr, key, -1, &and);
	bson_append_array_begin(&and, "$and", -1, &andarr);

	bson_append_document_begin(&andarr, "0", -1, &d);
	bson_append_array_begin(&d, "$in", -1, &a);
	bson_append_document_begin(&a, "0", -1, &t);
	bson_append_utf8(&t, "$type", -1, var, -1);
	bson_append_document_end(&a, &t);
	bson_append_array_begin(&a, "1", -1, &list);
	for (n = 0; types[n] != NULL; n++)
	{
		snprintf(k, sizeof(k), "%d", n);
		bson_append_utf8(&list, k, -1, types[n], -1);
	}
	bson_append_array_end(&a, &list);
	bson_append_array_end(&d, &a);
	bson_append_document_end(&andarr, &d);

	bson_append_document_begin(&andarr, "1", -1, &d);
	bson_append_array_begin(&d, "$eq", -1, &a);
	append_key_value(&a, "0", inner_path, kind);
	bson_append_utf8(&a, "1", -1, var, -1);
	bson_append_array_end(&d, &a);
	bson_append_document_end(&andarr, &d);

	bson_append_array_end(&and, &andarr);
	bson_append_document_end(arr, &and);
}

/* The field path a column maps to, checked to fit the column. */
static char *
column_field(Oid relid, AttrNumber attnum, bool *null_on_error)
{
	Relation	rel = table_open(relid, NoLock);
	char	   *colname = get_attname(relid, attnum, false);
	char	   *field = qleaf_get_column_field(relid, attnum, colname,
											   null_on_error);

	qleaf_check_column_mapping(rel, attnum, field);
	table_close(rel, NoLock);
	return field;
}

/*
 * Append {$project: {_id: 1, c<N>: "$field", ...}} for the entries of
 * tlist that are columns of rel.
 */
static void
append_side_project(bson_t *stages, const char *key, List *tlist,
					RelOptInfo *rel, Oid relid)
{
	bson_t		stage;
	bson_t		project;
	ListCell   *lc;

	bson_append_document_begin(stages, key, -1, &stage);
	bson_append_document_begin(&stage, "$project", -1, &project);
	bson_append_int32(&project, "_id", -1, 1);
	foreach(lc, tlist)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);
		Var		   *var = (Var *) tle->expr;
		bool		null_on_error = false;
		char		ckey[16];
		char	   *field;

		if (!IsA(var, Var) || (Index) var->varno != rel->relid)
			continue;
		field = column_field(relid, var->varattno, &null_on_error);
		snprintf(ckey, sizeof(ckey), "c%d", foreach_current_index(lc));
		if (qleaf_is_root_field(field))
			bson_append_utf8(&project, ckey, -1, QLEAF_ROOT_FIELD, -1);
		else
			bson_append_utf8(&project, ckey, -1, psprintf("$%s", field), -1);
	}
	bson_append_document_end(&stage, &project);
	bson_append_document_end(stages, &stage);
}

/* The tlist position (0-based) of var, which must be there. */
static int
tlist_position(List *tlist, Var *var)
{
	ListCell   *lc;

	foreach(lc, tlist)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);

		if (equal(tle->expr, var))
			return foreach_current_index(lc);
	}
	elog(ERROR, "qleaf_fdw: join key not in the scan's target list");
	return -1;
}

/* Columns of shipped conditions, as for a base scan: not json/jsonb. */
static List *
condition_columns(List *conds)
{
	List	   *vars = pull_var_clause((Node *) extract_actual_clauses(conds, false),
									   PVC_RECURSE_PLACEHOLDERS);
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, vars)
	{
		Var		   *v = (Var *) lfirst(lc);

		if (IsA(v, Var) && v->varattno > 0 &&
			v->vartype != JSONBOID && v->vartype != JSONOID)
			result = lappend(result, v);
	}
	return result;
}

/* "(schema.table alias)" */
static char *
rel_label(PlannerInfo *root, RelOptInfo *rel)
{
	RangeTblEntry *rte = planner_rt_fetch(rel->relid, root);
	char	   *name = get_rel_name(rte->relid);
	char	   *nsp = get_namespace_name(get_rel_namespace(rte->relid));

	if (strcmp(name, rte->eref->aliasname) == 0)
		return psprintf("(%s.%s)", quote_identifier(nsp),
						quote_identifier(name));
	return psprintf("(%s.%s %s)", quote_identifier(nsp),
					quote_identifier(name),
					quote_identifier(rte->eref->aliasname));
}

/*
 * GetForeignPlan of a join relation: a scan with no relation of its own
 * (scanrelid 0) whose rows are fdw_scan_tlist.
 */
ForeignScan *
qleaf_join_plan(PlannerInfo *root, RelOptInfo *joinrel,
				ForeignPath *best_path, List *tlist, List *scan_clauses,
				Plan *outer_plan)
{
	QleafJoinInfo *ji = (QleafJoinInfo *) joinrel->fdw_private;
	RelOptInfo *outerrel = ji->outerrel;
	RelOptInfo *innerrel = ji->innerrel;
	QleafRelInfo *fo = (QleafRelInfo *) outerrel->fdw_private;
	QleafRelInfo *fi = (QleafRelInfo *) innerrel->fdw_private;
	List	   *local_conds = NIL;
	List	   *local_reasons = NIL;
	List	   *scan_tlist;
	List	   *params = NIL;
	List	   *fields = NIL;
	List	   *retrieved = NIL;
	List	   *columns = NIL;
	List	   *inner_remote;
	ListCell   *lc;
	bson_t	   *stages;
	bson_t		stage;
	bson_t		lookup;
	bson_t		let;
	bson_t		sub;
	bson_t		d;
	int			nstages = 0;
	int			nsub = 0;
	char		key[16];
	List	   *fdw_private;
	List	   *join_private;

	Assert(ji->pushable);

	/*
	 * What PostgreSQL checks on the joined rows: the tables' conditions
	 * MongoDB does not evaluate exactly, then the join's.
	 */
	foreach(lc, fo->local_conds)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		const char *reason;

		(void) qleaf_classify_expr(root, outerrel, ri->clause, &reason);
		local_conds = lappend(local_conds, ri);
		local_reasons = lappend(local_reasons, makeString(pstrdup(reason)));
	}
	foreach(lc, fi->local_conds)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		const char *reason;

		(void) qleaf_classify_expr(root, innerrel, ri->clause, &reason);
		local_conds = lappend(local_conds, ri);
		local_reasons = lappend(local_reasons, makeString(pstrdup(reason)));
	}
	local_conds = list_concat(local_conds, ji->local_conds);
	local_reasons = list_concat(local_reasons, list_copy(ji->local_reasons));

	/*
	 * The scan's row: the columns the join's output and local conditions
	 * read, then the join keys and the columns of shipped conditions (to
	 * raise their conversion errors).
	 */
	scan_tlist = add_to_flat_tlist(NIL,
								   pull_var_clause((Node *) joinrel->reltarget->exprs,
												   PVC_RECURSE_PLACEHOLDERS));
	scan_tlist = add_to_flat_tlist(scan_tlist,
								   pull_var_clause((Node *) extract_actual_clauses(local_conds, false),
												   PVC_RECURSE_PLACEHOLDERS));
	foreach(lc, ji->keys)
	{
		JoinKey    *k = (JoinKey *) lfirst(lc);

		scan_tlist = add_to_flat_tlist(scan_tlist,
									   list_make2(k->outer, k->inner));
	}
	inner_remote = list_concat(list_copy(fi->remote_conds), ji->inner_on_conds);
	scan_tlist = add_to_flat_tlist(scan_tlist, condition_columns(fo->remote_conds));
	scan_tlist = add_to_flat_tlist(scan_tlist, condition_columns(inner_remote));

	stages = qleaf_bson_new_owned(CurrentMemoryContext);

	/* the outer collection: its conditions, its columns */
	if (fo->remote_conds != NIL)
	{
		snprintf(key, sizeof(key), "%d", nstages++);
		qleaf_append_match_stage(root, outerrel, stages, key,
								 fo->remote_conds, &params);
	}
	snprintf(key, sizeof(key), "%d", nstages++);
	append_side_project(stages, key, scan_tlist, outerrel, fo->table->relid);

	/* the lookup */
	snprintf(key, sizeof(key), "%d", nstages++);
	bson_append_document_begin(stages, key, -1, &stage);
	bson_append_document_begin(&stage, "$lookup", -1, &lookup);
	bson_append_utf8(&lookup, "from", -1, fi->opts.collection, -1);
	bson_append_document_begin(&lookup, "let", -1, &let);
	foreach(lc, ji->keys)
	{
		JoinKey    *k = (JoinKey *) lfirst(lc);
		char		name[16];

		snprintf(name, sizeof(name), "k%d", foreach_current_index(lc));
		append_key_value(&let, name,
						 psprintf("$c%d", tlist_position(scan_tlist, k->outer)),
						 k->kind);
	}
	bson_append_document_end(&lookup, &let);

	bson_append_array_begin(&lookup, "pipeline", -1, &sub);
	snprintf(key, sizeof(key), "%d", nsub++);
	bson_append_document_begin(&sub, key, -1, &d);
	{
		bson_t		match;
		bson_t		expr;
		bson_t		all;

		bson_append_document_begin(&d, "$match", -1, &match);
		if (list_length(ji->keys) == 1)
		{
			JoinKey    *k = (JoinKey *) linitial(ji->keys);
			bool		ignored;

			append_key_condition(&match, "$expr", 0,
								 psprintf("$%s", column_field(fi->table->relid,
															  k->inner->varattno,
															  &ignored)),
								 k->kind);
		}
		else
		{
			bson_append_document_begin(&match, "$expr", -1, &expr);
			bson_append_array_begin(&expr, "$and", -1, &all);
			foreach(lc, ji->keys)
			{
				JoinKey    *k = (JoinKey *) lfirst(lc);
				bool		ignored;
				char		ek[16];

				snprintf(ek, sizeof(ek), "%d", foreach_current_index(lc));
				append_key_condition(&all, ek, foreach_current_index(lc),
									 psprintf("$%s", column_field(fi->table->relid,
																  k->inner->varattno,
																  &ignored)),
									 k->kind);
			}
			bson_append_array_end(&expr, &all);
			bson_append_document_end(&match, &expr);
		}
		bson_append_document_end(&d, &match);
	}
	bson_append_document_end(&sub, &d);
	if (inner_remote != NIL)
	{
		snprintf(key, sizeof(key), "%d", nsub++);
		qleaf_append_match_stage(root, innerrel, &sub, key, inner_remote,
								 &params);
	}
	snprintf(key, sizeof(key), "%d", nsub++);
	append_side_project(&sub, key, scan_tlist, innerrel, fi->table->relid);
	bson_append_array_end(&lookup, &sub);
	bson_append_utf8(&lookup, "as", -1, QLEAF_JOINED_KEY, -1);
	bson_append_document_end(&stage, &lookup);
	bson_append_document_end(stages, &stage);

	/* one row per joined document; LEFT: the outer document alone */
	snprintf(key, sizeof(key), "%d", nstages++);
	bson_append_document_begin(stages, key, -1, &stage);
	bson_append_document_begin(&stage, "$unwind", -1, &d);
	bson_append_utf8(&d, "path", -1, "$" QLEAF_JOINED_KEY, -1);
	bson_append_bool(&d, "preserveNullAndEmptyArrays", -1,
					 ji->jointype == JOIN_LEFT);
	bson_append_document_end(&stage, &d);
	bson_append_document_end(stages, &stage);

	/*
	 * Per key: the attribute it fills (its tlist position), the column's
	 * name and field for conversion errors.
	 */
	foreach(lc, scan_tlist)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);
		Var		   *var = (Var *) tle->expr;
		QleafRelInfo *f = (Index) var->varno == outerrel->relid ? fo : fi;
		bool		null_on_error = f->opts.null_on_error;
		char	   *field;

		Assert(IsA(var, Var));
		field = column_field(f->table->relid, var->varattno, &null_on_error);
		retrieved = lappend_int(retrieved, foreach_current_index(lc) + 1);
		fields = lappend(fields, makeString(field));
		columns = lappend(columns,
						  list_make2(makeString(get_attname(f->table->relid,
															var->varattno,
															false)),
									 makeInteger(null_on_error ? 1 : 0)));
	}

	join_private = list_make5(makeString(QLEAF_JOIN_TAG),
							  makeString(psprintf("%s %s JOIN %s",
												  rel_label(root, outerrel),
												  ji->jointype == JOIN_LEFT ? "LEFT" : "INNER",
												  rel_label(root, innerrel))),
							  makeString(fi->opts.collection),
							  columns,
							  makeInteger(ji->jointype == JOIN_LEFT ? 1 : 0));

	fdw_private = NIL;
	fdw_private = lappend(fdw_private,
						  makeConst(BYTEAOID, -1, InvalidOid, -1,
									PointerGetDatum(qleaf_bson_to_bytea(stages)),
									false, false));
	fdw_private = lappend(fdw_private, retrieved);
	fdw_private = lappend(fdw_private, fields);
	fdw_private = lappend(fdw_private, makeString(fo->opts.database));
	fdw_private = lappend(fdw_private, makeString(fo->opts.collection));
	fdw_private = lappend(fdw_private, makeInteger(fo->opts.batch_size));
	fdw_private = lappend(fdw_private, local_reasons);
	fdw_private = lappend(fdw_private, join_private);

	return make_foreignscan(tlist,
							extract_actual_clauses(local_conds, false),
							0,	/* no relation: the rows are scan_tlist */
							params,
							fdw_private,
							scan_tlist,
							NIL,	/* no recheck: SELECT only */
							outer_plan);
}

/* Is fsplan a pushed-down join? */
bool
qleaf_is_join_plan(ForeignScan *fsplan)
{
	List	   *fdw_private = fsplan->fdw_private;
	Node	   *item;

	if (fsplan->scan.scanrelid != 0 ||
		list_length(fdw_private) <= FdwScanPrivateJoin)
		return false;
	item = list_nth(fdw_private, FdwScanPrivateJoin);
	return item != NULL && IsA(item, List) && IsA(linitial((List *) item), String) &&
		strcmp(strVal(linitial((List *) item)), QLEAF_JOIN_TAG) == 0;
}

/*
 * Start the scan of a pushed-down join: the user mapping of the tables'
 * user on their server, the columns of the scan's row.
 */
QleafScan *
qleaf_join_scan_begin(ForeignScanState *node, const bytea *pipeline,
					  int batch_size)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	List	   *fdw_private = fsplan->fdw_private;
	List	   *join_private = (List *) list_nth(fdw_private, FdwScanPrivateJoin);
	EState	   *estate = node->ss.ps.state;
	TupleDesc	tupdesc = node->ss.ss_ScanTupleSlot->tts_tupleDescriptor;
	RangeTblEntry *rte;
	Oid			userid;
	ForeignTable *table;
	ForeignServer *server;
	UserMapping *user;
	QleafScanColumn *cols;
	List	   *columns = (List *) list_nth(join_private, 3);
	List	   *fields = (List *) list_nth(fdw_private, FdwScanPrivateFields);
	ListCell   *lc;
	ListCell   *lf;
	int			i = 0;

	/* both tables have the same user and server: the planner checked */
	rte = exec_rt_fetch(bms_next_member(fsplan->fs_relids, -1), estate);
	userid = OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
	table = GetForeignTable(rte->relid);
	server = GetForeignServer(table->serverid);
	user = GetUserMapping(userid, server->serverid);

	cols = palloc0(sizeof(QleafScanColumn) * Max(list_length(columns), 1));
	forboth(lc, columns, lf, fields)
	{
		List	   *c = (List *) lfirst(lc);
		Form_pg_attribute attr = TupleDescAttr(tupdesc, i);
		QleafScanColumn *col = &cols[i];

		col->att = i;
		col->typid = attr->atttypid;
		col->typmod = attr->atttypmod;
		col->colname = strVal(linitial(c));
		col->field = strVal(lfirst(lf));
		col->null_on_error = intVal(lsecond(c)) != 0;
		col->from_id = false;
		i++;
	}
	return qleaf_scan_begin_columns(server, user,
									strVal(list_nth(fdw_private, FdwScanPrivateDatabase)),
									strVal(list_nth(fdw_private, FdwScanPrivateCollection)),
									pipeline, tupdesc->natts, cols, i,
									QLEAF_JOINED_KEY, batch_size,
									estate->es_query_cxt);
}

/* EXPLAIN: the joined tables and the collection looked up */
void
qleaf_join_explain(ForeignScanState *node, ExplainState *es)
{
	List	   *fdw_private = ((ForeignScan *) node->ss.ps.plan)->fdw_private;
	List	   *join_private = (List *) list_nth(fdw_private, FdwScanPrivateJoin);

	ExplainPropertyText("Relations", strVal(lsecond(join_private)), es);
	ExplainPropertyText("Joined Collection",
						psprintf("%s.%s",
								 strVal(list_nth(fdw_private, FdwScanPrivateDatabase)),
								 strVal(lthird(join_private))),
						es);
}

/*
 * Why the joins of baserel with another table stay local, for its scan's
 * EXPLAIN VERBOSE: one String "with <table>: <reason>" per join relation
 * of two tables that GetForeignJoinPaths refused.
 */
List *
qleaf_join_refusals(PlannerInfo *root, RelOptInfo *baserel)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, root->join_rel_list)
	{
		RelOptInfo *joinrel = (RelOptInfo *) lfirst(lc);
		QleafJoinInfo *ji = (QleafJoinInfo *) joinrel->fdw_private;
		int			other;

		if (joinrel->fdwroutine == NULL ||
			joinrel->fdwroutine->GetForeignJoinPaths != qleaf_get_foreign_join_paths ||
			ji == NULL || ji->pushable || ji->refusal == NULL ||
			bms_num_members(joinrel->relids) != 2 ||
			!bms_is_member(baserel->relid, joinrel->relids))
			continue;
		other = bms_next_member(joinrel->relids, -1);
		if (other == (int) baserel->relid)
			other = bms_next_member(joinrel->relids, other);
		result = lappend(result,
						 makeString(psprintf("with %s: %s",
											 planner_rt_fetch(other, root)->eref->aliasname,
											 ji->refusal)));
	}
	return result;
}

/* EXPLAIN VERBOSE of a base scan: why its joins stay local */
void
qleaf_join_explain_refusals(List *fdw_private, ExplainState *es)
{
	List	   *reasons = NIL;
	ListCell   *lc;

	if (list_length(fdw_private) <= FdwScanPrivateJoin)
		return;
	foreach(lc, (List *) list_nth(fdw_private, FdwScanPrivateJoin))
		reasons = lappend(reasons, strVal(lfirst(lc)));
	if (reasons != NIL)
		ExplainPropertyList("Local Join Reasons", reasons, es);
}

/*-------------------------------------------------------------------------
 *
 * upper.c
 *		  ORDER BY, LIMIT / OFFSET and aggregates in the pipeline
 *
 * Sorted paths of a foreign table (pathkeys) get a $sort; the final
 * relation of a query on one foreign table gets a $limit of LIMIT + OFFSET
 * documents (never $skip: the scan converts and drops the OFFSET rows, as
 * a Limit node would); the grouping relation gets a $group.  Rules of this
 * file:
 * - A sort key ships only where MongoDB's order of the documents is an
 *   order PostgreSQL's sort could give for the converted values: integer
 *   columns (numbers of any BSON type compare by value in both), boolean
 *   columns, and text under a "C" collation (byte order in both; ObjectIds,
 *   read as their hex text but sorted by MongoDB after every string, are
 *   sorted by their text through a computed key).  MongoDB puts null and
 *   missing fields first ascending; where PostgreSQL's NULLS placement
 *   differs, a computed null flag sorts first.  Never for columns read
 *   with on_conversion_error 'null' (a value that becomes NULL sorts by
 *   its BSON value in MongoDB), numeric and double precision (NaN sorts
 *   below every number in MongoDB and above in PostgreSQL), timestamps
 *   (BSON Timestamps sort after every date) or jsonb.
 * - LIMIT / OFFSET ship only when every condition of the scan ships
 *   exactly and the ORDER BY, if any, ships too: MongoDB then returns the
 *   very rows PostgreSQL would keep.  Their values may be parameters, filled
 *   in at execution with PostgreSQL's own checks.
 * - An aggregate ships only when its $group result, after what this file
 *   does with it at execution, is the value PostgreSQL computes: count(*),
 *   count(col) and count(DISTINCT col) count the values that are not null
 *   or missing; sum and avg of integer columns add exact Decimal128
 *   integers, and PostgreSQL divides (avg) and gives NULL where no value was
 *   added; min/max of integer and C-collated text columns and
 *   bool_and/bool_or compare as the sort keys above.  Grouping keys are
 *   integer, boolean and text columns, normalized so that MongoDB forms the
 *   groups PostgreSQL forms (null and missing are one group; an ObjectId
 *   and its hex text are one group).  HAVING is checked by PostgreSQL.  An
 *   aggregate query without GROUP BY over no document gives PostgreSQL's
 *   one row (count 0, other aggregates NULL).
 * - Values that do not fit their column are not seen by PostgreSQL when
 *   MongoDB sorts, limits or aggregates them away (as for conditions; see
 *   deparse.c).  Columns read with on_conversion_error 'null' never ship in
 *   a sort key, a grouping key or an aggregate, since their NULLs differ.
 * - Every refusal has a reason; EXPLAIN VERBOSE of the foreign scan lists
 *   them under "Kept Local".
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "qleaf_fdw.h"

#include <math.h>

#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/pg_aggregate.h"
#include "catalog/pg_am.h"
#include "commands/defrem.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/tlist.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/selfuncs.h"

/* GUCs */
bool		qleaf_enable_sort_pushdown = true;
bool		qleaf_enable_limit_pushdown = true;
bool		qleaf_enable_aggregate_pushdown = true;

/* Columns whose conversion errors a $group checks, at most. */
#define QLEAF_MAX_GUARDS		32

/* MongoDB's $sort takes at most 32 keys; a key may take two. */
#define QLEAF_MAX_SORT_KEYS		16

/*
 * What MongoDB's sort of rows documents adds to a scan: half what
 * PostgreSQL's own sort would cost, since the documents cross the network
 * either way and the server sorts them before they do.
 */
static Cost
sort_cost(double rows)
{
	if (rows < 2)
		rows = 2;
	return cpu_operator_cost * rows * (log(rows) / log(2.0));
}

/* The types of null a column reads as NULL, as $type names them. */
static const char *const null_types[] = {"missing", "null", "undefined"};

/* What an upper relation's scan does. */
typedef enum QleafUpperKind
{
	QLEAF_UPPER_LIMIT,			/* a scan of one table with a $limit of LIMIT + OFFSET */
	QLEAF_UPPER_GROUP			/* a $group */
} QleafUpperKind;

/*
 * How a value of the scan tuple is made from the values the pipeline
 * returns (the "physical" keys c<N>).
 */
typedef enum QleafOutOp
{
	QLEAF_OUT_VALUE,			/* key p as it is */
	QLEAF_OUT_COUNT,			/* key p; 0 for the empty aggregate */
	QLEAF_OUT_SUM,				/* key p, NULL where key q (values added) is 0 */
	QLEAF_OUT_AVG				/* key p / key q, NULL where q is 0 */
} QleafOutOp;

/* Planner state of an upper relation, in its fdw_private. */
typedef struct QleafUpperInfo
{
	QleafUpperKind kind;
	RelOptInfo *baserel;		/* the foreign table scanned */
	/* QLEAF_UPPER_LIMIT */
	List	   *pathkeys;		/* shipped ORDER BY, or NIL */
	Node	   *limit_count;	/* LIMIT expression, or NULL */
	Node	   *limit_offset;	/* OFFSET expression, or NULL */
	/* QLEAF_UPPER_GROUP */
	List	   *scan_exprs;		/* grouping columns and Aggrefs */
	List	   *group_exprs;	/* the grouping columns (Vars) */
	List	   *local_quals;	/* HAVING, checked locally */
} QleafUpperInfo;

/* Execution state of an upper scan. */
typedef struct QleafUpperExec
{
	int			nkeys;			/* values the pipeline returns per row */
	Datum	   *pvalues;
	bool	   *pnulls;
	int			nout;			/* values of the scan tuple */
	int		   *ops;
	int		   *pkey;
	int		   *qkey;
	bool		plain_agg;		/* one row even from no document */
	bool		returned;		/* a row was returned since the (re)start */
	int64		offset_const;	/* OFFSET rows to skip, when a constant */
	int			offset_param;	/* else its position in fdw_exprs */
	int64		to_skip;		/* rows still to skip; -1: not computed */
} QleafUpperExec;

/* A column of the scanned table and how it ships. */
typedef struct ColInfo
{
	AttrNumber	attnum;
	char	   *name;
	char	   *field;			/* field path, "" for the whole document */
	Oid			type;
	int32		typmod;
	QleafValueKind kind;
	bool		null_mode;
	bool		is_root;
} ColInfo;

/*
 * Set up the qleaf_fdw.enable_*_pushdown settings of this file.
 */
void
qleaf_upper_init(void)
{
	DefineCustomBoolVariable("qleaf_fdw.enable_sort_pushdown",
							 "Lets MongoDB sort the rows of a foreign table ($sort).",
							 "Takes effect only while qleaf_fdw.enable_pushdown is on.",
							 &qleaf_enable_sort_pushdown,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("qleaf_fdw.enable_limit_pushdown",
							 "Lets MongoDB apply LIMIT and OFFSET (a $limit of LIMIT + OFFSET documents).",
							 "Takes effect only while qleaf_fdw.enable_pushdown is on.",
							 &qleaf_enable_limit_pushdown,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("qleaf_fdw.enable_aggregate_pushdown",
							 "Lets MongoDB compute aggregates and GROUP BY ($group).",
							 "Takes effect only while qleaf_fdw.enable_pushdown is on.",
							 &qleaf_enable_aggregate_pushdown,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
}

/* Is rel a foreign table of ours that is no changes table? */
static QleafRelInfo *
table_info(RelOptInfo *rel)
{
	QleafRelInfo *fpinfo;

	if (rel == NULL || rel->reloptkind != RELOPT_BASEREL ||
		rel->fdw_private == NULL)
		return NULL;
	fpinfo = (QleafRelInfo *) rel->fdw_private;
	if (fpinfo->table == NULL || qleaf_is_changes_table(fpinfo->table))
		return NULL;
	return fpinfo;
}

static void
note(RelOptInfo *baserel, const char *fmt,...) pg_attribute_printf(2, 3);

/* Record what stays local and why, for EXPLAIN VERBOSE. */
static void
note(RelOptInfo *baserel, const char *fmt,...)
{
	QleafRelInfo *fpinfo = (QleafRelInfo *) baserel->fdw_private;
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	foreach(lc, fpinfo->kept_local)
		if (strcmp(strVal(lfirst(lc)), buf.data) == 0)
			return;
	fpinfo->kept_local = lappend(fpinfo->kept_local, makeString(buf.data));
}

/*
 * Resolve expr (a Var of baserel under binary-compatible casts) to a
 * column; false with *reason set otherwise.
 */
static bool
column_info(PlannerInfo *root, RelOptInfo *baserel, Expr *expr,
			ColInfo *col, const char **reason)
{
	QleafRelInfo *fpinfo = (QleafRelInfo *) baserel->fdw_private;
	RangeTblEntry *rte = planner_rt_fetch(baserel->relid, root);
	Var		   *var;
	char	   *field;

	memset(col, 0, sizeof(*col));
	while (IsA(expr, RelabelType))
		expr = ((RelabelType *) expr)->arg;
	if (!IsA(expr, Var))
	{
		*reason = "an expression, not a column";
		return false;
	}
	var = (Var *) expr;
	if ((Index) var->varno != baserel->relid || var->varlevelsup != 0 ||
		var->varattno <= 0)
	{
		*reason = "not a column of the foreign table";
		return false;
	}
	col->attnum = var->varattno;
	col->name = get_attname(rte->relid, var->varattno, false);
	col->null_mode = fpinfo->opts.null_on_error;
	field = qleaf_get_column_field(rte->relid, var->varattno, col->name,
								   &col->null_mode);
	col->is_root = qleaf_is_root_field(field);
	col->field = col->is_root ? "" : field;
	col->type = var->vartype;
	col->typmod = var->vartypmod;
	col->kind = qleaf_value_kind(col->type, col->typmod, reason);
	if (col->kind == QLEAF_VK_NONE)
		*reason = psprintf("column \"%s\": %s", col->name, *reason);
	return true;
}

/*
 * May MongoDB order or group by col, as PostgreSQL does?  ordering: for
 * ORDER BY and min/max (collation collid); else for GROUP BY and
 * DISTINCT.
 */
static bool
column_orderable(ColInfo *col, Oid collid, bool ordering,
				 const char **reason)
{
	if (col->null_mode)
	{
		*reason = psprintf("column \"%s\" is read with on_conversion_error 'null': values that become NULL sort and group by their BSON value in MongoDB",
						   col->name);
		return false;
	}
	switch (col->kind)
	{
		case QLEAF_VK_INT:
		case QLEAF_VK_BOOL:
			return true;
		case QLEAF_VK_TEXT:
			if (!qleaf_collation_ok(collid, ordering, reason))
			{
				*reason = psprintf("column \"%s\": %s", col->name, *reason);
				return false;
			}
			return true;
		case QLEAF_VK_NUMERIC:
		case QLEAF_VK_FLOAT8:
			*reason = psprintf("column \"%s\" (%s): NaN sorts below every number in MongoDB and above in PostgreSQL, and doubles and decimals compare otherwise",
							   col->name, format_type_be(col->type));
			return false;
		case QLEAF_VK_TIMESTAMP:
			*reason = psprintf("column \"%s\" (%s): MongoDB sorts and groups BSON Timestamps apart from dates",
							   col->name, format_type_be(col->type));
			return false;
		case QLEAF_VK_JSONB:
			*reason = psprintf("column \"%s\" (jsonb): MongoDB orders documents and arrays otherwise",
							   col->name);
			return false;
		default:
			/* *reason set by qleaf_value_kind */
			return false;
	}
}

/* "$path" for an aggregation expression */
static char *
field_ref(const ColInfo *col)
{
	return col->is_root ? pstrdup("$$ROOT") : psprintf("$%s", col->field);
}

/* {$in: [{$type: ref}, ["missing", "null", "undefined"]]} under key */
static void
append_is_null(bson_t *b, const char *key, const char *ref)
{
	bson_t		in;
	bson_t		args;
	bson_t		type;
	bson_t		names;
	int			i;

	bson_append_document_begin(b, key, -1, &in);
	bson_append_array_begin(&in, "$in", -1, &args);
	bson_append_document_begin(&args, "0", -1, &type);
	bson_append_utf8(&type, "$type", -1, ref, -1);
	bson_append_document_end(&args, &type);
	bson_append_array_begin(&args, "1", -1, &names);
	for (i = 0; i < (int) lengthof(null_types); i++)
	{
		char		k[4];

		snprintf(k, sizeof(k), "%d", i);
		bson_append_utf8(&names, k, -1, null_types[i], -1);
	}
	bson_append_array_end(&args, &names);
	bson_append_array_end(&in, &args);
	bson_append_document_end(b, &in);
}

/* {$cond: [is null ref, yes, no]} under key, yes and no int32 */
static void
append_null_flag(bson_t *b, const char *key, const char *ref, int yes, int no)
{
	bson_t		cond;
	bson_t		args;

	bson_append_document_begin(b, key, -1, &cond);
	bson_append_array_begin(&cond, "$cond", -1, &args);
	append_is_null(&args, "0", ref);
	bson_append_int32(&args, "1", -1, yes);
	bson_append_int32(&args, "2", -1, no);
	bson_append_array_end(&cond, &args);
	bson_append_document_end(b, &cond);
}

/* The $type names of the BSON values a column of kind kind reads. */
static const char *const int_types[] = {"int", "long", "double", "decimal"};
static const char *const text_types[] = {"string", "symbol", "objectId"};
static const char *const bool_types[] = {"bool"};

/*
 * Append {$in: [{$type: ref}, [names...]]}, with "missing", "null" and
 * "undefined" among the names when with_nulls.
 */
static void
append_type_in(bson_t *b, const char *key, const char *ref,
			   const char *const *names, int n, bool with_nulls)
{
	bson_t		in;
	bson_t		args;
	bson_t		type;
	bson_t		list;
	int			i;
	int			k = 0;
	char		idx[8];

	bson_append_document_begin(b, key, -1, &in);
	bson_append_array_begin(&in, "$in", -1, &args);
	bson_append_document_begin(&args, "0", -1, &type);
	bson_append_utf8(&type, "$type", -1, ref, -1);
	bson_append_document_end(&args, &type);
	bson_append_array_begin(&args, "1", -1, &list);
	for (i = 0; i < n; i++)
	{
		snprintf(idx, sizeof(idx), "%d", k++);
		bson_append_utf8(&list, idx, -1, names[i], -1);
	}
	for (i = 0; with_nulls && i < (int) lengthof(null_types); i++)
	{
		snprintf(idx, sizeof(idx), "%d", k++);
		bson_append_utf8(&list, idx, -1, null_types[i], -1);
	}
	bson_append_array_end(&args, &list);
	bson_append_array_end(&in, &args);
	bson_append_document_end(b, &in);
}

/*
 * What MongoDB can say about the values of col that fail to convert to
 * its type (convert.c): nothing fails (GUARD_NONE: jsonb, a column read
 * with on_conversion_error 'null'), an expression tells (GUARD_EXPR), or
 * no expression does (GUARD_NO).
 */
typedef enum GuardKind
{
	GUARD_NONE,
	GUARD_EXPR,
	GUARD_NO
} GuardKind;

static GuardKind
guard_kind(const ColInfo *col)
{
	if (col->null_mode || col->is_root)
		return GUARD_NONE;
	switch (col->kind)
	{
		case QLEAF_VK_JSONB:
			return GUARD_NONE;
		case QLEAF_VK_INT:
		case QLEAF_VK_TEXT:
		case QLEAF_VK_BOOL:
		case QLEAF_VK_NUMERIC:
		case QLEAF_VK_FLOAT8:
			return GUARD_EXPR;
		default:
			return GUARD_NO;
	}
}

/*
 * Under key, a boolean expression: the value of col (null and missing
 * included) converts to the column's type.  For integer columns: a
 * number in the type's range with no fraction ({$toLong: v} truncates,
 * so v equals it only when integral; NaN and the infinities fail the
 * range).  $cond keeps $toLong from values it would fail on.
 */
static void
append_converts(bson_t *b, const char *key, const ColInfo *col)
{
	char	   *ref = field_ref(col);

	switch (col->kind)
	{
		case QLEAF_VK_INT:
			{
				bson_t		cond;
				bson_t		args;
				bson_t		inner;
				bson_t		iargs;
				bson_t		range;
				bson_t		rargs;
				bson_t		cmp;
				bson_t		cargs;
				bson_t		eq;
				bson_t		eargs;
				bson_t		tl;

				bson_append_document_begin(b, key, -1, &cond);
				bson_append_array_begin(&cond, "$cond", -1, &args);
				append_type_in(&args, "0", ref, int_types, lengthof(int_types), false);

				/* a number: in range and integral; else null or missing */
				bson_append_document_begin(&args, "1", -1, &inner);
				bson_append_array_begin(&inner, "$cond", -1, &iargs);
				bson_append_document_begin(&iargs, "0", -1, &range);
				bson_append_array_begin(&range, "$and", -1, &rargs);
				bson_append_document_begin(&rargs, "0", -1, &cmp);
				bson_append_array_begin(&cmp, "$gte", -1, &cargs);
				bson_append_utf8(&cargs, "0", -1, ref, -1);
				if (col->type == INT2OID)
					bson_append_int32(&cargs, "1", -1, PG_INT16_MIN);
				else if (col->type == INT4OID)
					bson_append_int32(&cargs, "1", -1, PG_INT32_MIN);
				else
					bson_append_double(&cargs, "1", -1, -9223372036854775808.0);
				bson_append_array_end(&cmp, &cargs);
				bson_append_document_end(&rargs, &cmp);
				bson_append_document_begin(&rargs, "1", -1, &cmp);
				if (col->type == INT2OID || col->type == INT4OID)
				{
					bson_append_array_begin(&cmp, "$lte", -1, &cargs);
					bson_append_utf8(&cargs, "0", -1, ref, -1);
					bson_append_int32(&cargs, "1", -1,
									  col->type == INT2OID ? PG_INT16_MAX : PG_INT32_MAX);
				}
				else
				{
					bson_append_array_begin(&cmp, "$lt", -1, &cargs);
					bson_append_utf8(&cargs, "0", -1, ref, -1);
					bson_append_double(&cargs, "1", -1, 9223372036854775808.0);
				}
				bson_append_array_end(&cmp, &cargs);
				bson_append_document_end(&rargs, &cmp);
				bson_append_array_end(&range, &rargs);
				bson_append_document_end(&iargs, &range);
				bson_append_document_begin(&iargs, "1", -1, &eq);
				bson_append_array_begin(&eq, "$eq", -1, &eargs);
				bson_append_utf8(&eargs, "0", -1, ref, -1);
				bson_append_document_begin(&eargs, "1", -1, &tl);
				bson_append_utf8(&tl, "$toLong", -1, ref, -1);
				bson_append_document_end(&eargs, &tl);
				bson_append_array_end(&eq, &eargs);
				bson_append_document_end(&iargs, &eq);
				bson_append_bool(&iargs, "2", -1, false);
				bson_append_array_end(&inner, &iargs);
				bson_append_document_end(&args, &inner);

				append_type_in(&args, "2", ref, NULL, 0, true);
				bson_append_array_end(&cond, &args);
				bson_append_document_end(b, &cond);
			}
			break;
		case QLEAF_VK_NUMERIC:
		case QLEAF_VK_FLOAT8:
			append_type_in(b, key, ref, int_types, lengthof(int_types), true);
			break;
		case QLEAF_VK_TEXT:
			append_type_in(b, key, ref, text_types, lengthof(text_types), true);
			break;
		case QLEAF_VK_BOOL:
			append_type_in(b, key, ref, bool_types, lengthof(bool_types), true);
			break;
		default:
			elog(ERROR, "qleaf_fdw: no conversion check for column \"%s\"", col->name);
	}
}

/*
 * The columns whose values a scan of baserel converts for exprs (Vars of
 * baserel, attribute numbers in attrs as pull_varattnos makes them, or
 * plain attribute numbers in plain_attrs), that could fail to convert: a
 * List of ColInfo.  NIL with *reason set when MongoDB cannot tell which
 * values of one of them fail.
 */
static List *
guard_columns(PlannerInfo *root, RelOptInfo *baserel, Bitmapset *plain_attrs,
			  const char **reason)
{
	List	   *cols = NIL;
	int			attno = -1;

	*reason = NULL;
	while ((attno = bms_next_member(plain_attrs, attno)) >= 0)
	{
		RangeTblEntry *rte = planner_rt_fetch(baserel->relid, root);
		ColInfo    *col = palloc(sizeof(ColInfo));
		Var		   *var;
		const char *why;

		Oid			typid;
		int32		typmod;
		Oid			collid;

		get_atttypetypmodcoll(rte->relid, attno, &typid, &typmod, &collid);
		var = makeVar(baserel->relid, attno, typid, typmod, collid, 0);
		(void) column_info(root, baserel, (Expr *) var, col, &why);
		switch (guard_kind(col))
		{
			case GUARD_NONE:
				break;
			case GUARD_EXPR:
				cols = lappend(cols, col);
				break;
			case GUARD_NO:
				*reason = psprintf("column \"%s\" (%s): MongoDB cannot tell which of its values fail to convert",
								   col->name, format_type_be(col->type));
				return NIL;
		}
	}
	return cols;
}

/*
 * The plain attribute numbers of the columns the shipped conditions of
 * baserel read (those a scan converts so as to raise their errors).
 */
static Bitmapset *
condition_attrs(RelOptInfo *baserel)
{
	QleafRelInfo *fpinfo = (QleafRelInfo *) baserel->fdw_private;
	List	   *remote_exprs = NIL;
	Bitmapset  *offset_attrs = NULL;
	Bitmapset  *attrs = NULL;
	ListCell   *lc;
	int			x = -1;

	foreach(lc, fpinfo->remote_conds)
		remote_exprs = lappend(remote_exprs, lfirst_node(RestrictInfo, lc)->clause);
	qleaf_add_condition_columns(baserel, remote_exprs, &offset_attrs);
	while ((x = bms_next_member(offset_attrs, x)) >= 0)
		attrs = bms_add_member(attrs, x + FirstLowInvalidHeapAttributeNumber);
	return attrs;
}

/* The plain attribute numbers of the Vars of baserel in node. */
static Bitmapset *
var_attrs(RelOptInfo *baserel, Node *node)
{
	Bitmapset  *offset_attrs = NULL;
	Bitmapset  *attrs = NULL;
	int			x = -1;

	pull_varattnos(node, baserel->relid, &offset_attrs);
	while ((x = bms_next_member(offset_attrs, x)) >= 0)
		if (x + FirstLowInvalidHeapAttributeNumber > 0)
			attrs = bms_add_member(attrs, x + FirstLowInvalidHeapAttributeNumber);
	return attrs;
}

/* Under key, {$and: [converts(col) for each of cols]} (true for none). */
static void
append_all_convert(bson_t *b, const char *key, List *cols)
{
	bson_t		d;
	bson_t		args;
	ListCell   *lc;
	char		idx[16];

	bson_append_document_begin(b, key, -1, &d);
	bson_append_array_begin(&d, "$and", -1, &args);
	foreach(lc, cols)
	{
		snprintf(idx, sizeof(idx), "%d", foreach_current_index(lc));
		append_converts(&args, idx, (ColInfo *) lfirst(lc));
	}
	bson_append_array_end(&d, &args);
	bson_append_document_end(b, &d);
}

/*
 * Under key, the value of a text column as PostgreSQL reads it: an
 * ObjectId as its hex text, anything else as it is, null for null and
 * missing: {$cond: [{$eq: [{$type: ref}, "objectId"]}, {$toString: ref},
 * {$ifNull: [ref, null]}]}.
 */
static void
append_text_key(bson_t *b, const char *key, const char *ref)
{
	bson_t		cond;
	bson_t		args;
	bson_t		eq;
	bson_t		eqargs;
	bson_t		type;
	bson_t		d;
	bson_t		ifnull;

	bson_append_document_begin(b, key, -1, &cond);
	bson_append_array_begin(&cond, "$cond", -1, &args);
	bson_append_document_begin(&args, "0", -1, &eq);
	bson_append_array_begin(&eq, "$eq", -1, &eqargs);
	bson_append_document_begin(&eqargs, "0", -1, &type);
	bson_append_utf8(&type, "$type", -1, ref, -1);
	bson_append_document_end(&eqargs, &type);
	bson_append_utf8(&eqargs, "1", -1, "objectId", -1);
	bson_append_array_end(&eq, &eqargs);
	bson_append_document_end(&args, &eq);
	bson_append_document_begin(&args, "1", -1, &d);
	bson_append_utf8(&d, "$toString", -1, ref, -1);
	bson_append_document_end(&args, &d);
	bson_append_document_begin(&args, "2", -1, &d);
	bson_append_array_begin(&d, "$ifNull", -1, &ifnull);
	bson_append_utf8(&ifnull, "0", -1, ref, -1);
	bson_append_null(&ifnull, "1", -1);
	bson_append_array_end(&d, &ifnull);
	bson_append_document_end(&args, &d);
	bson_append_array_end(&cond, &args);
	bson_append_document_end(b, &cond);
}

/*
 * Under key, the value of an integer column as an int64 (so that 1, 1.0
 * and NumberLong(1) are one value), null for null, missing and values
 * that do not convert (which the guards report): {$cond: [converts,
 * {$cond: [is null, null, {$toLong: ref}]}, null]}.
 */
static void
append_long_key(bson_t *b, const char *key, const ColInfo *col)
{
	char	   *ref = field_ref(col);
	bson_t		cond;
	bson_t		args;
	bson_t		inner;
	bson_t		iargs;
	bson_t		d;

	bson_append_document_begin(b, key, -1, &cond);
	bson_append_array_begin(&cond, "$cond", -1, &args);
	append_converts(&args, "0", col);
	bson_append_document_begin(&args, "1", -1, &inner);
	bson_append_array_begin(&inner, "$cond", -1, &iargs);
	append_is_null(&iargs, "0", ref);
	bson_append_null(&iargs, "1", -1);
	bson_append_document_begin(&iargs, "2", -1, &d);
	bson_append_utf8(&d, "$toLong", -1, ref, -1);
	bson_append_document_end(&iargs, &d);
	bson_append_array_end(&inner, &iargs);
	bson_append_document_end(&args, &inner);
	bson_append_null(&args, "2", -1);
	bson_append_array_end(&cond, &args);
	bson_append_document_end(b, &cond);
}

/* Under key, {$ifNull: [ref, null]}: null for null and missing. */
static void
append_plain_key(bson_t *b, const char *key, const char *ref)
{
	bson_t		d;
	bson_t		args;

	bson_append_document_begin(b, key, -1, &d);
	bson_append_array_begin(&d, "$ifNull", -1, &args);
	bson_append_utf8(&args, "0", -1, ref, -1);
	bson_append_null(&args, "1", -1);
	bson_append_array_end(&d, &args);
	bson_append_document_end(b, &d);
}

/*
 * Under key, the value of col as a sort, group or min/max key: as
 * append_text_key (text), append_long_key (integers) or the value (the
 * rest), and null where it does not convert (the guards report those).
 */
static void
append_value_key(bson_t *b, const char *key, const ColInfo *col)
{
	char	   *ref = field_ref(col);
	bson_t		cond;
	bson_t		args;

	if (col->kind == QLEAF_VK_INT)
	{
		append_long_key(b, key, col);
		return;
	}
	bson_append_document_begin(b, key, -1, &cond);
	bson_append_array_begin(&cond, "$cond", -1, &args);
	append_converts(&args, "0", col);
	if (col->kind == QLEAF_VK_TEXT)
		append_text_key(&args, "1", ref);
	else
		append_plain_key(&args, "1", ref);
	bson_append_null(&args, "2", -1);
	bson_append_array_end(&cond, &args);
	bson_append_document_end(b, &cond);
}


/* ----------------------------------------------------------------
 *		ORDER BY
 * ----------------------------------------------------------------
 */

static bson_t *sort_stages(PlannerInfo *root, RelOptInfo *baserel,
						   List *pathkeys, List *guards);

/* One shipped sort key. */
typedef struct SortKey
{
	ColInfo		col;
	bool		desc;
	bool		nulls_first;
} SortKey;

/*
 * Can MongoDB sort baserel's documents by pathkey pk as PostgreSQL
 * would?  Fills *key; else sets *reason.
 */
static bool
sort_key_ok(PlannerInfo *root, RelOptInfo *baserel, PathKey *pk,
			SortKey *key, const char **reason)
{
	EquivalenceClass *ec = pk->pk_eclass;
	ListCell   *lc;
	Expr	   *expr = NULL;
	Oid			opclass;

	if (ec->ec_has_volatile)
	{
		*reason = "a volatile sort expression";
		return false;
	}
	foreach(lc, ec->ec_members)
	{
		EquivalenceMember *em = lfirst_node(EquivalenceMember, lc);

		if (bms_is_subset(em->em_relids, baserel->relids) &&
			!bms_is_empty(em->em_relids))
		{
			expr = em->em_expr;
			break;
		}
	}
	if (expr == NULL)
	{
		*reason = "a sort key of another relation";
		return false;
	}
	if (!column_info(root, baserel, expr, &key->col, reason))
	{
		*reason = psprintf("sort key is %s", *reason);
		return false;
	}
	if (!column_orderable(&key->col, ec->ec_collation, true, reason))
		return false;
	if (pk->pk_strategy != BTLessStrategyNumber &&
		pk->pk_strategy != BTGreaterStrategyNumber)
	{
		*reason = "a sort that is no btree ordering";
		return false;
	}
	opclass = GetDefaultOpClass(key->col.type, BTREE_AM_OID);
	if (!OidIsValid(opclass) || get_opclass_family(opclass) != pk->pk_opfamily)
	{
		*reason = psprintf("column \"%s\" sorted by an operator that is not its type's default",
						   key->col.name);
		return false;
	}
	key->desc = (pk->pk_strategy == BTGreaterStrategyNumber);
	key->nulls_first = pk->pk_nulls_first;
	return true;
}

/*
 * The sort keys of pathkeys if all ship (a List of SortKey), else NIL
 * with *reason set.
 */
static List *
sort_keys(PlannerInfo *root, RelOptInfo *baserel, List *pathkeys,
		  const char **reason)
{
	List	   *keys = NIL;
	ListCell   *lc;

	if (!qleaf_enable_pushdown)
	{
		*reason = "qleaf_fdw.enable_pushdown is off";
		return NIL;
	}
	if (!qleaf_enable_sort_pushdown)
	{
		*reason = "qleaf_fdw.enable_sort_pushdown is off";
		return NIL;
	}
	if (list_length(pathkeys) > QLEAF_MAX_SORT_KEYS)
	{
		*reason = "more sort keys than MongoDB's $sort takes";
		return NIL;
	}
	foreach(lc, pathkeys)
	{
		SortKey    *key = palloc0(sizeof(SortKey));

		if (!sort_key_ok(root, baserel, lfirst_node(PathKey, lc), key, reason))
			return NIL;
		keys = lappend(keys, key);
	}
	return keys;
}

/*
 * The stages that sort as pathkeys say: {$addFields: {computed keys}}
 * when some are needed, then {$sort: {...}}.  A BSON array of stages.
 */
bson_t *
qleaf_sort_stages(PlannerInfo *root, RelOptInfo *baserel, List *pathkeys)
{
	return sort_stages(root, baserel, pathkeys, NIL);
}

/*
 * The same; with guards (ColInfos), the documents holding a value of
 * one of those columns that does not convert sort first, so that a
 * LIMIT after the sort still reads them and raises the conversion error
 * a sort by PostgreSQL, which reads every document, would raise.
 */
static bson_t *
sort_stages(PlannerInfo *root, RelOptInfo *baserel, List *pathkeys,
			List *guards)
{
	const char *reason;
	List	   *keys = sort_keys(root, baserel, pathkeys, &reason);
	bson_t	   *stages = qleaf_bson_new_owned(CurrentMemoryContext);
	bson_t		stage;
	bson_t		add;
	bson_t		sort;
	ListCell   *lc;
	bool		computed = false;
	int			nstages = 0;

	if (keys == NIL)
		elog(ERROR, "qleaf_fdw: sort keys planned as shippable have no translation: %s",
			 reason);

	if (guards != NIL)
	{
		bson_t		flag;
		bson_t		args;

		bson_append_document_begin(stages, "0", -1, &stage);
		bson_append_document_begin(&stage, "$addFields", -1, &add);
		computed = true;
		bson_append_document_begin(&add, "_qleaf_bad", -1, &flag);
		bson_append_array_begin(&flag, "$cond", -1, &args);
		append_all_convert(&args, "0", guards);
		bson_append_int32(&args, "1", -1, 0);
		bson_append_int32(&args, "2", -1, 1);
		bson_append_array_end(&flag, &args);
		bson_append_document_end(&add, &flag);

		/*
		 * Among them, the first _id first (the order of a collection
		 * scan, mostly), so that the error names the document a scan
		 * would fail on: {$cond: [converts, null, "$_id"]}.
		 */
		bson_append_document_begin(&add, "_qleaf_bad_id", -1, &flag);
		bson_append_array_begin(&flag, "$cond", -1, &args);
		append_all_convert(&args, "0", guards);
		bson_append_null(&args, "1", -1);
		bson_append_utf8(&args, "2", -1, "$_id", -1);
		bson_append_array_end(&flag, &args);
		bson_append_document_end(&add, &flag);
	}

	/* computed keys: null flags, ObjectIds as text */
	foreach(lc, keys)
	{
		SortKey    *key = (SortKey *) lfirst(lc);
		char	   *ref = field_ref(&key->col);
		char		name[32];
		int			i = foreach_current_index(lc);

		if (key->nulls_first == key->desc)
		{
			if (!computed)
			{
				bson_append_document_begin(stages, "0", -1, &stage);
				bson_append_document_begin(&stage, "$addFields", -1, &add);
				computed = true;
			}
			snprintf(name, sizeof(name), "_qleaf_n%d", i);
			append_null_flag(&add, name, ref, 1, 0);
		}
		if (key->col.kind == QLEAF_VK_TEXT)
		{
			if (!computed)
			{
				bson_append_document_begin(stages, "0", -1, &stage);
				bson_append_document_begin(&stage, "$addFields", -1, &add);
				computed = true;
			}
			snprintf(name, sizeof(name), "_qleaf_s%d", i);
			append_text_key(&add, name, ref);
		}
	}
	if (computed)
	{
		bson_append_document_end(&stage, &add);
		bson_append_document_end(stages, &stage);
		nstages++;
	}

	bson_append_document_begin(stages, nstages == 0 ? "0" : "1", -1, &stage);
	bson_append_document_begin(&stage, "$sort", -1, &sort);
	if (guards != NIL)
	{
		bson_append_int32(&sort, "_qleaf_bad", -1, -1);
		bson_append_int32(&sort, "_qleaf_bad_id", -1, 1);
	}
	foreach(lc, keys)
	{
		SortKey    *key = (SortKey *) lfirst(lc);
		int			dir = key->desc ? -1 : 1;
		char		name[32];
		int			i = foreach_current_index(lc);

		/*
		 * MongoDB puts null and missing first ascending and last
		 * descending; a flag 1 for them, sorted in the key's direction,
		 * moves them to the other end.
		 */
		if (key->nulls_first == key->desc)
		{
			snprintf(name, sizeof(name), "_qleaf_n%d", i);
			bson_append_int32(&sort, name, -1, dir);
		}
		if (key->col.kind == QLEAF_VK_TEXT)
		{
			snprintf(name, sizeof(name), "_qleaf_s%d", i);
			bson_append_int32(&sort, name, -1, dir);
		}
		else
			bson_append_int32(&sort, key->col.is_root ? "$$ROOT" : key->col.field,
							  -1, dir);
	}
	bson_append_document_end(&stage, &sort);
	bson_append_document_end(stages, &stage);

	/* the computed keys go away: a "$$ROOT" column must not see them */
	if (computed)
	{
		bson_t		drop;

		bson_append_document_begin(stages, "2", -1, &stage);
		bson_append_document_begin(&stage, "$project", -1, &drop);
		if (guards != NIL)
		{
			bson_append_int32(&drop, "_qleaf_bad", -1, 0);
			bson_append_int32(&drop, "_qleaf_bad_id", -1, 0);
		}
		foreach(lc, keys)
		{
			SortKey    *key = (SortKey *) lfirst(lc);
			char		name[32];
			int			i = foreach_current_index(lc);

			if (key->nulls_first == key->desc)
			{
				snprintf(name, sizeof(name), "_qleaf_n%d", i);
				bson_append_int32(&drop, name, -1, 0);
			}
			if (key->col.kind == QLEAF_VK_TEXT)
			{
				snprintf(name, sizeof(name), "_qleaf_s%d", i);
				bson_append_int32(&drop, name, -1, 0);
			}
		}
		bson_append_document_end(&stage, &drop);
		bson_append_document_end(stages, &stage);
	}
	return stages;
}

/* Are all of pathkeys orderings of baserel's own columns? */
static bool
pathkeys_of_rel(List *pathkeys, RelOptInfo *baserel)
{
	ListCell   *lc;

	foreach(lc, pathkeys)
	{
		PathKey    *pk = lfirst_node(PathKey, lc);
		ListCell   *lm;
		bool		found = false;

		foreach(lm, pk->pk_eclass->ec_members)
		{
			EquivalenceMember *em = lfirst_node(EquivalenceMember, lm);

			if (!bms_is_empty(em->em_relids) &&
				bms_is_subset(em->em_relids, baserel->relids))
				found = true;
		}
		if (!found)
			return false;
	}
	return true;
}

/*
 * factor: what the scan costs, times this (a sorted scan offered only for
 * a merge join costs more, as postgres_fdw's do, so that it wins only
 * where a merge join is clearly the better plan).
 */
static void
add_sorted_path(PlannerInfo *root, RelOptInfo *baserel, List *pathkeys,
				double factor)
{
	QleafRelInfo *fpinfo = (QleafRelInfo *) baserel->fdw_private;
	ForeignPath *path;

	path = create_foreignscan_path(root, baserel, NULL,
								   fpinfo->rows,
								   fpinfo->startup_cost * factor + sort_cost(fpinfo->rows),
								   fpinfo->total_cost * factor + sort_cost(fpinfo->rows),
								   pathkeys,
								   baserel->lateral_relids,
								   NULL, NIL);
	add_path(baserel, (Path *) path);
}

/*
 * Add sorted paths of baserel when MongoDB can sort by the order the
 * query wants (root->query_pathkeys: ORDER BY, or the order of a
 * grouping) and by each column a merge join could join on.
 */
void
qleaf_add_sorted_paths(PlannerInfo *root, RelOptInfo *baserel)
{
	QleafRelInfo *fpinfo = table_info(baserel);
	List	   *pathkeys = root->query_pathkeys;
	List	   *done = NIL;
	const char *reason;
	ListCell   *lc;

	if (fpinfo == NULL)
		return;

	if (pathkeys != NIL && pathkeys_of_rel(pathkeys, baserel))
	{
		if (sort_keys(root, baserel, pathkeys, &reason) == NIL)
			note(baserel, "%s: %s",
				 pathkeys == root->sort_pathkeys ? "ORDER BY" : "sorted scan",
				 reason);
		else
		{
			add_sorted_path(root, baserel, pathkeys, 1.0);
			done = list_make1(linitial(pathkeys));
		}
	}

	/* one key per join equivalence class, for merge joins */
	if (!baserel->has_eclass_joins || !qleaf_enable_pushdown ||
		!qleaf_enable_sort_pushdown)
		return;
	foreach(lc, root->eq_classes)
	{
		EquivalenceClass *ec = (EquivalenceClass *) lfirst(lc);
		PathKey    *pk;
		List	   *one;

		if (ec->ec_has_volatile || ec->ec_has_const ||
			list_length(ec->ec_opfamilies) < 1 ||
			!bms_overlap(ec->ec_relids, baserel->relids) ||
			bms_is_subset(ec->ec_relids, baserel->relids))
			continue;
		pk = make_canonical_pathkey(root, ec, linitial_oid(ec->ec_opfamilies),
									BTLessStrategyNumber, false);
		if (list_member_ptr(done, pk))
			continue;
		done = lappend(done, pk);
		one = list_make1(pk);
		if (pathkeys_of_rel(one, baserel) &&
			sort_keys(root, baserel, one, &reason) != NIL)
			add_sorted_path(root, baserel, one, 1.2);
	}
}

/* ----------------------------------------------------------------
 *		LIMIT / OFFSET
 * ----------------------------------------------------------------
 */

/* Can a LIMIT / OFFSET value be computed once at the start of the scan? */
static bool
limit_value_ok(PlannerInfo *root, Node *expr)
{
	if (expr == NULL || IsA(expr, Const))
		return true;
	return !contain_volatile_functions(expr) && !contain_subplans(expr) &&
		bms_is_empty(pull_varnos(root, expr)) &&
		!contain_var_clause(expr);
}

/*
 * The single foreign table of ours below the upper relations, if the
 * query scans only that.
 */
static RelOptInfo *
single_table(PlannerInfo *root)
{
	int			relid;
	RelOptInfo *rel;

	if (bms_membership(root->all_baserels) != BMS_SINGLETON)
		return NULL;
	relid = bms_singleton_member(root->all_baserels);
	rel = root->simple_rel_array[relid];
	return table_info(rel) != NULL ? rel : NULL;
}

/*
 * Why the scan of baserel cannot take more stages after its $match: a
 * condition stays local, or the query has conditions that gate the whole
 * scan.  NULL when it can.
 */
static const char *
scan_not_exact(PlannerInfo *root, RelOptInfo *baserel)
{
	QleafRelInfo *fpinfo = (QleafRelInfo *) baserel->fdw_private;

	if (fpinfo->local_conds != NIL)
		return "a condition is checked by PostgreSQL";
	if (root->hasPseudoConstantQuals)
		return "a condition is checked by PostgreSQL before the scan";
	if (!bms_is_empty(baserel->lateral_relids))
		return "the scan depends on a lateral reference";
	return NULL;
}

static void
add_final_paths(PlannerInfo *root, RelOptInfo *input_rel,
				RelOptInfo *output_rel, FinalPathExtraData *extra)
{
	Query	   *parse = root->parse;
	RelOptInfo *baserel = single_table(root);
	QleafRelInfo *fpinfo;
	QleafUpperInfo *info;
	const char *reason = NULL;
	List	   *pathkeys = NIL;
	ForeignPath *path;
	double		rows;
	Cost		startup;
	Cost		total;
	ListCell   *lc;
	List	   *vars;

	if (baserel == NULL || !extra->limit_needed)
		return;
	fpinfo = (QleafRelInfo *) baserel->fdw_private;

	if (!qleaf_enable_pushdown)
		reason = "qleaf_fdw.enable_pushdown is off";
	else if (!qleaf_enable_limit_pushdown)
		reason = "qleaf_fdw.enable_limit_pushdown is off";
	else if (parse->hasAggs || parse->groupClause || parse->groupingSets ||
			 parse->havingQual || parse->hasWindowFuncs ||
			 parse->distinctClause || parse->hasTargetSRFs ||
			 parse->setOperations || parse->rowMarks)
		reason = "the query does more than scan, sort and limit";
	else if (parse->limitOption != LIMIT_OPTION_COUNT)
		reason = "FETCH ... WITH TIES";
	else if (!limit_value_ok(root, parse->limitCount) ||
			 !limit_value_ok(root, parse->limitOffset))
		reason = "a LIMIT or OFFSET that is not computed once";
	else
		reason = scan_not_exact(root, baserel);
	if (reason == NULL && parse->sortClause != NIL && root->sort_pathkeys != NIL)
	{
		const char *why;

		List	   *keys = sort_keys(root, baserel, root->sort_pathkeys, &why);

		if (keys == NIL)
			reason = "ORDER BY is not shipped";
		else
		{
			/*
			 * PostgreSQL's sort reads every document; MongoDB's reads past
			 * the LIMIT only those that sort first: the documents whose
			 * values do not convert must be found and sorted first.
			 */
			Bitmapset  *attrs = bms_union(condition_attrs(baserel),
										  var_attrs(baserel, (Node *) root->upper_targets[UPPERREL_FINAL]->exprs));
			ListCell   *lk;

			foreach(lk, keys)
				attrs = bms_add_member(attrs, ((SortKey *) lfirst(lk))->col.attnum);
			(void) guard_columns(root, baserel, attrs, &why);
			if (why != NULL)
				reason = why;
			else
				pathkeys = root->sort_pathkeys;
		}
	}
	if (reason == NULL &&
		contain_subplans((Node *) root->upper_targets[UPPERREL_FINAL]->exprs))
		reason = "the output has a subquery";
	if (reason == NULL)
	{
		/* the scan tuple holds only columns of the table */
		vars = pull_var_clause((Node *) root->upper_targets[UPPERREL_FINAL]->exprs,
							   PVC_RECURSE_PLACEHOLDERS);
		foreach(lc, vars)
		{
			Var		   *var = (Var *) lfirst(lc);

			if (!IsA(var, Var) || var->varattno <= 0 ||
				(Index) var->varno != baserel->relid)
			{
				reason = "the output needs a whole row or system column";
				break;
			}
		}
	}
	if (reason != NULL)
	{
		note(baserel, "LIMIT: %s", reason);
		return;
	}
	if (output_rel->fdw_private != NULL)
		return;

	info = palloc0(sizeof(QleafUpperInfo));
	info->kind = QLEAF_UPPER_LIMIT;
	info->baserel = baserel;
	info->pathkeys = pathkeys;
	info->limit_count = parse->limitCount;
	info->limit_offset = parse->limitOffset;
	output_rel->fdw_private = info;

	rows = fpinfo->rows;
	if (extra->count_est > 0)
		rows = Min(rows, (double) extra->count_est);
	rows = clamp_row_est(rows);

	/*
	 * Fewer documents cross the network than for a Limit over the scan:
	 * only those returned.  MongoDB sorts all the conditions let through
	 * before the first one.
	 */
	startup = fpinfo->startup_cost * 0.99;
	if (pathkeys != NIL)
		startup += sort_cost(fpinfo->rows);
	total = startup + rows * (cpu_tuple_cost + fpinfo->fdw_tuple_cost) * 0.5;
	path = create_foreign_upper_path(root, output_rel,
									 root->upper_targets[UPPERREL_FINAL],
									 rows, startup, total, pathkeys,
									 NULL, NIL);
	add_path(output_rel, (Path *) path);
}

/* ----------------------------------------------------------------
 *		Aggregates
 * ----------------------------------------------------------------
 */

/* Is agg one MongoDB computes as PostgreSQL does?  Else *reason. */
static bool
aggregate_ok(PlannerInfo *root, RelOptInfo *baserel, Aggref *agg,
			 const char **reason)
{
	const char *name = get_func_name(agg->aggfnoid);
	ColInfo		col;
	Expr	   *arg = NULL;

	if (agg->aggsplit != AGGSPLIT_SIMPLE || agg->agglevelsup != 0 ||
		agg->aggkind != AGGKIND_NORMAL)
	{
		*reason = psprintf("%s: a partial or ordered-set aggregate", name);
		return false;
	}
	if (agg->aggfilter != NULL)
	{
		*reason = psprintf("%s: FILTER is not shipped", name);
		return false;
	}
	if (agg->aggorder != NIL)
	{
		*reason = psprintf("%s: an aggregate with ORDER BY", name);
		return false;
	}
	if (agg->aggfnoid == F_COUNT_)
		return true;
	if (list_length(agg->args) != 1)
	{
		*reason = psprintf("%s: not one argument", name);
		return false;
	}
	arg = linitial_node(TargetEntry, agg->args)->expr;
	if (!column_info(root, baserel, arg, &col, reason))
	{
		*reason = psprintf("%s: its argument is %s", name, *reason);
		return false;
	}
	if (agg->aggdistinct != NIL && agg->aggfnoid != F_COUNT_ANY)
	{
		*reason = psprintf("%s: DISTINCT is shipped for count only", name);
		return false;
	}
	if (col.null_mode)
	{
		*reason = psprintf("%s: column \"%s\" is read with on_conversion_error 'null': values that become NULL count in MongoDB",
						   name, col.name);
		return false;
	}

	switch (agg->aggfnoid)
	{
		case F_COUNT_ANY:
			if (agg->aggdistinct != NIL)
			{
				if (col.kind != QLEAF_VK_INT && col.kind != QLEAF_VK_TEXT &&
					col.kind != QLEAF_VK_BOOL)
				{
					*reason = psprintf("count(DISTINCT): column \"%s\" (%s) has no exact MongoDB equality",
									   col.name, format_type_be(col.type));
					return false;
				}
				if (!column_orderable(&col, agg->inputcollid, false, reason))
					return false;
			}
			return true;
		case F_SUM_INT2:
		case F_SUM_INT4:
		case F_SUM_INT8:
		case F_AVG_INT2:
		case F_AVG_INT4:
		case F_AVG_INT8:
			if (col.kind != QLEAF_VK_INT)
			{
				*reason = psprintf("%s: column \"%s\" is not an integer column", name, col.name);
				return false;
			}
			return true;
		case F_MIN_INT2:
		case F_MIN_INT4:
		case F_MIN_INT8:
		case F_MAX_INT2:
		case F_MAX_INT4:
		case F_MAX_INT8:
		case F_MIN_TEXT:
		case F_MAX_TEXT:
		case F_BOOL_AND:
		case F_BOOL_OR:
		case F_EVERY:
			return column_orderable(&col, agg->inputcollid, true, reason);
		default:
			*reason = psprintf("%s(%s) has no MongoDB counterpart qleaf_fdw ships",
							   name, format_type_be(col.type));
			return false;
	}
}

/* Append expr to *list unless an equal one is there. */
static List *
add_unique(List *list, Expr *expr)
{
	if (list_member(list, expr))
		return list;
	return lappend(list, expr);
}

static void
add_group_paths(PlannerInfo *root, RelOptInfo *input_rel,
				RelOptInfo *output_rel, GroupPathExtraData *extra)
{
	Query	   *parse = root->parse;
	RelOptInfo *baserel = input_rel;
	QleafRelInfo *fpinfo = table_info(input_rel);
	PathTarget *target = output_rel->reltarget;
	QleafUpperInfo *info;
	const char *reason = NULL;
	List	   *scan_exprs = NIL;
	List	   *group_exprs = NIL;
	List	   *local_quals = NIL;
	ListCell   *lc;
	int			i;
	double		rows;
	double		ngroups;
	Cost		startup;
	Cost		total;
	ForeignPath *path;

	if (fpinfo == NULL)
		return;
	if (!qleaf_enable_pushdown)
		reason = "qleaf_fdw.enable_pushdown is off";
	else if (!qleaf_enable_aggregate_pushdown)
		reason = "qleaf_fdw.enable_aggregate_pushdown is off";
	else if (extra->patype != PARTITIONWISE_AGGREGATE_NONE)
		reason = "a partitionwise aggregate";
	else if (parse->groupingSets != NIL)
		reason = "GROUPING SETS";
	else
		reason = scan_not_exact(root, baserel);

	/* the grouping columns, then the aggregates of the output */
	i = 0;
	foreach(lc, target->exprs)
	{
		Expr	   *expr = (Expr *) lfirst(lc);
		Index		sgref = get_pathtarget_sortgroupref(target, i);
		SortGroupClause *sgc;

		i++;
		if (reason != NULL)
			break;
		if (sgref != 0 &&
			(sgc = get_sortgroupref_clause_noerr(sgref, parse->groupClause)) != NULL)
		{
			ColInfo		col;

			if (!column_info(root, baserel, expr, &col, &reason))
			{
				reason = psprintf("GROUP BY %s", reason);
				break;
			}
			if (!column_orderable(&col, exprCollation((Node *) expr), false, &reason))
				break;
			if (qleaf_comparison_strategy(sgc->eqop, col.kind, col.type,
										  col.type) != BTEqualStrategyNumber)
			{
				reason = psprintf("GROUP BY column \"%s\" with an equality that is not its type's",
								  col.name);
				break;
			}
			if (!IsA(expr, Var))
			{
				reason = "GROUP BY a cast of a column";
				break;
			}
			group_exprs = add_unique(group_exprs, expr);
			scan_exprs = add_unique(scan_exprs, expr);
		}
	}
	if (reason == NULL)
	{
		List	   *exprs = list_copy(target->exprs);

		if (extra->havingQual != NULL)
			exprs = lappend(exprs, extra->havingQual);
		foreach(lc, pull_var_clause((Node *) exprs, PVC_INCLUDE_AGGREGATES))
		{
			Expr	   *e = (Expr *) lfirst(lc);

			if (IsA(e, Aggref))
			{
				if (!aggregate_ok(root, baserel, (Aggref *) e, &reason))
					break;
				scan_exprs = add_unique(scan_exprs, e);
			}
			else if (!list_member(group_exprs, e))
			{
				reason = "the output needs a column that is not grouped";
				break;
			}
		}
	}
	if (reason == NULL)
	{
		List	   *guards;

		guards = guard_columns(root, baserel,
							   bms_union(condition_attrs(baserel),
										 var_attrs(baserel, (Node *) scan_exprs)),
							   &reason);
		if (reason == NULL && list_length(guards) > QLEAF_MAX_GUARDS)
			reason = "too many columns whose conversion errors must be checked";
	}
	if (reason != NULL)
	{
		note(baserel, "aggregates: %s", reason);
		return;
	}
	if (output_rel->fdw_private != NULL)
		return;

	/* HAVING, an implicit-AND list after preprocessing */
	if (extra->havingQual != NULL)
		local_quals = (List *) extra->havingQual;

	info = palloc0(sizeof(QleafUpperInfo));
	info->kind = QLEAF_UPPER_GROUP;
	info->baserel = baserel;
	info->scan_exprs = scan_exprs;
	info->group_exprs = group_exprs;
	info->local_quals = local_quals;
	output_rel->fdw_private = info;

	rows = fpinfo->rows;
	if (group_exprs == NIL)
		ngroups = 1;
	else
		ngroups = estimate_num_groups(root, group_exprs, rows, NULL, NULL);
	/*
	 * MongoDB reads the documents where they are and sends only the
	 * groups: one small reply instead of a stream of documents.
	 */
	startup = fpinfo->fdw_startup_cost * 0.5 + rows * cpu_operator_cost * 0.25;
	total = startup + ngroups * (cpu_tuple_cost + fpinfo->fdw_tuple_cost);
	if (local_quals != NIL)
		ngroups = clamp_row_est(ngroups * 0.5);
	path = create_foreign_upper_path(root, output_rel, target,
									 ngroups, startup, total, NIL,
									 NULL, NIL);
	add_path(output_rel, (Path *) path);
}

/*
 * GetForeignUpperPaths: a grouping path with $group, a final path with a
 * $limit of LIMIT + OFFSET.  (Ordered paths are offered by the scan
 * itself, as sorted paths: qleaf_add_sorted_paths.)
 */
void
qleafGetForeignUpperPaths(PlannerInfo *root, UpperRelationKind stage,
						  RelOptInfo *input_rel, RelOptInfo *output_rel,
						  void *extra)
{
	switch (stage)
	{
		case UPPERREL_GROUP_AGG:
			add_group_paths(root, input_rel, output_rel,
							(GroupPathExtraData *) extra);
			break;
		case UPPERREL_FINAL:
			add_final_paths(root, input_rel, output_rel,
							(FinalPathExtraData *) extra);
			break;
		default:
			break;
	}
}

/*
 * What the query wanted of a scan of baserel that stays local, for
 * EXPLAIN VERBOSE: the notes of upper planning, and why the ORDER BY is
 * not shipped when the scan is not sorted.
 */
List *
qleaf_kept_local(PlannerInfo *root, RelOptInfo *baserel, List *pathkeys)
{
	QleafRelInfo *fpinfo = (QleafRelInfo *) baserel->fdw_private;

	(void) pathkeys;
	return list_copy(fpinfo->kept_local);
}

/* ----------------------------------------------------------------
 *		Plans
 * ----------------------------------------------------------------
 */

/* Append the i-th key of an upper scan's key list (fdw_private). */
static void
add_key(List **keys, Oid typid, int32 typmod, const char *name,
		const char *field, bool null_on_error)
{
	*keys = lappend(*keys, list_make5(makeInteger((int) typid),
									  makeInteger(typmod),
									  makeString(pstrdup(name)),
									  makeString(pstrdup(field)),
									  makeInteger(null_on_error ? 1 : 0)));
}

/*
 * The accumulator of aggregate agg under key c<p> (and c<q> for the
 * count of values that sum and avg need) of the $group document, and
 * how its scan tuple value is made.
 */
static void
append_accumulator(PlannerInfo *root, RelOptInfo *baserel, bson_t *group,
				   Aggref *agg, int *nkeys, List **keys, int *op, int *p,
				   int *q)
{
	const char *name = get_func_name(agg->aggfnoid);
	ColInfo		col;
	const char *reason;
	char		key[32];
	char	   *ref = NULL;
	bson_t		acc;
	bson_t		d;
	bson_t		args;

	*p = (*nkeys)++;
	*q = -1;
	snprintf(key, sizeof(key), "c%d", *p);
	if (agg->aggfnoid != F_COUNT_)
	{
		if (!column_info(root, baserel,
						 linitial_node(TargetEntry, agg->args)->expr,
						 &col, &reason))
			elog(ERROR, "qleaf_fdw: aggregate planned as shippable has no column");
		ref = field_ref(&col);
	}

	bson_append_document_begin(group, key, -1, &acc);
	switch (agg->aggfnoid)
	{
		case F_COUNT_:
			bson_append_int32(&acc, "$sum", -1, 1);
			*op = QLEAF_OUT_COUNT;
			add_key(keys, INT8OID, -1, name, "", false);
			break;
		case F_COUNT_ANY:
			if (agg->aggdistinct != NIL)
			{
				/* the set of values; the $project counts those not null */
				append_value_key(&acc, "$addToSet", &col);
			}
			else if (col.is_root)
				bson_append_int32(&acc, "$sum", -1, 1);
			else
				append_null_flag(&acc, "$sum", ref, 0, 1);
			*op = QLEAF_OUT_COUNT;
			add_key(keys, INT8OID, -1, name, col.field, false);
			break;
		case F_SUM_INT2:
		case F_SUM_INT4:
		case F_SUM_INT8:
		case F_AVG_INT2:
		case F_AVG_INT4:
		case F_AVG_INT8:

			/*
			 * {$sum: {$toDecimal: {$toLong: {$ifNull: [ref, 0]}}}}: exact
			 * integers (Decimal128 holds 34 digits; an int64 $sum would
			 * turn into a double past 2^63), and the count of values
			 * added, for NULL where there is none.
			 */
			bson_append_document_begin(&acc, "$sum", -1, &d);
			{
				bson_t		tolong;
				bson_t		ifnull;

				bson_t		guard;
				bson_t		gargs;

				/* values that do not convert add 0: the guards report them */
				bson_append_document_begin(&d, "$toDecimal", -1, &tolong);
				bson_append_document_begin(&tolong, "$toLong", -1, &guard);
				bson_append_array_begin(&guard, "$cond", -1, &gargs);
				append_converts(&gargs, "0", &col);
				bson_append_document_begin(&gargs, "1", -1, &ifnull);
				bson_append_array_begin(&ifnull, "$ifNull", -1, &args);
				bson_append_utf8(&args, "0", -1, ref, -1);
				bson_append_int32(&args, "1", -1, 0);
				bson_append_array_end(&ifnull, &args);
				bson_append_document_end(&gargs, &ifnull);
				bson_append_int32(&gargs, "2", -1, 0);
				bson_append_array_end(&guard, &gargs);
				bson_append_document_end(&tolong, &guard);
				bson_append_document_end(&d, &tolong);
			}
			bson_append_document_end(&acc, &d);
			if (agg->aggfnoid == F_AVG_INT2 || agg->aggfnoid == F_AVG_INT4 ||
				agg->aggfnoid == F_AVG_INT8)
			{
				*op = QLEAF_OUT_AVG;
				add_key(keys, NUMERICOID, -1, name, col.field, false);
			}
			else
			{
				*op = QLEAF_OUT_SUM;
				add_key(keys, agg->aggtype, -1, name, col.field, false);
			}
			break;
		case F_MIN_INT2:
		case F_MIN_INT4:
		case F_MIN_INT8:
		case F_MIN_TEXT:
		case F_BOOL_AND:
		case F_EVERY:
		case F_MAX_INT2:
		case F_MAX_INT4:
		case F_MAX_INT8:
		case F_MAX_TEXT:
		case F_BOOL_OR:
			{
				const char *accname;

				if (agg->aggfnoid == F_MIN_INT2 || agg->aggfnoid == F_MIN_INT4 ||
					agg->aggfnoid == F_MIN_INT8 || agg->aggfnoid == F_MIN_TEXT ||
					agg->aggfnoid == F_BOOL_AND || agg->aggfnoid == F_EVERY)
					accname = "$min";
				else
					accname = "$max";
				/* $min and $max skip null and missing */
				append_value_key(&acc, accname, &col);
				*op = QLEAF_OUT_VALUE;
				add_key(keys, agg->aggtype, -1, name, col.field, false);
			}
			break;
		default:
			elog(ERROR, "qleaf_fdw: aggregate %u planned as shippable has no translation",
				 agg->aggfnoid);
	}
	bson_append_document_end(group, &acc);

	if (*op == QLEAF_OUT_SUM || *op == QLEAF_OUT_AVG)
	{
		*q = (*nkeys)++;
		snprintf(key, sizeof(key), "c%d", *q);
		bson_append_document_begin(group, key, -1, &acc);
		append_null_flag(&acc, "$sum", ref, 0, 1);
		bson_append_document_end(group, &acc);
		add_key(keys, INT8OID, -1, name, col.field, false);
	}
}

/*
 * {$size: {$filter: {input: "$ck", cond: {$ne: ["$$this", null]}}}}
 * under key: the values of a $addToSet that are not null.
 */
static void
append_set_count(bson_t *b, const char *key, const char *ref)
{
	bson_t		size;
	bson_t		filter;
	bson_t		cond;
	bson_t		args;

	bson_append_document_begin(b, key, -1, &size);
	bson_append_document_begin(&size, "$size", -1, &filter);
	bson_append_document_begin(&filter, "$filter", -1, &cond);
	bson_append_utf8(&cond, "input", -1, ref, -1);
	{
		bson_t		ne;

		bson_append_document_begin(&cond, "cond", -1, &ne);
		bson_append_array_begin(&ne, "$ne", -1, &args);
		bson_append_utf8(&args, "0", -1, "$$this", -1);
		bson_append_null(&args, "1", -1);
		bson_append_array_end(&ne, &args);
		bson_append_document_end(&cond, &ne);
	}
	bson_append_document_end(&filter, &cond);
	bson_append_document_end(&size, &filter);
	bson_append_document_end(b, &size);
}

/* Append stage to the pipeline array stages, counting it. */
static void
append_stage(bson_t *stages, int *nstages, const bson_t *stage)
{
	char		key[16];

	snprintf(key, sizeof(key), "%d", (*nstages)++);
	bson_append_document(stages, key, -1, stage);
}

/*
 * GetForeignPlan of an upper relation: a scan with no relation of its
 * own (scanrelid 0) whose rows are fdw_scan_tlist.
 */
ForeignScan *
qleaf_upper_plan(PlannerInfo *root, RelOptInfo *rel, List *tlist,
				 Plan *outer_plan)
{
	QleafUpperInfo *info = (QleafUpperInfo *) rel->fdw_private;
	RelOptInfo *baserel = info->baserel;
	QleafRelInfo *fpinfo = (QleafRelInfo *) baserel->fdw_private;
	bson_t	   *stages = qleaf_bson_new_owned(CurrentMemoryContext);
	int			nstages = 0;
	List	   *params = NIL;
	List	   *scan_exprs = NIL;
	List	   *keys = NIL;
	List	   *ops = NIL;
	List	   *fields = NIL;
	List	   *local_exprs = NIL;
	List	   *local_reasons = NIL;
	List	   *fdw_private;
	List	   *scan_tlist = NIL;
	List	   *upper;
	ListCell   *lc;
	bool		plain_agg = false;
	int64		offset_const = 0;
	int			offset_param = -1;
	bson_t	   *st;
	bson_t	   *proj;
	char		key[32];
	int			nkeys = 0;

	qleaf_append_match_next(root, baserel, stages, &nstages,
							fpinfo->remote_conds, &params);

	if (info->kind == QLEAF_UPPER_LIMIT)
	{
		Bitmapset  *attrs = NULL;
		List	   *vars;
		RangeTblEntry *rte = planner_rt_fetch(baserel->relid, root);
		Relation	relation;
		TupleDesc	tupdesc;
		int			attno;
		List	   *remote_exprs = NIL;

		/*
		 * The columns of the output, and those of the shipped conditions
		 * and sort keys, so that their conversion errors are raised as in
		 * a scan of the table.
		 */
		vars = pull_var_clause((Node *) tlist, PVC_RECURSE_PLACEHOLDERS);
		foreach(lc, vars)
			attrs = bms_add_member(attrs, ((Var *) lfirst(lc))->varattno);
		foreach(lc, fpinfo->remote_conds)
			remote_exprs = lappend(remote_exprs,
								   lfirst_node(RestrictInfo, lc)->clause);
		{
			Bitmapset  *cond_attrs = NULL;
			int			x = -1;

			qleaf_add_condition_columns(baserel, remote_exprs, &cond_attrs);
			while ((x = bms_next_member(cond_attrs, x)) >= 0)
				attrs = bms_add_member(attrs, x + FirstLowInvalidHeapAttributeNumber);
		}

		if (info->pathkeys != NIL)
		{
			const char *why;
			List	   *guards;
			bson_t	   *sort;
			bson_iter_t iter;

			foreach(lc, sort_keys(root, baserel, info->pathkeys, &why))
				attrs = bms_add_member(attrs, ((SortKey *) lfirst(lc))->col.attnum);
			guards = guard_columns(root, baserel, attrs, &why);
			if (why != NULL)
				elog(ERROR, "qleaf_fdw: a sorted LIMIT planned as shippable has unchecked columns: %s", why);
			sort = sort_stages(root, baserel, info->pathkeys, guards);
			bson_iter_init(&iter, sort);
			while (bson_iter_next(&iter))
			{
				snprintf(key, sizeof(key), "%d", nstages++);
				bson_append_iter(stages, key, -1, &iter);
			}
		}

		/* one key per column: {$project: {_id: 1, c0: "$f", ...}} */
		relation = table_open(rte->relid, NoLock);
		tupdesc = RelationGetDescr(relation);
		proj = qleaf_bson_new_owned(CurrentMemoryContext);
		bson_append_int32(proj, "_id", -1, 1);
		attno = -1;
		while ((attno = bms_next_member(attrs, attno)) >= 0)
		{
			Form_pg_attribute attr = TupleDescAttr(tupdesc, attno - 1);
			bool		null_mode = fpinfo->opts.null_on_error;
			char	   *field;
			int			k = nkeys++;

			field = qleaf_get_column_field(rte->relid, attno,
										   NameStr(attr->attname), &null_mode);
			qleaf_check_column_mapping(relation, attno, field);
			snprintf(key, sizeof(key), "c%d", k);
			if (qleaf_is_root_field(field))
				bson_append_utf8(proj, key, -1, QLEAF_ROOT_FIELD, -1);
			else
			{
				char	   *path = psprintf("$%s", field);

				bson_append_utf8(proj, key, -1, path, -1);
			}
			add_key(&keys, attr->atttypid, attr->atttypmod,
					NameStr(attr->attname), field, null_mode);
			ops = lappend_int(ops, QLEAF_OUT_VALUE);
			ops = lappend_int(ops, k);
			ops = lappend_int(ops, -1);
			scan_exprs = lappend(scan_exprs,
								 makeVar(baserel->relid, attno, attr->atttypid,
										 attr->atttypmod, attr->attcollation, 0));
			fields = lappend(fields, makeString(field));
		}
		table_close(relation, NoLock);
		st = qleaf_bson_new_owned(CurrentMemoryContext);
		bson_append_document(st, "$project", -1, proj);
		append_stage(stages, &nstages, st);

		/*
		 * $limit of LIMIT + OFFSET documents; the scan skips the OFFSET
		 * first ones itself, converting them as PostgreSQL's Limit node
		 * would.  Constants now, other values at execution.
		 */
		{
			Node	   *count = info->limit_count;
			Node	   *offset = info->limit_offset;
			bson_t	   *lim = NULL;

			if (offset == NULL)
				offset = (Node *) makeConst(INT8OID, -1, InvalidOid, 8,
											Int64GetDatum(0), false, true);
			if (IsA(offset, Const))
			{
				offset_const = ((Const *) offset)->constisnull ? 0 :
					DatumGetInt64(((Const *) offset)->constvalue);
				if (offset_const < 0)
					offset_param = -2;	/* raise its error at execution */
			}
			if (count != NULL && IsA(count, Const) && IsA(offset, Const) &&
				offset_param != -2)
			{
				Const	   *c = (Const *) count;

				if (!c->constisnull)
					lim = qleaf_limit_stage(c->constvalue, false,
											Int64GetDatum(offset_const), false);
				else if (offset_const > 0)
					lim = NULL;
			}
			else if (count != NULL || !IsA(offset, Const) || offset_param == -2)
			{
				if (count == NULL)
					count = (Node *) makeConst(INT8OID, -1, InvalidOid, 8,
											   (Datum) 0, true, true);
				params = lappend(params, count);
				params = lappend(params, offset);
				lim = qleaf_stage_placeholder(list_length(params) - 1,
											  list_length(params));
				if (!IsA(offset, Const) || offset_param == -2)
					offset_param = list_length(params) - 1;
			}
			if (lim != NULL)
				append_stage(stages, &nstages, lim);
		}
	}
	else
	{
		bson_t		group;
		bson_t		id;
		bson_t		project;
		List	   *set_keys = NIL;
		List	   *guards;
		int			first_guard;
		const char *why;

		guards = guard_columns(root, baserel,
							   bms_union(condition_attrs(baserel),
										 var_attrs(baserel, (Node *) info->scan_exprs)),
							   &why);
		if (why != NULL)
			elog(ERROR, "qleaf_fdw: a $group planned as shippable has unchecked columns: %s", why);

		plain_agg = (info->group_exprs == NIL);
		st = qleaf_bson_new_owned(CurrentMemoryContext);
		bson_append_document_begin(st, "$group", -1, &group);
		if (plain_agg)
			bson_append_null(&group, "_id", -1);
		else
			bson_append_document_begin(&group, "_id", -1, &id);

		/* grouping keys: c<k> in _id, one value for null and missing */
		foreach(lc, info->scan_exprs)
		{
			Expr	   *e = (Expr *) lfirst(lc);
			ColInfo		col;
			const char *reason;
			int			k;

			if (!list_member(info->group_exprs, e))
				continue;
			if (!column_info(root, baserel, e, &col, &reason))
				elog(ERROR, "qleaf_fdw: grouping column planned as shippable has no column");
			k = nkeys++;
			snprintf(key, sizeof(key), "c%d", k);
			append_value_key(&id, key, &col);
			add_key(&keys, col.type, col.typmod, col.name, col.field, false);
			fields = lappend(fields, makeString(col.field));
		}
		if (!plain_agg)
			bson_append_document_end(&group, &id);

		/* the scan tuple: grouping keys and aggregates, in scan_exprs order */
		{
			int			g = 0;

			foreach(lc, info->scan_exprs)
			{
				Expr	   *e = (Expr *) lfirst(lc);
				int			op;
				int			p;
				int			q;

				if (list_member(info->group_exprs, e))
				{
					op = QLEAF_OUT_VALUE;
					p = g++;
					q = -1;
				}
				else
				{
					Aggref	   *agg = castNode(Aggref, e);

					append_accumulator(root, baserel, &group, agg, &nkeys,
									   &keys, &op, &p, &q);
					if (agg->aggdistinct != NIL)
						set_keys = lappend_int(set_keys, p);
					fields = lappend(fields, makeString(""));
					if (q >= 0)
						fields = lappend(fields, makeString(""));
				}
				ops = lappend_int(ops, op);
				ops = lappend_int(ops, p);
				ops = lappend_int(ops, q);
				scan_exprs = lappend(scan_exprs, e);
			}
		}

		/*
		 * Guards: for each column whose values the scan would convert, a
		 * document {_id, v} holding one value that does not convert, or
		 * null.  The $project below puts that value under its key and the
		 * document's _id as the row's _id, so that reading the row raises
		 * the conversion error a scan of the table raises, naming the
		 * document.
		 */
		first_guard = nkeys;
		if (guards != NIL)
		{
			bson_t		acc;
			bson_t		cond;
			bson_t		args;
			bson_t		bad;

			bson_append_document_begin(&group, "g", -1, &acc);
			bson_append_document_begin(&acc, "$min", -1, &cond);
			bson_append_array_begin(&cond, "$cond", -1, &args);
			append_all_convert(&args, "0", guards);
			bson_append_null(&args, "1", -1);
			bson_append_document_begin(&args, "2", -1, &bad);
			bson_append_utf8(&bad, "_id", -1, "$_id", -1);
			foreach(lc, guards)
			{
				ColInfo    *col = (ColInfo *) lfirst(lc);

				snprintf(key, sizeof(key), "v%d", foreach_current_index(lc));
				bson_append_utf8(&bad, key, -1, field_ref(col), -1);
			}
			bson_append_document_end(&args, &bad);
			bson_append_array_end(&cond, &args);
			bson_append_document_end(&acc, &cond);
			bson_append_document_end(&group, &acc);
			foreach(lc, guards)
			{
				ColInfo    *col = (ColInfo *) lfirst(lc);

				nkeys++;
				add_key(&keys, col->type, col->typmod, col->name, col->field, false);
			}
		}

		bson_append_document_end(st, &group);
		append_stage(stages, &nstages, st);

		/* {$project: {_id: <a guard's _id>, c0: "$_id.c0", c1: 1, ...}} */
		st = qleaf_bson_new_owned(CurrentMemoryContext);
		bson_append_document_begin(st, "$project", -1, &project);
		if (guards == NIL)
			bson_append_int32(&project, "_id", -1, 0);
		else
			bson_append_utf8(&project, "_id", -1, "$g._id", -1);
		{
			int			k;
			int			g = list_length(info->group_exprs);

			for (k = 0; k < nkeys; k++)
			{
				snprintf(key, sizeof(key), "c%d", k);
				if (k < g)
				{
					char	   *path = psprintf("$_id.c%d", k);

					bson_append_utf8(&project, key, -1, path, -1);
				}
				else if (k >= first_guard)
				{
					/* the bad document's value of the column, if bad */
					ColInfo		v = *(ColInfo *) list_nth(guards, k - first_guard);
					bson_t		cond;
					bson_t		args;

					v.is_root = false;
					v.field = psprintf("g.v%d", k - first_guard);
					bson_append_document_begin(&project, key, -1, &cond);
					bson_append_array_begin(&cond, "$cond", -1, &args);
					append_converts(&args, "0", &v);
					bson_append_null(&args, "1", -1);
					bson_append_utf8(&args, "2", -1, field_ref(&v), -1);
					bson_append_array_end(&cond, &args);
					bson_append_document_end(&project, &cond);
				}
				else if (list_member_int(set_keys, k))
					append_set_count(&project, key, psprintf("$c%d", k));
				else
					bson_append_int32(&project, key, -1, 1);
			}
		}
		bson_append_document_end(st, &project);
		append_stage(stages, &nstages, st);

		foreach(lc, info->local_quals)
		{
			local_exprs = lappend(local_exprs, lfirst(lc));
			local_reasons = lappend(local_reasons,
									makeString("HAVING is checked by PostgreSQL"));
		}
	}

	foreach(lc, scan_exprs)
		scan_tlist = lappend(scan_tlist,
							 makeTargetEntry((Expr *) lfirst(lc),
											 list_length(scan_tlist) + 1,
											 NULL, false));

	upper = list_make5(keys, ops, makeInteger(plain_agg ? 1 : 0),
					   makeInteger((int) Min(offset_const, PG_INT32_MAX)),
					   makeInteger(offset_param));
	fdw_private = NIL;
	fdw_private = lappend(fdw_private,
						  makeConst(BYTEAOID, -1, InvalidOid, -1,
									PointerGetDatum(qleaf_bson_to_bytea(stages)),
									false, false));
	fdw_private = lappend(fdw_private, NIL);	/* no retrieved attributes */
	fdw_private = lappend(fdw_private, fields);
	fdw_private = lappend(fdw_private, makeString(fpinfo->opts.database));
	fdw_private = lappend(fdw_private, makeString(fpinfo->opts.collection));
	fdw_private = lappend(fdw_private, makeInteger(fpinfo->opts.batch_size));
	fdw_private = lappend(fdw_private, local_reasons);
	fdw_private = lappend(fdw_private, NIL);	/* not a join, none refused */
	fdw_private = lappend(fdw_private, qleaf_kept_local(root, baserel, NIL));
	fdw_private = lappend(fdw_private, upper);

	return make_foreignscan(tlist, local_exprs, 0, params, fdw_private,
							scan_tlist, NIL, outer_plan);
}

/* ----------------------------------------------------------------
 *		Execution
 * ----------------------------------------------------------------
 */

void
qleaf_upper_begin(ForeignScanState *node, int eflags, QleafScanState *state)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	List	   *fdw_private = fsplan->fdw_private;
	EState	   *estate = node->ss.ps.state;
	List	   *upper = (List *) list_nth(fdw_private, FdwScanPrivateUpper);
	List	   *keys = (List *) linitial(upper);
	List	   *ops = (List *) lsecond(upper);
	QleafUpperExec *ux;
	QleafScanKey *skeys;
	RangeTblEntry *rte;
	Oid			userid;
	ForeignTable *table;
	ForeignServer *server;
	UserMapping *user;
	int			batch_size;
	ListCell   *lc;
	int			i;

	ux = palloc0(sizeof(QleafUpperExec));
	state->upper = ux;
	ux->plain_agg = intVal(lthird(upper)) != 0;
	ux->offset_const = intVal(lfourth(upper));
	ux->offset_param = intVal(list_nth(upper, 4));
	ux->to_skip = -1;
	ux->nkeys = list_length(keys);
	ux->pvalues = palloc0(sizeof(Datum) * Max(ux->nkeys, 1));
	ux->pnulls = palloc0(sizeof(bool) * Max(ux->nkeys, 1));
	ux->nout = list_length(ops) / 3;
	ux->ops = palloc(sizeof(int) * Max(ux->nout, 1));
	ux->pkey = palloc(sizeof(int) * Max(ux->nout, 1));
	ux->qkey = palloc(sizeof(int) * Max(ux->nout, 1));
	for (i = 0; i < ux->nout; i++)
	{
		ux->ops[i] = list_nth_int(ops, 3 * i);
		ux->pkey[i] = list_nth_int(ops, 3 * i + 1);
		ux->qkey[i] = list_nth_int(ops, 3 * i + 2);
	}

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	rte = exec_rt_fetch(bms_next_member(fsplan->fs_relids, -1), estate);
	userid = OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
	table = GetForeignTable(rte->relid);
	server = GetForeignServer(table->serverid);
	user = GetUserMapping(userid, server->serverid);

	skeys = palloc0(sizeof(QleafScanKey) * Max(ux->nkeys, 1));
	i = 0;
	foreach(lc, keys)
	{
		List	   *k = (List *) lfirst(lc);

		skeys[i].att = i;
		skeys[i].typid = (Oid) intVal(linitial(k));
		skeys[i].typmod = intVal(lsecond(k));
		skeys[i].colname = strVal(lthird(k));
		skeys[i].field = strVal(lfourth(k));
		skeys[i].null_on_error = intVal(list_nth(k, 4)) != 0;
		skeys[i].from_id = false;
		i++;
	}

	batch_size = intVal(list_nth(fdw_private, FdwScanPrivateBatchSize));
	if (batch_size <= 0)
		batch_size = qleaf_batch_size;
	if (fsplan->fdw_exprs != NIL)
	{
		state->param_states = ExecInitExprList(fsplan->fdw_exprs,
											   (PlanState *) node);
		state->params_pending = true;
	}
	{
		Const	   *c = list_nth_node(Const, fdw_private, FdwScanPrivatePipeline);

		state->scan = qleaf_scan_begin_keys(server, user,
											strVal(list_nth(fdw_private, FdwScanPrivateDatabase)),
											strVal(list_nth(fdw_private, FdwScanPrivateCollection)),
											DatumGetByteaPP(c->constvalue),
											ux->nkeys, ux->nkeys, skeys,
											batch_size, estate->es_query_cxt);
	}
}

/*
 * The next row of an upper scan: the values the pipeline returned, made
 * into the scan tuple (sums and averages finished, NULL where no value
 * was added), or the one row of an aggregate over no document.
 */
TupleTableSlot *
qleaf_upper_iterate(ForeignScanState *node, QleafScanState *state)
{
	QleafUpperExec *ux = state->upper;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	MemoryContext oldcxt;
	bool		found;
	int			i;

	ExecClearTuple(slot);
	oldcxt = MemoryContextSwitchTo(node->ss.ps.ps_ExprContext->ecxt_per_tuple_memory);

	/* OFFSET: read and convert the rows a Limit node would skip */
	if (ux->to_skip < 0)
	{
		ux->to_skip = ux->offset_const;
		if (ux->offset_param >= 0)
		{
			bool		isnull;
			Datum		v;

			v = ExecEvalExpr((ExprState *) list_nth(state->param_states,
													ux->offset_param),
							 node->ss.ps.ps_ExprContext, &isnull);
			ux->to_skip = isnull ? 0 : DatumGetInt64(v);
		}
	}
	while (ux->to_skip > 0)
	{
		CHECK_FOR_INTERRUPTS();
		if (!qleaf_scan_next(state->scan, ux->pvalues, ux->pnulls))
		{
			ux->to_skip = 0;
			MemoryContextSwitchTo(oldcxt);
			return slot;
		}
		ux->to_skip--;
	}
	found = qleaf_scan_next(state->scan, ux->pvalues, ux->pnulls);
	if (!found)
	{
		if (!ux->plain_agg || ux->returned)
		{
			MemoryContextSwitchTo(oldcxt);
			return slot;
		}
		/* no document: count(*) is 0, every other aggregate NULL */
		for (i = 0; i < ux->nkeys; i++)
			ux->pnulls[i] = true;
	}
	ux->returned = true;

	for (i = 0; i < ux->nout; i++)
	{
		int			p = ux->pkey[i];
		int			q = ux->qkey[i];
		Datum		v = ux->pvalues[p];
		bool		isnull = ux->pnulls[p];

		switch (ux->ops[i])
		{
			case QLEAF_OUT_COUNT:
				if (isnull)
				{
					v = Int64GetDatum(0);
					isnull = false;
				}
				break;
			case QLEAF_OUT_SUM:
				if (ux->pnulls[q] || DatumGetInt64(ux->pvalues[q]) == 0)
					isnull = true;
				break;
			case QLEAF_OUT_AVG:
				if (isnull || ux->pnulls[q] || DatumGetInt64(ux->pvalues[q]) == 0)
					isnull = true;
				else
					v = DirectFunctionCall2(numeric_div, v,
											DirectFunctionCall1(int8_numeric,
																ux->pvalues[q]));
				break;
			default:
				break;
		}
		slot->tts_values[i] = v;
		slot->tts_isnull[i] = isnull;
	}
	ExecStoreVirtualTuple(slot);
	MemoryContextSwitchTo(oldcxt);
	return slot;
}

void
qleaf_upper_rescan(QleafScanState *state)
{
	if (state->upper != NULL)
	{
		state->upper->returned = false;
		state->upper->to_skip = -1;
	}
}

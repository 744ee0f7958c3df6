/*-------------------------------------------------------------------------
 *
 * deparse.c
 *		  build the MongoDB aggregation pipeline of a foreign scan
 *
 * A scan is one aggregation pipeline.  Its stages are, in order:
 *
 *	 $match		the conditions MongoDB evaluates (remote_conds)
 *	 $sort, $limit		(when ORDER BY / LIMIT are shipped)
 *	 $project	only the fields the query needs
 *
 * Each condition is classified once (qleaf_classify_expr): exact (in
 * $match, not rechecked), lossy (in $match as a prefilter and rechecked
 * by PostgreSQL) or unsafe (PostgreSQL only, with a reason EXPLAIN
 * VERBOSE shows).  Rules of the translation:
 * - A filter matches the documents where the condition is true, never
 *   where it is NULL: SQL's three-valued logic is kept by translating
 *   NOT by pushing it down to the leaves (NOT (a < 5) is a >= 5, which
 *   like a < 5 excludes null and missing), never by MongoDB's $not or
 *   $nor over a subtree.
 * - Comparisons rely on MongoDB's type brackets (a number never equals a
 *   string) and add a $type guard where MongoDB would match more ($ne,
 *   $nin match null and missing fields).  A value that cannot convert to
 *   the column's type may still be matched (an array matched element by
 *   element); the scan then raises the conversion error PostgreSQL would
 *   raise.  See leaf_filter for what a filter may hide.
 * - What MongoDB compares differently (ObjectIds shown as text, BSON
 *   timestamps, ILIKE's case folding, anything under on_conversion_error
 *   'null') is matched generously and rechecked: lossy.
 * - What cannot be matched generously stays local: float columns, text
 *   ordering under a non-C collation, numeric values with a fraction,
 *   volatile functions, two columns compared, ...
 * Shipped values known only at execution (parameters, now(), the outer
 * row of a nested loop) are placeholders, filled in by the executor.
 *
 * The projection renames each fetched field to a short key, "c<N>" where N
 * is the field's position in the plan's retrieved-attributes list, so the
 * executor maps a key to its column by parsing a number: no per-row string
 * lookups.  _id is always fetched, under its own name, so a conversion
 * error can name the document; columns mapped to "_id" read it from there.
 * A column mapped to "$$ROOT" gets the whole document.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "qleaf_fdw.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/sysattr.h"
#include "access/tupdesc.h"
#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "executor/executor.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/bitmapset.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "optimizer/paths.h"
#include "optimizer/restrictinfo.h"
#include "parser/parsetree.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/pg_locale.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

/* One fetched column: which attribute and where its value comes from. */
typedef struct FetchedColumn
{
	AttrNumber	attnum;
	char	   *field;
} FetchedColumn;

static List *fetched_columns(Relation rel, Bitmapset *attrs_used,
							 bool all_columns);
static void append_project(bson_t *stages, const char *key, List *columns);

/*
 * The leaves of a $match: one column (or jsonb path) compared with one
 * value.  A leaf whose value is known only at execution (a parameter, a
 * stable expression such as now(), a column of the outer side of a
 * nested loop) is written into the plan's pipeline as a placeholder
 * {"$param": {"n": N, ...}} naming the N-th expression of fdw_exprs and
 * the leaf; qleaf_fill_pipeline replaces it with the leaf's filter once
 * the value is known, at the start of every scan and rescan.
 */
typedef enum LeafOp
{
	L_EQ,
	L_NE,
	L_LT,
	L_LE,
	L_GT,
	L_GE,
	L_IN,
	L_NIN,
	L_ISNULL,
	L_NOTNULL,
	L_LIKE,
	L_NLIKE,
	L_ILIKE,
	L_NILIKE,
	L_TRUE,
	L_FALSE,
	L_HAS,						/* value = ANY (array column) */
	L_CONTAINS,					/* array column @> array */
	L_OVERLAP,					/* array column && array */
	L_NUM_OPS
} LeafOp;

static const char *const leaf_op_names[L_NUM_OPS] = {
	"=", "<>", "<", "<=", ">", ">=", "in", "not in", "is null",
	"is not null", "like", "not like", "ilike", "not ilike", "true", "false",
	"has", "@>", "&&"
};

/* the opposite of each operator, for a NOT above it */
static const LeafOp leaf_op_negator[L_NUM_OPS] = {
	L_NE, L_EQ, L_GE, L_GT, L_LE, L_LT, L_NIN, L_IN, L_NOTNULL, L_ISNULL,
	L_NLIKE, L_LIKE, L_NILIKE, L_ILIKE, L_FALSE, L_TRUE,
	/* not negated: deparse_saop and deparse_opexpr refuse NOT over them */
	L_HAS, L_CONTAINS, L_OVERLAP
};

typedef struct Leaf
{
	const char *path;			/* MongoDB field path */
	QleafValueKind kind;		/* what the column holds */
	LeafOp		op;
	Oid			valtype;		/* type of the value (element type for IN) */
	bool		jsonb_text;		/* path is a jsonb ->> path: strings only */
	bool		null_mode;		/* column turns bad values into NULL */
} Leaf;

/* A column, or a jsonb path into one, that a condition compares. */
typedef struct ColRef
{
	char	   *path;
	Oid			type;
	int32		typmod;
	QleafValueKind kind;
	bool		jsonb_text;		/* a ->> path: its value is text */
	bool		is_root;		/* the column maps the whole document */
	bool		is_array;		/* an array column; kind is its elements' */
	bool		null_mode;
	const char *name;			/* for reasons */
} ColRef;

/* State of the translation of one condition. */
typedef struct DeparseCxt
{
	PlannerInfo *root;
	RelOptInfo *baserel;
	Oid			reloid;
	bool		table_null_mode;
	bool		lossy;			/* out: a leaf is a prefilter only */
	const char *reason;			/* out: why unsafe, or why lossy */
	List	   *params;			/* expressions evaluated at execution */
} DeparseCxt;

#define EPOCH_DIFF_USECS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY)


static bson_t *deparse_cond(DeparseCxt *cx, Expr *expr, bool negate);
static void filter_type(bson_t *f, const char *path, const char *type);
static void filter_combine(bson_t *f, const char *op, bson_t **parts, int n);

static bson_t *
new_filter(void)
{
	return qleaf_bson_new_owned(CurrentMemoryContext);
}

/* {} that matches no document: NOR of the filter that matches all */
static void
filter_nothing(bson_t *f)
{
	bson_t		arr;
	bson_t		empty;

	bson_append_array_begin(f, "$nor", -1, &arr);
	bson_append_document_begin(&arr, "0", -1, &empty);
	bson_append_document_end(&arr, &empty);
	bson_append_array_end(f, &arr);
}

/*
 * {path: {$type: "date"}} or {path: {$gte: Timestamp(0, 0)}}: every date
 * or BSON timestamp.  (Timestamps are found by their type bracket, the
 * smallest timestamp being Timestamp(0, 0).)
 */
static void
filter_timestamp_type(bson_t *f, const char *path)
{
	bson_t		d;

	bson_append_document_begin(f, path, -1, &d);
	bson_append_timestamp(&d, "$gte", -1, 0, 0);
	bson_append_document_end(f, &d);
}

static void
filter_all_dates(bson_t *f, const char *path)
{
	bson_t	   *parts[2];

	parts[0] = new_filter();
	filter_type(parts[0], path, "date");
	parts[1] = new_filter();
	filter_timestamp_type(parts[1], path);
	filter_combine(f, "$or", parts, 2);
}

static void
filter_type(bson_t *f, const char *path, const char *type)
{
	bson_t		d;

	bson_append_document_begin(f, path, -1, &d);
	bson_append_utf8(&d, "$type", -1, type, -1);
	bson_append_document_end(f, &d);
}

/*
 * {$nor: [{path: {$type: "undefined"}}]}: the deprecated BSON undefined
 * reads as NULL, and {$ne: null} / {$nin: [null]} exclude it only on
 * servers before MongoDB 8.0, which stopped treating it as null.  f must
 * not hold a $nor of its own.
 */
static void
append_not_undefined(bson_t *f, const char *path)
{
	bson_t		arr;
	bson_t		d;

	bson_append_array_begin(f, "$nor", -1, &arr);
	bson_append_document_begin(&arr, "0", -1, &d);
	filter_type(&d, path, "undefined");
	bson_append_document_end(&arr, &d);
	bson_append_array_end(f, &arr);
}

/* Append the filters a[0..n-1] under op ("$and", "$or") into f. */
static void
filter_combine(bson_t *f, const char *op, bson_t **parts, int n)
{
	bson_t		arr;
	int			i;
	char		k[16];

	bson_append_array_begin(f, op, -1, &arr);
	for (i = 0; i < n; i++)
	{
		snprintf(k, sizeof(k), "%d", i);
		bson_append_document(&arr, k, -1, parts[i]);
	}
	bson_append_array_end(f, &arr);
}

/*
 * An integral numeric value as int64.  False for fractions, NaN, the
 * infinities and values beyond int64.
 */
static bool
numeric_integral(Numeric num, int64 *out)
{
	char	   *s;
	char	   *p;
	char	   *end;
	long long	v;

	if (numeric_is_nan(num) || numeric_is_inf(num))
		return false;
	s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(num)));
	p = strchr(s, '.');
	if (p != NULL)
	{
		char	   *q;

		for (q = p + 1; *q; q++)
			if (*q != '0')
				return false;
		*p = '\0';
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = (int64) v;
	return true;
}

/* A number value as int64, false when it has no exact int64 form. */
static bool
number_value(Oid valtype, Datum v, int64 *out)
{
	switch (valtype)
	{
		case INT2OID:
			*out = DatumGetInt16(v);
			return true;
		case INT4OID:
			*out = DatumGetInt32(v);
			return true;
		case INT8OID:
			*out = DatumGetInt64(v);
			return true;
		case NUMERICOID:
			return numeric_integral(DatumGetNumeric(v), out);
		default:
			return false;
	}
}

/* A text value in UTF-8, as MongoDB stores strings. */
static char *
text_value(Datum v, int *len)
{
	char	   *s = TextDatumGetCString(v);

	s = pg_server_to_any(s, strlen(s), PG_UTF8);
	*len = strlen(s);
	return s;
}

/* Does s (24 lower-case hex digits) read as an ObjectId in text? */
static bool
text_is_oid(const char *s, int len)
{
	int			i;

	if (len != 24)
		return false;
	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/*
 * Append the BSON values a text column value equals: the string, and the
 * ObjectId it is the text of, if any.  *k counts the array's elements.
 */
static void
append_text_values(bson_t *arr, int *k, Datum v)
{
	int			len;
	char	   *s = text_value(v, &len);
	char		key[16];

	snprintf(key, sizeof(key), "%d", (*k)++);
	bson_append_utf8(arr, key, -1, s, len);
	if (text_is_oid(s, len))
	{
		bson_oid_t	oid;

		bson_oid_init_from_string(&oid, s);
		snprintf(key, sizeof(key), "%d", (*k)++);
		bson_append_oid(arr, key, -1, &oid);
	}
}

/* Append one value of a number column under key. */
static bool
append_number(bson_t *b, const char *key, Oid valtype, Datum v)
{
	int64		n;

	if (!number_value(valtype, v, &n))
		return false;
	bson_append_int64(b, key, -1, n);
	return true;
}

/*
 * Append the elements of an array value as the BSON values they match
 * (nulls skipped).  Returns false if an element has no translation;
 * *has_null tells whether the array held a NULL.
 */
static bool
append_array_values(bson_t *arr, const Leaf *leaf, Datum v, bool *has_null,
					int *nvalues)
{
	ArrayType  *a = DatumGetArrayTypeP(v);
	int16		elmlen;
	bool		elmbyval;
	char		elmalign;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	int			k = *nvalues;

	get_typlenbyvalalign(ARR_ELEMTYPE(a), &elmlen, &elmbyval, &elmalign);
	deconstruct_array(a, ARR_ELEMTYPE(a), elmlen, elmbyval, elmalign,
					  &elems, &nulls, &n);
	*has_null = false;
	for (i = 0; i < n; i++)
	{
		char		key[16];

		if (nulls[i])
		{
			*has_null = true;
			continue;
		}
		if (leaf->kind == QLEAF_VK_TEXT || leaf->jsonb_text)
		{
			if (leaf->jsonb_text)
			{
				int			len;
				char	   *s = text_value(elems[i], &len);

				snprintf(key, sizeof(key), "%d", k++);
				bson_append_utf8(arr, key, -1, s, len);
			}
			else
				append_text_values(arr, &k, elems[i]);
		}
		else
		{
			snprintf(key, sizeof(key), "%d", k++);
			if (!append_number(arr, key, ARR_ELEMTYPE(a), elems[i]))
				return false;
		}
	}
	*nvalues = k;
	return true;
}

/*
 * {path: {$type: "number", $not: {$gte: -Infinity}}}: NaN, the only
 * number not at least -Infinity (MongoDB's comparisons are false for NaN
 * but for NaN itself)
 */
static void
filter_nan(bson_t *f, const char *path)
{
	bson_t		d;
	bson_t		n;

	bson_append_document_begin(f, path, -1, &d);
	bson_append_utf8(&d, "$type", -1, "number", -1);
	bson_append_document_begin(&d, "$not", -1, &n);
	bson_append_double(&n, "$gte", -1, -INFINITY);
	bson_append_document_end(&d, &n);
	bson_append_document_end(f, &d);
}

static const char *
comparison_op(LeafOp op)
{
	switch (op)
	{
		case L_LT:
			return "$lt";
		case L_LE:
			return "$lte";
		case L_GT:
			return "$gt";
		case L_GE:
			return "$gte";
		case L_EQ:
			return "$eq";
		default:
			return "$ne";
	}
}

/* {$or: [a, {path: {$type: type}}]}: a, plus documents of a type a misses */
static bson_t *
or_pass_type(bson_t *a, const char *path, const char *type)
{
	bson_t	   *parts[2];
	bson_t	   *f = new_filter();

	parts[0] = a;
	parts[1] = new_filter();
	if (strcmp(type, "timestamp") == 0)
		filter_timestamp_type(parts[1], path);
	else
		filter_type(parts[1], path, type);
	filter_combine(f, "$or", parts, 2);
	return f;
}

/*
 * The filter of a double precision comparison, a prefilter.  A
 * Decimal128 converts to the nearest double, so a bound moves out by one
 * double (x >= c becomes x >= the double below c): every number whose
 * double satisfies the comparison matches.  NaN, above every number in
 * PostgreSQL, matches > and >=; MongoDB's comparisons are false for NaN.
 */
static bson_t *
float8_filter(const Leaf *leaf, double c)
{
	bson_t	   *f = new_filter();
	bson_t		d;
	double		lo = nextafter(c, -INFINITY);
	double		hi = nextafter(c, INFINITY);

	if (isnan(c))
	{
		switch (leaf->op)
		{
			case L_EQ:
			case L_GE:
				filter_nan(f, leaf->path);
				break;
			case L_LE:
				filter_type(f, leaf->path, "number");
				break;
			case L_LT:
			case L_NE:
				bson_append_document_begin(f, leaf->path, -1, &d);
				bson_append_double(&d, "$gte", -1, -INFINITY);
				bson_append_document_end(f, &d);
				break;
			default:
				filter_nothing(f);
				break;
		}
		return f;
	}

	bson_append_document_begin(f, leaf->path, -1, &d);
	switch (leaf->op)
	{
		case L_LT:
			bson_append_double(&d, "$lt", -1, c);
			bson_append_double(&d, "$gte", -1, -INFINITY);
			break;
		case L_LE:
			bson_append_double(&d, "$lte", -1, hi);
			bson_append_double(&d, "$gte", -1, -INFINITY);
			break;
		case L_GT:
			bson_append_double(&d, "$gt", -1, c);
			break;
		case L_GE:
			bson_append_double(&d, "$gte", -1, lo);
			break;
		case L_EQ:
			bson_append_double(&d, "$gte", -1, lo);
			bson_append_double(&d, "$lte", -1, hi);
			break;
		default:
			bson_append_utf8(&d, "$type", -1, "number", -1);
			break;
	}
	bson_append_document_end(f, &d);
	if (leaf->op == L_GT || leaf->op == L_GE)
	{
		bson_t	   *parts[2];

		parts[0] = f;
		parts[1] = new_filter();
		filter_nan(parts[1], leaf->path);
		f = new_filter();
		filter_combine(f, "$or", parts, 2);
	}
	return f;
}

/*
 * The filter of a timestamp comparison.  BSON dates hold milliseconds,
 * PostgreSQL microseconds: a value with a sub-millisecond part is moved
 * to the millisecond bound that keeps the comparison's result (ts > c is
 * ms > floor(c), ts >= c is ms >= ceil(c), and so on).  A BSON timestamp
 * (which converts to its seconds) is in another type bracket than dates:
 * those documents always pass, and the condition is rechecked.
 */
static bson_t *
timestamp_filter(const Leaf *leaf, Timestamp t)
{
	bson_t	   *f = new_filter();
	int64		u;
	int64		lo;
	int64		hi;
	bool		exact_ms;
	bson_t		d;

	if (TIMESTAMP_NOT_FINITE(t))
	{
		bool		all;

		if (TIMESTAMP_IS_NOBEGIN(t))
			all = (leaf->op == L_GT || leaf->op == L_GE || leaf->op == L_NE);
		else
			all = (leaf->op == L_LT || leaf->op == L_LE || leaf->op == L_NE);
		if (all)
			filter_all_dates(f, leaf->path);
		else
			filter_nothing(f);
		return f;
	}

	u = t + EPOCH_DIFF_USECS;
	lo = u / 1000 - ((u % 1000 < 0) ? 1 : 0);	/* floor */
	exact_ms = (u % 1000 == 0);
	hi = exact_ms ? lo : lo + 1;	/* ceil */

	switch (leaf->op)
	{
		case L_GT:
		case L_LE:
			bson_append_document_begin(f, leaf->path, -1, &d);
			bson_append_date_time(&d, comparison_op(leaf->op), -1, lo);
			bson_append_document_end(f, &d);
			break;
		case L_GE:
		case L_LT:
			bson_append_document_begin(f, leaf->path, -1, &d);
			bson_append_date_time(&d, comparison_op(leaf->op), -1, hi);
			bson_append_document_end(f, &d);
			break;
		case L_EQ:
			if (!exact_ms)
			{
				filter_timestamp_type(f, leaf->path);
				return f;
			}
			bson_append_document_begin(f, leaf->path, -1, &d);
			bson_append_date_time(&d, "$eq", -1, lo);
			bson_append_document_end(f, &d);
			break;
		case L_NE:
			if (!exact_ms)
			{
				filter_all_dates(f, leaf->path);
				return f;
			}
			bson_append_document_begin(f, leaf->path, -1, &d);
			bson_append_date_time(&d, "$ne", -1, lo);
			bson_append_utf8(&d, "$type", -1, "date", -1);
			bson_append_document_end(f, &d);
			break;
		default:
			elog(ERROR, "qleaf_fdw: unexpected timestamp operator %d", leaf->op);
	}
	return or_pass_type(f, leaf->path, "timestamp");
}

/*
 * Append to f the guards of a jsonb ->> path: neither the value nor any
 * field on the way to it is an array (MongoDB would look into arrays,
 * where PostgreSQL's -> finds no field).
 */
static void
append_path_guards(bson_t *f, const char *path)
{
	char	   *prefix = pstrdup(path);
	char	   *dot;
	bson_t		d;
	bson_t		n;

	for (dot = strchr(prefix, '.'); dot != NULL; dot = strchr(dot + 1, '.'))
	{
		*dot = '\0';
		bson_append_document_begin(f, prefix, -1, &d);
		bson_append_document_begin(&d, "$not", -1, &n);
		bson_append_utf8(&n, "$type", -1, "array", -1);
		bson_append_document_end(&d, &n);
		bson_append_document_end(f, &d);
		*dot = '.';
	}
}

/*
 * Append {prefix: {$type: "object"}} to f for every proper prefix of a
 * dotted path: the filters that match a missing field ($ne, $nin, $not)
 * are then true only where the path runs through documents.  MongoDB
 * reads a path through null or a scalar as missing anyway, so this
 * changes nothing there; it keeps evaluators that read such a path
 * differently from matching it.
 */
static void
append_object_guards(bson_t *f, const char *path)
{
	char	   *prefix = pstrdup(path);
	char	   *dot;

	for (dot = strchr(prefix, '.'); dot != NULL; dot = strchr(dot + 1, '.'))
	{
		*dot = '\0';
		filter_type(f, prefix, "object");
		*dot = '.';
	}
}

/*
 * {$or: [filter, {prefix: {$not: {$type: "object"}}}, ...]}: the
 * counterpart of append_object_guards for {path: null}.
 */
static bson_t *
or_not_object(bson_t *filter, const char *path)
{
	char	   *prefix = pstrdup(path);
	char	   *dot;
	List	   *parts = list_make1(filter);
	bson_t	  **arr;
	bson_t	   *f;
	ListCell   *lc;
	int			n = 0;

	for (dot = strchr(prefix, '.'); dot != NULL; dot = strchr(dot + 1, '.'))
	{
		bson_t	   *g = new_filter();
		bson_t		d;
		bson_t		t;

		*dot = '\0';
		bson_append_document_begin(g, prefix, -1, &d);
		bson_append_document_begin(&d, "$not", -1, &t);
		bson_append_utf8(&t, "$type", -1, "object", -1);
		bson_append_document_end(&d, &t);
		bson_append_document_end(g, &d);
		*dot = '.';
		parts = lappend(parts, g);
	}
	if (list_length(parts) == 1)
		return filter;
	arr = palloc(sizeof(bson_t *) * list_length(parts));
	foreach(lc, parts)
		arr[n++] = lfirst(lc);
	f = new_filter();
	filter_combine(f, "$or", arr, n);
	return f;
}

/*
 * {path: any of values}: values is a BSON array of the values a column
 * element may equal.  Numbers as one $eq each under $or (MongoDB's
 * numeric equality across types), strings as $in.  No value: nothing.
 */
static bson_t *
filter_any_of(const char *path, QleafValueKind kind, bson_t *values)
{
	bson_t	   *f = new_filter();
	bson_t		d;
	bson_iter_t it;
	int			n = bson_count_keys(values);

	if (n == 0)
	{
		filter_nothing(f);
		return f;
	}
	if (kind == QLEAF_VK_TEXT)
	{
		bson_append_document_begin(f, path, -1, &d);
		bson_append_array(&d, "$in", -1, values);
		bson_append_document_end(f, &d);
		return f;
	}
	else
	{
		bson_t	  **parts = palloc(sizeof(bson_t *) * n);
		int			i = 0;

		bson_iter_init(&it, values);
		while (bson_iter_next(&it))
		{
			parts[i] = new_filter();
			bson_append_document_begin(parts[i], path, -1, &d);
			bson_append_iter(&d, "$eq", -1, &it);
			bson_append_document_end(parts[i], &d);
			i++;
		}
		if (n == 1)
			return parts[0];
		filter_combine(f, "$or", parts, n);
		return f;
	}
}

/*
 * The filter of = ANY (column), column @> array and column && array on
 * an array column.  MongoDB matches an array field against a value when
 * an element equals it.  None of these is shipped under NOT: with NULL
 * elements, SQL's answer is NULL where MongoDB's negation would be true.
 */
static bson_t *
array_column_filter(const Leaf *leaf, Datum v)
{
	bson_t	   *values = new_filter();
	int			k = 0;
	bool		has_null;

	if (leaf->op == L_HAS)
	{
		if (leaf->kind == QLEAF_VK_TEXT)
			append_text_values(values, &k, v);
		else if (!append_number(values, "0", leaf->valtype, v))
			elog(ERROR, "qleaf_fdw: no BSON form for an array element");
		return filter_any_of(leaf->path, leaf->kind, values);
	}
	if (leaf->op == L_OVERLAP)
	{
		if (!append_array_values(values, leaf, v, &has_null, &k))
			elog(ERROR, "qleaf_fdw: no BSON form for an array element");
		return filter_any_of(leaf->path, leaf->kind, values);
	}

	/* @>: every element of v is in the column; {} and NULL as SQL has them */
	{
		ArrayType  *a = DatumGetArrayTypeP(v);
		int16		elmlen;
		bool		elmbyval;
		char		elmalign;
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		int			i;
		bson_t	  **parts;
		bson_t	   *f = new_filter();

		get_typlenbyvalalign(ARR_ELEMTYPE(a), &elmlen, &elmbyval, &elmalign);
		deconstruct_array(a, ARR_ELEMTYPE(a), elmlen, elmbyval, elmalign,
						  &elems, &nulls, &n);
		if (n == 0)
		{
			filter_type(f, leaf->path, "array");
			return f;
		}
		parts = palloc(sizeof(bson_t *) * n);
		for (i = 0; i < n; i++)
		{
			bson_t	   *one = new_filter();

			if (nulls[i])
			{
				/* a NULL element is contained in no array */
				filter_nothing(f);
				return f;
			}
			k = 0;
			if (leaf->kind == QLEAF_VK_TEXT)
				append_text_values(one, &k, elems[i]);
			else if (!append_number(one, "0", ARR_ELEMTYPE(a), elems[i]))
				elog(ERROR, "qleaf_fdw: no BSON form for an array element");
			parts[i] = filter_any_of(leaf->path, leaf->kind, one);
		}
		if (n == 1)
			return parts[0];
		filter_combine(f, "$and", parts, n);
		return f;
	}
}

/*
 * The filter of a leaf with its value (isnull: SQL NULL).  Returns NULL
 * when this value has no translation (only possible for constants; the
 * planner then keeps the condition local).  *lossy is set when the
 * filter is a prefilter: it matches every document for which the
 * condition is true, and maybe others.
 *
 * Unless the column turns bad values into NULL (on_conversion_error
 * 'null', where every filter is a prefilter), the filter matches exactly
 * the documents whose value converts to the column's type and satisfies
 * the condition, and possibly documents whose value does not convert
 * (arrays matched element by element, strings where <> expects numbers,
 * ...): the scan fetches the columns of shipped conditions
 * (qleaf_add_condition_columns), so those fail with the conversion error
 * PostgreSQL alone would raise.  A document the filter excludes is never
 * converted: a conversion error in a document the condition excludes is
 * not raised.  The deprecated BSON undefined reads as NULL: MongoDB 8.0
 * no longer matches it with {path: null}, nor excludes it with {$ne:
 * null}, so the filters that stand for SQL's NULL test for it by type.
 */
static bson_t *
leaf_filter(const Leaf *leaf, Datum v, bool isnull, bool *lossy)
{
	bson_t	   *f = new_filter();
	bson_t		d;
	bson_t		arr;
	const char *p = leaf->path;

	*lossy = false;

	/*
	 * {path: null} matches null and missing (and undefined before MongoDB
	 * 8.0), and {$ne: null} the rest; both look into arrays, which for a
	 * jsonb column are values of their own.
	 */
	if (leaf->op == L_ISNULL || leaf->op == L_NOTNULL)
	{
		bson_t		n;

		if (leaf->op == L_ISNULL)
		{
			bson_append_null(f, p, -1);
			f = or_not_object(f, p);
			f = or_pass_type(f, p, "undefined");
			if (leaf->kind == QLEAF_VK_JSONB)
			{
				bson_t	   *parts[2];

				parts[0] = f;
				parts[1] = new_filter();
				bson_append_document_begin(parts[1], p, -1, &d);
				bson_append_document_begin(&d, "$not", -1, &n);
				bson_append_utf8(&n, "$type", -1, "array", -1);
				bson_append_document_end(&d, &n);
				bson_append_document_end(parts[1], &d);
				f = new_filter();
				filter_combine(f, "$and", parts, 2);
			}
		}
		else
		{
			append_object_guards(f, p);
			bson_append_document_begin(f, p, -1, &d);
			bson_append_null(&d, "$ne", -1);
			bson_append_document_end(f, &d);
			append_not_undefined(f, p);
			if (leaf->kind == QLEAF_VK_JSONB)
				f = or_pass_type(f, p, "array");
		}
		*lossy = leaf->null_mode;
		return f;
	}

	if (leaf->op == L_TRUE || leaf->op == L_FALSE)
	{
		bson_append_bool(f, p, -1, leaf->op == L_TRUE);
		*lossy = leaf->null_mode;
		return f;
	}

	/* a comparison with NULL is never true, nor is its negation */
	if (isnull)
	{
		filter_nothing(f);
		return f;
	}

	if (leaf->op == L_HAS || leaf->op == L_CONTAINS || leaf->op == L_OVERLAP)
	{
		f = array_column_filter(leaf, v);
		*lossy = leaf->null_mode;
		return f;
	}

	if (leaf->jsonb_text)
	{
		int			k = 0;

		/* only =, IN: strings, not inside arrays */
		append_path_guards(f, p);
		bson_append_document_begin(f, p, -1, &d);
		bson_append_array_begin(&d, "$in", -1, &arr);
		if (leaf->op == L_IN)
		{
			bool		has_null;

			if (!append_array_values(&arr, leaf, v, &has_null, &k))
				return NULL;
		}
		else
		{
			int			len;
			char	   *s = text_value(v, &len);

			bson_append_utf8(&arr, "0", -1, s, len);
		}
		bson_append_array_end(&d, &arr);
		bson_append_utf8(&d, "$type", -1, "string", -1);
		{
			bson_t		n;

			bson_append_document_begin(&d, "$not", -1, &n);
			bson_append_utf8(&n, "$type", -1, "array", -1);
			bson_append_document_end(&d, &n);
		}
		bson_append_document_end(f, &d);
		*lossy = leaf->null_mode;
		return f;
	}

	switch (leaf->kind)
	{
		case QLEAF_VK_INT:
		case QLEAF_VK_NUMERIC:
			if (leaf->op == L_IN || leaf->op == L_NIN)
			{
				bool		has_null;
				int			k = 0;
				bson_t	   *values = new_filter();
				bson_t	  **parts;
				bson_iter_t it;
				int			i = 0;

				/*
				 * One $eq (or $ne) per value, under $or (or $and): the
				 * same as $in (or $nin) with MongoDB's numeric equality
				 * across int, long, double and decimal, in a form every
				 * server evaluates alike.
				 */
				if (!append_array_values(values, leaf, v, &has_null, &k))
					return NULL;
				if (leaf->op == L_NIN && has_null)
				{
					/* x NOT IN (..., NULL) is never true */
					filter_nothing(f);
					break;
				}
				parts = palloc(sizeof(bson_t *) * (k + 1));
				bson_iter_init(&it, values);
				while (bson_iter_next(&it))
				{
					parts[i] = new_filter();
					bson_append_document_begin(parts[i], p, -1, &d);
					bson_append_iter(&d, leaf->op == L_IN ? "$eq" : "$ne", -1, &it);
					if (leaf->op == L_NIN && i == 0)
						bson_append_utf8(&d, "$type", -1, "number", -1);
					bson_append_document_end(parts[i], &d);
					i++;
				}
				if (leaf->op == L_NIN && i == 0)
				{
					parts[i] = new_filter();
					filter_type(parts[i], p, "number");
					i++;
				}
				if (i == 0)
					filter_nothing(f);
				else if (i == 1)
					f = parts[0];
				else
					filter_combine(f, leaf->op == L_IN ? "$or" : "$and", parts, i);
				break;
			}
			bson_append_document_begin(f, p, -1, &d);
			if (!append_number(&d, comparison_op(leaf->op), leaf->valtype, v))
				return NULL;
			if (leaf->op == L_NE)
				bson_append_utf8(&d, "$type", -1, "number", -1);

			/*
			 * NaN is below nothing in PostgreSQL; MongoDB's comparisons
			 * are false for it already, this says so to any evaluator
			 */
			if (leaf->kind == QLEAF_VK_NUMERIC &&
				(leaf->op == L_LT || leaf->op == L_LE))
				bson_append_double(&d, "$gte", -1, -INFINITY);
			bson_append_document_end(f, &d);

			/* numeric NaN is above every number in PostgreSQL */
			if (leaf->kind == QLEAF_VK_NUMERIC &&
				(leaf->op == L_GT || leaf->op == L_GE))
			{
				bson_t	   *parts[2];

				parts[0] = f;
				parts[1] = new_filter();
				filter_nan(parts[1], p);
				f = new_filter();
				filter_combine(f, "$or", parts, 2);
			}
			break;

		case QLEAF_VK_TEXT:
			switch (leaf->op)
			{
				case L_EQ:
				case L_NE:
				case L_IN:
				case L_NIN:
					{
						int			k = 0;
						bool		has_null = false;
						bool		positive = (leaf->op == L_EQ || leaf->op == L_IN);

						if (!positive)
							append_object_guards(f, p);
						bson_append_document_begin(f, p, -1, &d);
						bson_append_array_begin(&d, positive ? "$in" : "$nin",
												-1, &arr);
						if (leaf->op == L_IN || leaf->op == L_NIN)
						{
							if (!append_array_values(&arr, leaf, v, &has_null, &k))
								return NULL;
						}
						else
							append_text_values(&arr, &k, v);

						/*
						 * <> and NOT IN exclude null and missing; values of
						 * other types pass, and fail to convert, as they
						 * would without pushdown
						 */
						if (!positive)
						{
							char		key[16];

							snprintf(key, sizeof(key), "%d", k);
							bson_append_null(&arr, key, -1);
						}
						bson_append_array_end(&d, &arr);
						bson_append_document_end(f, &d);
						if (!positive)
							append_not_undefined(f, p);
						if (leaf->op == L_NIN && has_null)
						{
							f = new_filter();
							filter_nothing(f);
						}
						break;
					}
				case L_LT:
				case L_LE:
				case L_GT:
				case L_GE:
					{
						int			len;
						char	   *s = text_value(v, &len);

						/*
						 * ObjectIds, shown as hex text, are in another
						 * type bracket: they pass, and are rechecked.
						 */
						bson_append_document_begin(f, p, -1, &d);
						bson_append_utf8(&d, comparison_op(leaf->op), -1, s, len);
						bson_append_document_end(f, &d);
						f = or_pass_type(f, p, "objectId");
						*lossy = true;
						break;
					}
				case L_LIKE:
				case L_NLIKE:
				case L_ILIKE:
				case L_NILIKE:
					{
						int			len;
						char	   *s = text_value(v, &len);
						bool		icase = (leaf->op == L_ILIKE || leaf->op == L_NILIKE);
						bool		hex_possible;
						const char *why;
						char	   *re;

						re = qleaf_like_regex(s, len, icase,
											  leaf->op == L_NILIKE,
											  &hex_possible, &why);
						if (re == NULL)
							return NULL;
						if (leaf->op == L_LIKE || leaf->op == L_ILIKE)
						{
							bson_append_document_begin(f, p, -1, &d);
							bson_append_utf8(&d, "$regex", -1, re, -1);
							bson_append_utf8(&d, "$options", -1, icase ? "i" : "", -1);
							bson_append_document_end(f, &d);
							if (hex_possible)
								f = or_pass_type(f, p, "objectId");
						}
						else
						{
							append_object_guards(f, p);
							bson_append_document_begin(f, p, -1, &d);
							bson_append_regex(&d, "$not", -1, re, "");
							bson_append_null(&d, "$ne", -1);
							bson_append_document_end(f, &d);
							append_not_undefined(f, p);
						}
						*lossy = icase || hex_possible;
						break;
					}
				default:
					return NULL;
			}
			break;

		case QLEAF_VK_BOOL:
			if (leaf->op == L_EQ || leaf->op == L_NE)
			{
				bool		b = DatumGetBool(v);

				bson_append_bool(f, p, -1, leaf->op == L_EQ ? b : !b);
				break;
			}
			return NULL;

		case QLEAF_VK_TIMESTAMP:
			if (leaf->op > L_GE)
				return NULL;
			f = timestamp_filter(leaf, DatumGetTimestamp(v));
			*lossy = true;
			break;

		case QLEAF_VK_FLOAT8:
			if (leaf->op > L_GE)
				return NULL;
			f = float8_filter(leaf, DatumGetFloat8(v));
			*lossy = true;
			break;

		default:
			return NULL;
	}
	if (leaf->null_mode)
		*lossy = true;
	return f;
}

/*
 * Whether a leaf whose value is known only at execution is exact, lossy
 * or unsafe, for any value it may get.
 */
static QleafShipKind
leaf_param_class(const Leaf *leaf, const char **reason)
{
	if (leaf->kind == QLEAF_VK_NUMERIC || leaf->valtype == NUMERICOID)
	{
		*reason = "a numeric parameter may have a fraction, which MongoDB compares with doubles differently";
		return QLEAF_SHIP_UNSAFE;
	}
	if (leaf->op >= L_LIKE && leaf->op <= L_NILIKE)
	{
		*reason = "LIKE pattern is not a constant";
		return QLEAF_SHIP_UNSAFE;
	}
	if (leaf->jsonb_text)
	{
		*reason = "the text a jsonb path is compared with is not a constant";
		return QLEAF_SHIP_UNSAFE;
	}
	if (leaf->null_mode)
	{
		*reason = "on_conversion_error 'null': values that become NULL match too";
		return QLEAF_SHIP_LOSSY;
	}
	if (leaf->kind == QLEAF_VK_TIMESTAMP)
	{
		*reason = "BSON timestamps (not dates) match too";
		return QLEAF_SHIP_LOSSY;
	}
	if (leaf->kind == QLEAF_VK_FLOAT8)
	{
		*reason = "double precision: decimals round, NaN orders differently";
		return QLEAF_SHIP_LOSSY;
	}
	if (leaf->kind == QLEAF_VK_TEXT && leaf->op >= L_LT && leaf->op <= L_GE)
	{
		*reason = "ObjectIds (compared as text) match too";
		return QLEAF_SHIP_LOSSY;
	}
	return QLEAF_SHIP_EXACT;
}

/* The reason a constant leaf is lossy, for EXPLAIN. */
static const char *
leaf_lossy_reason(const Leaf *leaf)
{
	if (leaf->null_mode)
		return "on_conversion_error 'null': values that become NULL match too";
	if (leaf->kind == QLEAF_VK_TIMESTAMP)
		return "BSON timestamps (not dates) match too";
	if (leaf->kind == QLEAF_VK_FLOAT8)
		return "double precision: decimals round, NaN orders differently";
	if (leaf->op == L_ILIKE || leaf->op == L_NILIKE)
		return "ILIKE: MongoDB folds case more widely";
	if (leaf->op == L_LIKE || leaf->op == L_NLIKE)
		return "the pattern may match an ObjectId's text: ObjectIds match too";
	return "ObjectIds (compared as text) match too";
}

/*
 * The placeholder of a leaf whose value is the n-th parameter (1-based).
 */
static bson_t *
leaf_placeholder(const Leaf *leaf, int n)
{
	bson_t	   *f = new_filter();
	bson_t		d;

	bson_append_document_begin(f, "$param", -1, &d);
	bson_append_int32(&d, "n", -1, n);
	bson_append_utf8(&d, "path", -1, leaf->path, -1);
	bson_append_utf8(&d, "op", -1, leaf_op_names[leaf->op], -1);
	bson_append_int32(&d, "kind", -1, (int32) leaf->kind);
	bson_append_int64(&d, "type", -1, (int64) leaf->valtype);
	bson_append_bool(&d, "nullMode", -1, leaf->null_mode);
	bson_append_document_end(f, &d);
	return f;
}

/*
 * Resolve expr to a column of the scanned relation or a jsonb path into
 * one: a Var (under a binary-compatible cast), or col->'a'->>'b'.
 */
static bool
column_ref(DeparseCxt *cx, Expr *expr, ColRef *ref)
{
	/* callers may read ref even when this says "not a column" */
	memset(ref, 0, sizeof(*ref));

	while (IsA(expr, RelabelType))
		expr = ((RelabelType *) expr)->arg;

	if (IsA(expr, Var))
	{
		Var		   *var = (Var *) expr;
		bool		null_mode = cx->table_null_mode;
		char	   *colname;
		char	   *field;

		if ((Index) var->varno != cx->baserel->relid || var->varlevelsup != 0 ||
			var->varattno <= 0)
			return false;
		colname = get_attname(cx->reloid, var->varattno, false);
		field = qleaf_get_column_field(cx->reloid, var->varattno, colname,
									   &null_mode);
		ref->name = colname;
		ref->type = var->vartype;
		ref->typmod = var->vartypmod;
		ref->is_root = qleaf_is_root_field(field);
		ref->path = ref->is_root ? "" : field;
		ref->null_mode = null_mode;
		ref->jsonb_text = false;
		ref->is_array = false;
		if (OidIsValid(get_element_type(ref->type)) &&
			(get_element_type(ref->type) == INT2OID ||
			 get_element_type(ref->type) == INT4OID ||
			 get_element_type(ref->type) == INT8OID ||
			 get_element_type(ref->type) == TEXTOID ||
			 get_element_type(ref->type) == VARCHAROID))
		{
			ref->is_array = true;
			ref->kind = qleaf_value_kind(get_element_type(ref->type), -1,
										 &cx->reason);
			return true;
		}
		ref->kind = qleaf_value_kind(ref->type, ref->typmod, &cx->reason);
		if (ref->kind == QLEAF_VK_NONE)
			cx->reason = psprintf("column \"%s\": %s", colname, cx->reason);
		return true;
	}

	if (IsA(expr, OpExpr))
	{
		OpExpr	   *op = (OpExpr *) expr;
		Const	   *key;
		char	   *k;

		if ((op->opfuncid != F_JSONB_OBJECT_FIELD &&
			 op->opfuncid != F_JSONB_OBJECT_FIELD_TEXT) ||
			list_length(op->args) != 2 ||
			!IsA(lsecond(op->args), Const))
			return false;
		key = lsecond_node(Const, op->args);
		if (!column_ref(cx, linitial(op->args), ref))
			return false;
		if (ref->kind != QLEAF_VK_JSONB || ref->jsonb_text)
		{
			ref->kind = QLEAF_VK_NONE;
			cx->reason = "a jsonb path into a column that is not jsonb";
			return true;
		}
		if (key->constisnull)
		{
			ref->kind = QLEAF_VK_NONE;
			cx->reason = "a jsonb path with a NULL key";
			return true;
		}
		k = TextDatumGetCString(key->constvalue);
		if (k[0] == '\0' || k[0] == '$' || strchr(k, '.') != NULL)
		{
			ref->kind = QLEAF_VK_NONE;
			cx->reason = psprintf("jsonb key \"%s\" is no MongoDB field name", k);
			return true;
		}
		if (GetDatabaseEncoding() != PG_UTF8)
			k = pg_server_to_any(k, strlen(k), PG_UTF8);
		ref->path = ref->path[0] == '\0' ? k : psprintf("%s.%s", ref->path, k);
		if (op->opfuncid == F_JSONB_OBJECT_FIELD_TEXT)
		{
			ref->jsonb_text = true;
			ref->type = TEXTOID;
			ref->typmod = -1;
		}
		return true;
	}
	return false;
}

/*
 * Is expr a value the executor can compute once per scan: a constant, a
 * parameter, a stable expression, a column of another relation (the
 * outer side of a parameterized scan)?  Nothing volatile, no column of
 * the scanned relation.
 */
static bool
runtime_value(DeparseCxt *cx, Expr *expr)
{
	Relids		relids;

	if (contain_volatile_functions((Node *) expr) ||
		contain_subplans((Node *) expr) ||
		contain_agg_clause((Node *) expr) ||
		contain_window_function((Node *) expr))
		return false;
	relids = pull_varnos(cx->root, (Node *) expr);
	return !bms_is_member(cx->baserel->relid, relids);
}

/* Is text s what a jsonb ->> could give for a value that is no string? */
static bool
jsonb_text_ambiguous(const char *s, int len)
{
	if (len == 0)
		return false;
	if (s[0] == '{' || s[0] == '[' || s[0] == '-' || (s[0] >= '0' && s[0] <= '9'))
		return true;
	return strcmp(s, "true") == 0 || strcmp(s, "false") == 0 ||
		strcmp(s, "null") == 0;
}

/*
 * The filter of a leaf on column ref with value expression val (NULL for
 * none).
 */
static bson_t *
deparse_leaf(DeparseCxt *cx, ColRef *ref, LeafOp op, Expr *val,
			 Oid valtype)
{
	Leaf		leaf;
	Expr	   *inner = val;
	bool		lossy;
	bson_t	   *f;

	leaf.path = ref->path;
	leaf.kind = ref->jsonb_text ? QLEAF_VK_TEXT : ref->kind;
	leaf.op = op;
	leaf.valtype = valtype;
	leaf.jsonb_text = ref->jsonb_text;
	leaf.null_mode = ref->null_mode;

	if (ref->is_root && !ref->jsonb_text)
	{
		cx->reason = psprintf("column \"%s\" is the whole document", ref->name);
		return NULL;
	}
	if (ref->is_array)
	{
		if (op == L_ISNULL || op == L_NOTNULL)
		{
			/* like jsonb: [null] is an array, not NULL */
			leaf.kind = QLEAF_VK_JSONB;
			if (strchr(ref->path, '.') != NULL)
			{
				cx->reason = psprintf("column \"%s\": IS NULL of an array at a dotted path", ref->name);
				return NULL;
			}
		}
		else if (op != L_HAS && op != L_CONTAINS && op != L_OVERLAP)
		{
			cx->reason = psprintf("array column \"%s\": only = ANY, @>, && and IS NULL are shipped",
								  ref->name);
			return NULL;
		}
	}
	else if (op == L_HAS || op == L_CONTAINS || op == L_OVERLAP)
	{
		cx->reason = "not an array column";
		return NULL;
	}
	if ((op == L_ISNULL && ref->null_mode))
	{
		cx->reason = psprintf("column \"%s\" has on_conversion_error 'null': values that do not convert are NULL too",
							  ref->name);
		return NULL;
	}
	if (ref->jsonb_text && op != L_EQ && op != L_IN)
	{
		cx->reason = "only = and IN compare jsonb ->> paths";
		return NULL;
	}
	if (ref->kind == QLEAF_VK_JSONB && !ref->jsonb_text &&
		(strchr(ref->path, '.') != NULL ||
		 (op != L_ISNULL && op != L_NOTNULL)))
	{
		cx->reason = psprintf("column \"%s\": jsonb is compared locally", ref->name);
		return NULL;
	}

	if (val == NULL)
	{
		f = leaf_filter(&leaf, (Datum) 0, true, &lossy);
		if (lossy)
		{
			cx->lossy = true;
			cx->reason = leaf_lossy_reason(&leaf);
		}
		return f;
	}

	while (IsA(inner, RelabelType))
		inner = ((RelabelType *) inner)->arg;

	if (IsA(inner, Const))
	{
		Const	   *c = (Const *) inner;

		if (ref->jsonb_text && !c->constisnull)
		{
			int			len;
			char	   *s;

			if (op == L_IN)
			{
				ArrayType  *a = DatumGetArrayTypeP(c->constvalue);
				Datum	   *elems;
				bool	   *nulls;
				int			n;
				int			i;

				deconstruct_array(a, TEXTOID, -1, false, TYPALIGN_INT,
								  &elems, &nulls, &n);
				for (i = 0; i < n; i++)
				{
					if (nulls[i])
						continue;
					s = text_value(elems[i], &len);
					if (jsonb_text_ambiguous(s, len))
					{
						cx->reason = psprintf("\"%s\" may be the text of a jsonb number, boolean, object or array", s);
						return NULL;
					}
				}
			}
			else
			{
				s = text_value(c->constvalue, &len);
				if (jsonb_text_ambiguous(s, len))
				{
					cx->reason = psprintf("\"%s\" may be the text of a jsonb number, boolean, object or array", s);
					return NULL;
				}
			}
		}
		f = leaf_filter(&leaf, c->constvalue, c->constisnull, &lossy);
		if (f == NULL)
		{
			if (cx->reason == NULL || leaf.kind != QLEAF_VK_TEXT)
				cx->reason = psprintf("no exact MongoDB form for this %s value",
									  format_type_be(c->consttype));
			if (leaf.kind == QLEAF_VK_NUMERIC || valtype == NUMERICOID)
				cx->reason = "a numeric constant with a fraction or beyond bigint: MongoDB compares it with doubles differently";
			if (op >= L_LIKE && op <= L_NILIKE && !c->constisnull)
			{
				int			len;
				char	   *s = text_value(c->constvalue, &len);
				bool		hex;
				const char *why = NULL;

				(void) qleaf_like_regex(s, len, op == L_ILIKE || op == L_NILIKE,
										false, &hex, &why);
				if (why != NULL)
					cx->reason = why;
			}
			return NULL;
		}
		if (lossy)
		{
			cx->lossy = true;
			cx->reason = leaf_lossy_reason(&leaf);
		}
		return f;
	}

	if (!runtime_value(cx, val))
	{
		cx->reason = "the value is not known before the scan (volatile, or reads the scanned table)";
		return NULL;
	}
	switch (leaf_param_class(&leaf, &cx->reason))
	{
		case QLEAF_SHIP_UNSAFE:
			return NULL;
		case QLEAF_SHIP_LOSSY:
			cx->lossy = true;
			break;
		case QLEAF_SHIP_EXACT:
			break;
	}
	{
		ListCell   *lc;
		int			n = 0;

		foreach(lc, cx->params)
		{
			if (equal(lfirst(lc), val))
				break;
			n++;
		}
		if (lc == NULL)
			cx->params = lappend(cx->params, val);
		return leaf_placeholder(&leaf, n + 1);
	}
}

/* A jsonb scalar as the BSON value it matches, false if it has none. */
static bool
append_jsonb_scalar(bson_t *b, const char *key, JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			{
				char	   *s = pnstrdup(v->val.string.val, v->val.string.len);

				s = pg_server_to_any(s, strlen(s), PG_UTF8);
				bson_append_utf8(b, key, -1, s, -1);
				return true;
			}
		case jbvBool:
			bson_append_bool(b, key, -1, v->val.boolean);
			return true;
		case jbvNull:
			bson_append_null(b, key, -1);
			return true;
		case jbvNumeric:
			{
				int64		n;

				/* fractions: a double shows in jsonb as its shortest decimal */
				if (!numeric_integral(v->val.numeric, &n))
					return false;
				bson_append_int64(b, key, -1, n);
				return true;
			}
		default:
			return false;
	}
}

/*
 * Append to *parts one filter per leaf of the jsonb object jc, a value
 * PostgreSQL's @> looks for under path prefix: {"prefix.key": scalar},
 * and for an array of scalars, one such filter per element.  MongoDB
 * matches more (it looks into arrays on the way and at the end, and
 * {path: null} matches a missing field), so the condition is rechecked.
 * Returns false for what has no such translation: fractions, arrays of
 * containers, empty objects or arrays, keys MongoDB reads as operators or
 * paths.
 */
static bool
jsonb_contains_parts(DeparseCxt *cx, const char *prefix, JsonbContainer *jc,
					 List **parts)
{
	JsonbIterator *it = JsonbIteratorInit(jc);
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *path = NULL;
	int			n = 0;

	tok = JsonbIteratorNext(&it, &v, true);
	if (tok != WJB_BEGIN_OBJECT)
	{
		cx->reason = "jsonb containment of something other than an object";
		return false;
	}
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_END_OBJECT &&
		   tok != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			char	   *key = pnstrdup(v.val.string.val, v.val.string.len);

			if (key[0] == '\0' || key[0] == '$' || strchr(key, '.') != NULL)
			{
				cx->reason = psprintf("jsonb key \"%s\" is no MongoDB field name", key);
				return false;
			}
			key = pg_server_to_any(key, strlen(key), PG_UTF8);
			path = prefix[0] == '\0' ? pstrdup(key) : psprintf("%s.%s", prefix, key);
			continue;
		}
		if (tok != WJB_VALUE)
			return false;
		n++;
		if (v.type == jbvBinary)
		{
			JsonbContainer *inner = v.val.binary.data;

			if (JsonContainerIsObject(inner))
			{
				if (!jsonb_contains_parts(cx, path, inner, parts))
					return false;
				continue;
			}
			else
			{
				JsonbIterator *ait = JsonbIteratorInit(inner);
				JsonbValue	e;
				JsonbIteratorToken atok;
				int			elems = 0;

				while ((atok = JsonbIteratorNext(&ait, &e, true)) != WJB_DONE)
				{
					bson_t	   *f;

					if (atok != WJB_ELEM)
						continue;
					f = new_filter();
					if (!append_jsonb_scalar(f, path, &e) || e.type == jbvNull)
					{
						cx->reason = "jsonb containment of an array holding containers, nulls or fractions";
						return false;
					}
					*parts = lappend(*parts, f);
					elems++;
				}
				if (elems == 0)
				{
					cx->reason = "jsonb containment of an empty array";
					return false;
				}
				continue;
			}
		}
		{
			bson_t	   *f = new_filter();

			if (!append_jsonb_scalar(f, path, &v))
			{
				cx->reason = "jsonb containment of a number with a fraction";
				return false;
			}
			*parts = lappend(*parts, f);
		}
	}
	if (n == 0)
	{
		cx->reason = "jsonb containment of an empty object";
		return false;
	}
	return true;
}

/* jsonb column (or path) @> constant object */
static bson_t *
deparse_jsonb_contains(DeparseCxt *cx, OpExpr *op, bool negate)
{
	ColRef		ref;
	Expr	   *right = lsecond(op->args);
	Jsonb	   *jb;
	List	   *parts = NIL;
	bson_t	  **arr;
	bson_t	   *f;
	ListCell   *lc;
	int			n = 0;

	while (IsA(right, RelabelType))
		right = ((RelabelType *) right)->arg;
	if (!column_ref(cx, linitial(op->args), &ref) || ref.jsonb_text ||
		ref.kind != QLEAF_VK_JSONB || !IsA(right, Const))
	{
		cx->reason = "@> is shipped for a jsonb column and a constant";
		return NULL;
	}
	if (negate)
	{
		cx->reason = "NOT over jsonb @> (MongoDB's match is a superset)";
		return NULL;
	}
	if (((Const *) right)->constisnull)
	{
		f = new_filter();
		filter_nothing(f);
		return f;
	}
	jb = DatumGetJsonbP(((Const *) right)->constvalue);
	if (!jsonb_contains_parts(cx, ref.path, &jb->root, &parts))
		return NULL;
	cx->lossy = true;
	cx->reason = "jsonb containment: MongoDB also looks into arrays";
	if (ref.null_mode)
		cx->reason = "on_conversion_error 'null': values that become NULL match too";
	if (list_length(parts) == 1)
		return linitial(parts);
	arr = palloc(sizeof(bson_t *) * list_length(parts));
	foreach(lc, parts)
		arr[n++] = lfirst(lc);
	f = new_filter();
	filter_combine(f, "$and", arr, n);
	return f;
}

static LeafOp
strategy_op(int strategy)
{
	switch (strategy)
	{
		case BTLessStrategyNumber:
			return L_LT;
		case BTLessEqualStrategyNumber:
			return L_LE;
		case BTEqualStrategyNumber:
			return L_EQ;
		case BTGreaterEqualStrategyNumber:
			return L_GE;
		case BTGreaterStrategyNumber:
			return L_GT;
		default:
			return L_NE;
	}
}

static bson_t *
deparse_opexpr(DeparseCxt *cx, OpExpr *op, bool negate)
{
	Expr	   *left;
	Expr	   *right;
	ColRef		ref;
	ColRef		other;			/* a column on the value side? */
	Oid			opno = op->opno;
	bool		like_neg;
	bool		icase;
	int			strategy;
	LeafOp		lop;
	Oid			coltype;

	if (list_length(op->args) != 2)
	{
		cx->reason = "not a comparison of a column with a value";
		return NULL;
	}
	left = linitial(op->args);
	right = lsecond(op->args);

	if (qleaf_like_function(op->opfuncid, &like_neg, &icase))
	{
		if (!column_ref(cx, left, &ref))
		{
			cx->reason = "LIKE of something other than a column";
			return NULL;
		}
		if (ref.kind != QLEAF_VK_TEXT || ref.jsonb_text)
		{
			if (ref.kind != QLEAF_VK_NONE)
				cx->reason = "LIKE on a column that is not text";
			return NULL;
		}
		if (!qleaf_collation_ok(op->inputcollid, false, &cx->reason))
			return NULL;

		/*
		 * Outside "C" and "POSIX", ILIKE lower-cases with the collation's
		 * rules, which may change a string's length (ICU folds U+0130 to
		 * two code points): no regex bounds it from either side.
		 */
		if (icase && OidIsValid(op->inputcollid) &&
			!lc_collate_is_c(op->inputcollid))
		{
			cx->reason = psprintf("ILIKE under collation \"%s\" folds case unlike MongoDB",
								  get_collation_name(op->inputcollid));
			return NULL;
		}
		lop = icase ? (like_neg ? L_NILIKE : L_ILIKE) : (like_neg ? L_NLIKE : L_LIKE);
		if (negate)
			lop = leaf_op_negator[lop];
		return deparse_leaf(cx, &ref, lop, right, TEXTOID);
	}

	if (op->opfuncid == F_JSONB_CONTAINS)
		return deparse_jsonb_contains(cx, op, negate);

	if (op->opfuncid == F_ARRAYCONTAINS || op->opfuncid == F_ARRAYOVERLAP)
	{
		Oid			elemtype = get_element_type(exprType((Node *) right));

		if (!column_ref(cx, left, &ref) || !ref.is_array ||
			ref.kind == QLEAF_VK_NONE || !OidIsValid(elemtype) ||
			column_ref(cx, right, &other) ||
			!qleaf_value_type_ok(ref.kind, get_element_type(ref.type), elemtype))
		{
			cx->reason = "@> and && are shipped for an array column and an array value";
			return NULL;
		}
		if (negate)
		{
			cx->reason = "NOT over @> or && on an array column";
			return NULL;
		}
		if (ref.kind == QLEAF_VK_TEXT &&
			!qleaf_collation_ok(op->inputcollid, false, &cx->reason))
			return NULL;
		return deparse_leaf(cx, &ref,
							op->opfuncid == F_ARRAYCONTAINS ? L_CONTAINS : L_OVERLAP,
							right, elemtype);
	}

	if (!column_ref(cx, left, &ref))
	{
		Expr	   *tmp = left;

		left = right;
		right = tmp;
		opno = get_commutator(opno);
		if (!OidIsValid(opno) || !column_ref(cx, left, &ref))
		{
			if (cx->reason == NULL)
				cx->reason = "not a comparison of a column with a value";
			return NULL;
		}
	}
	if (column_ref(cx, right, &other))
	{
		cx->reason = "compares two columns";
		return NULL;
	}
	if (ref.kind == QLEAF_VK_NONE)
		return NULL;

	coltype = ref.jsonb_text ? TEXTOID : ref.type;
	strategy = qleaf_comparison_strategy(opno,
										 ref.jsonb_text ? QLEAF_VK_TEXT : ref.kind,
										 coltype, exprType((Node *) right));
	if (strategy == 0)
	{
		cx->reason = psprintf("operator %s on %s and %s is not shipped",
							  get_opname(op->opno),
							  format_type_be(exprType((Node *) linitial(op->args))),
							  format_type_be(exprType((Node *) lsecond(op->args))));
		return NULL;
	}
	lop = strategy_op(strategy);
	if ((ref.kind == QLEAF_VK_TEXT || ref.jsonb_text) &&
		!qleaf_collation_ok(op->inputcollid, lop != L_EQ && lop != L_NE,
							&cx->reason))
		return NULL;
	if (negate)
		lop = leaf_op_negator[lop];
	return deparse_leaf(cx, &ref, lop, right, exprType((Node *) right));
}

static bson_t *
deparse_saop(DeparseCxt *cx, ScalarArrayOpExpr *saop, bool negate)
{
	ColRef		ref;
	Expr	   *left = linitial(saop->args);
	Expr	   *right = lsecond(saop->args);
	Oid			elemtype;
	int			strategy;
	LeafOp		lop;

	if (!column_ref(cx, left, &ref))
	{
		/* value = ANY (array column) */
		if (column_ref(cx, right, &ref) && ref.is_array &&
			ref.kind != QLEAF_VK_NONE && saop->useOr &&
			qleaf_comparison_strategy(saop->opno, ref.kind,
									  get_element_type(ref.type),
									  exprType((Node *) left)) == BTEqualStrategyNumber)
		{
			if (negate)
			{
				cx->reason = "NOT (x = ANY (array column)) is NULL, not true, when the array holds NULL";
				return NULL;
			}
			if (ref.kind == QLEAF_VK_TEXT &&
				!qleaf_collation_ok(saop->inputcollid, false, &cx->reason))
				return NULL;
			return deparse_leaf(cx, &ref, L_HAS, left, exprType((Node *) left));
		}
		if (ref.is_array)
			cx->reason = "of ANY/ALL over an array column only x = ANY (column) is shipped";
		else if (cx->reason == NULL)
			cx->reason = "ANY/ALL of something other than a column";
		return NULL;
	}
	if (ref.kind == QLEAF_VK_NONE)
		return NULL;
	if (ref.is_array)
	{
		cx->reason = "ANY/ALL of an array column";
		return NULL;
	}
	if (ref.kind != QLEAF_VK_INT && ref.kind != QLEAF_VK_NUMERIC &&
		ref.kind != QLEAF_VK_TEXT && !ref.jsonb_text)
	{
		cx->reason = psprintf("IN lists of %s are not shipped", format_type_be(ref.type));
		return NULL;
	}
	elemtype = get_element_type(exprType((Node *) right));
	if (!OidIsValid(elemtype))
	{
		cx->reason = "the right side of ANY/ALL is not an array";
		return NULL;
	}
	strategy = qleaf_comparison_strategy(saop->opno,
										 ref.jsonb_text ? QLEAF_VK_TEXT : ref.kind,
										 ref.jsonb_text ? TEXTOID : ref.type,
										 elemtype);
	if (strategy == BTEqualStrategyNumber && saop->useOr)
		lop = L_IN;
	else if (strategy == ROWCOMPARE_NE && !saop->useOr)
		lop = L_NIN;
	else
	{
		cx->reason = "only = ANY (IN) and <> ALL (NOT IN) are shipped";
		return NULL;
	}
	if ((ref.kind == QLEAF_VK_TEXT || ref.jsonb_text) &&
		!qleaf_collation_ok(saop->inputcollid, false, &cx->reason))
		return NULL;
	if (negate)
		lop = leaf_op_negator[lop];
	if (ref.jsonb_text && lop != L_IN)
	{
		cx->reason = "only = and IN compare jsonb ->> paths";
		return NULL;
	}
	return deparse_leaf(cx, &ref, lop, right, elemtype);
}

/*
 * The filter of expr, or of NOT expr when negate: it matches the
 * documents where the condition is true (false when negate), never where
 * it is NULL.  Returns NULL, with cx->reason set, when a part of expr has
 * no translation.
 */
static bson_t *
deparse_cond(DeparseCxt *cx, Expr *expr, bool negate)
{
	check_stack_depth();

	switch (nodeTag(expr))
	{
		case T_BoolExpr:
			{
				BoolExpr   *b = (BoolExpr *) expr;
				bson_t	  **parts;
				bson_t	   *f;
				ListCell   *lc;
				int			n = 0;
				bool		and;

				if (b->boolop == NOT_EXPR)
					return deparse_cond(cx, linitial(b->args), !negate);
				parts = palloc(sizeof(bson_t *) * list_length(b->args));
				foreach(lc, b->args)
				{
					parts[n] = deparse_cond(cx, lfirst(lc), negate);
					if (parts[n] == NULL)
						return NULL;
					n++;
				}
				and = (b->boolop == AND_EXPR) != negate;
				f = new_filter();
				filter_combine(f, and ? "$and" : "$or", parts, n);
				return f;
			}
		case T_OpExpr:
			return deparse_opexpr(cx, (OpExpr *) expr, negate);
		case T_ScalarArrayOpExpr:
			return deparse_saop(cx, (ScalarArrayOpExpr *) expr, negate);
		case T_NullTest:
			{
				NullTest   *nt = (NullTest *) expr;
				ColRef		ref;
				bool		isnull = (nt->nulltesttype == IS_NULL) != negate;

				if (nt->argisrow || !column_ref(cx, nt->arg, &ref))
				{
					cx->reason = "IS NULL of something other than a column";
					return NULL;
				}
				if (ref.jsonb_text)
				{
					cx->reason = "IS NULL of a jsonb path";
					return NULL;
				}
				if (ref.kind == QLEAF_VK_NONE)
					return NULL;
				return deparse_leaf(cx, &ref, isnull ? L_ISNULL : L_NOTNULL,
									NULL, InvalidOid);
			}
		case T_Var:
		case T_RelabelType:
			{
				ColRef		ref;

				if (!column_ref(cx, expr, &ref) || ref.kind != QLEAF_VK_BOOL)
				{
					if (cx->reason == NULL)
						cx->reason = "not a boolean column";
					return NULL;
				}
				return deparse_leaf(cx, &ref, negate ? L_FALSE : L_TRUE,
									NULL, InvalidOid);
			}
		default:
			cx->reason = psprintf("no pushdown for this kind of expression (%s)",
								  IsA(expr, FuncExpr) ? "function call" :
								  IsA(expr, BooleanTest) ? "IS TRUE/FALSE" :
								  IsA(expr, SubPlan) ? "subquery" :
								  "node");
			return NULL;
	}
}

static void
init_cxt(DeparseCxt *cx, PlannerInfo *root, RelOptInfo *baserel)
{
	QleafRelInfo *fpinfo = (QleafRelInfo *) baserel->fdw_private;
	RangeTblEntry *rte = planner_rt_fetch(baserel->relid, root);

	memset(cx, 0, sizeof(DeparseCxt));
	cx->root = root;
	cx->baserel = baserel;
	cx->reloid = rte->relid;
	cx->table_null_mode = fpinfo != NULL ? fpinfo->opts.null_on_error : false;
}

/*
 * Can MongoDB evaluate expr, and how: exactly, as a prefilter that
 * PostgreSQL rechecks (lossy), or not at all (unsafe).  *reason says why
 * a condition is not exact.  With qleaf_fdw.enable_pushdown off nothing
 * is shipped.
 */
QleafShipKind
qleaf_classify_expr(PlannerInfo *root, RelOptInfo *baserel, Expr *expr,
					const char **reason)
{
	DeparseCxt	cx;
	MemoryContext cxt;
	MemoryContext oldcxt;
	bson_t	   *f;
	QleafShipKind result;

	*reason = NULL;
	if (!qleaf_enable_pushdown)
	{
		*reason = "qleaf_fdw.enable_pushdown is off";
		return QLEAF_SHIP_UNSAFE;
	}

	/* the trial translation is thrown away */
	cxt = AllocSetContextCreate(CurrentMemoryContext, "qleaf_fdw deparse",
								ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);
	init_cxt(&cx, root, baserel);
	f = deparse_cond(&cx, expr, false);
	MemoryContextSwitchTo(oldcxt);

	if (f == NULL)
		result = QLEAF_SHIP_UNSAFE;
	else if (cx.lossy)
		result = QLEAF_SHIP_LOSSY;
	else
		result = QLEAF_SHIP_EXACT;
	if (result != QLEAF_SHIP_EXACT)
	{
		if (cx.reason == NULL)
			cx.reason = "no translation";
		*reason = pstrdup(result == QLEAF_SHIP_LOSSY ?
						  psprintf("rechecked: %s", cx.reason) : cx.reason);
	}
	MemoryContextDelete(cxt);
	return result;
}

/*
 * Put a scan clause where qleaf_classify_expr says it belongs: an exact
 * condition is only shipped (remote_conds, remote_exprs), an unsafe one
 * only checked by PostgreSQL (local_exprs, with its reason in
 * local_reasons for EXPLAIN VERBOSE), a lossy one in both.
 */
void
qleaf_place_clause(PlannerInfo *root, RelOptInfo *baserel, RestrictInfo *ri,
				   List **remote_conds, List **remote_exprs,
				   List **local_exprs, List **local_reasons)
{
	const char *reason;
	QleafShipKind kind = qleaf_classify_expr(root, baserel, ri->clause,
											 &reason);

	if (kind != QLEAF_SHIP_UNSAFE)
	{
		*remote_conds = lappend(*remote_conds, ri);
		*remote_exprs = lappend(*remote_exprs, ri->clause);
	}
	if (kind != QLEAF_SHIP_EXACT)
	{
		*local_exprs = lappend(*local_exprs, ri->clause);
		*local_reasons = lappend(*local_reasons, makeString(pstrdup(reason)));
	}
}

/*
 * Split the restriction clauses of a foreign base relation into those
 * the pipeline evaluates (remote_conds) and those checked locally
 * (local_conds).  A lossy condition is in both.
 */
void
qleaf_classify_conditions(PlannerInfo *root, RelOptInfo *baserel,
						  List *input_conds,
						  List **remote_conds, List **local_conds)
{
	ListCell   *lc;

	*remote_conds = NIL;
	*local_conds = NIL;

	foreach(lc, input_conds)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
		const char *reason;
		QleafShipKind kind = qleaf_classify_expr(root, baserel, ri->clause,
												 &reason);

		if (kind != QLEAF_SHIP_UNSAFE)
			*remote_conds = lappend(*remote_conds, ri);
		if (kind != QLEAF_SHIP_EXACT)
			*local_conds = lappend(*local_conds, ri);
	}
}

/*
 * Can MongoDB evaluate expr exactly or as a prefilter?
 */
bool
qleaf_is_foreign_expr(PlannerInfo *root, RelOptInfo *baserel, Expr *expr)
{
	const char *reason;

	return qleaf_classify_expr(root, baserel, expr, &reason) !=
		QLEAF_SHIP_UNSAFE;
}

/*
 * Append {$match: ...} for remote_conds under key; the expressions whose
 * values the executor supplies are appended to *params.
 */
static void
append_match(PlannerInfo *root, RelOptInfo *baserel, bson_t *stages,
			 const char *key, List *remote_conds, List **params)
{
	DeparseCxt	cx;
	bson_t	  **parts;
	int			n = 0;
	ListCell   *lc;
	bson_t		stage;

	init_cxt(&cx, root, baserel);
	cx.params = *params;
	parts = palloc(sizeof(bson_t *) * list_length(remote_conds));
	foreach(lc, remote_conds)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);

		cx.reason = NULL;
		parts[n] = deparse_cond(&cx, ri->clause, false);
		if (parts[n] == NULL)
			elog(ERROR, "qleaf_fdw: condition classified as shippable has no translation: %s",
				 cx.reason ? cx.reason : "?");
		n++;
	}
	bson_append_document_begin(stages, key, -1, &stage);
	if (n == 1)
		bson_append_document(&stage, "$match", -1, parts[0]);
	else
	{
		bson_t		match;

		bson_append_document_begin(&stage, "$match", -1, &match);
		filter_combine(&match, "$and", parts, n);
		bson_append_document_end(&stage, &match);
	}
	bson_append_document_end(stages, &stage);
	*params = cx.params;
}

/*
 * Append {$match: ...} for remote_conds of baserel to stages (a pipeline
 * or sub-pipeline being built) under key.  The expressions whose values
 * the executor supplies are added to *params, whose placeholders number
 * on from those already there: several stages may share one fdw_exprs.
 */
void
qleaf_append_match_stage(PlannerInfo *root, RelOptInfo *baserel,
						 bson_t *stages, const char *key, List *remote_conds,
						 List **params)
{
	append_match(root, baserel, stages, key, remote_conds, params);
}

/*
 * The $limit stage of a LIMIT count OFFSET offset (both int8) whose
 * values are known now, with the errors PostgreSQL's Limit node raises
 * (OFFSET checked first).  MongoDB returns count + offset documents; the
 * scan skips the first offset itself, converting them as a Limit node
 * would.  LIMIT NULL is no limit (a $skip of 0 that does nothing), LIMIT
 * 0 no document (MongoDB's $limit must be positive).
 */
bson_t *
qleaf_limit_stage(Datum count, bool count_null, Datum offset,
				  bool offset_null)
{
	bson_t	   *f = new_filter();
	int64		c = count_null ? -1 : DatumGetInt64(count);
	int64		o = offset_null ? 0 : DatumGetInt64(offset);

	if (o < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_ROW_COUNT_IN_RESULT_OFFSET_CLAUSE),
				 errmsg("OFFSET must not be negative")));
	if (!count_null && c < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_ROW_COUNT_IN_LIMIT_CLAUSE),
				 errmsg("LIMIT must not be negative")));
	if (count_null)
		bson_append_int64(f, "$skip", -1, 0);
	else if (c == 0)
	{
		bson_t		m;

		bson_append_document_begin(f, "$match", -1, &m);
		filter_nothing(&m);
		bson_append_document_end(f, &m);
	}
	else
		bson_append_int64(f, "$limit", -1,
						  c > PG_INT64_MAX - o ? PG_INT64_MAX : c + o);
	return f;
}

/*
 * Copy the BSON at iter (a document or array) into dst, replacing every
 * placeholder document with its leaf's filter for the parameter values.
 */
static void
fill_placeholders(bson_iter_t *iter, bson_t *dst, Datum *values,
				  bool *nulls, int nparams)
{
	while (bson_iter_next(iter))
	{
		const char *key = bson_iter_key(iter);
		bson_iter_t child;

		if (BSON_ITER_HOLDS_DOCUMENT(iter))
		{
			bson_iter_t first;

			bson_iter_recurse(iter, &first);
			if (bson_iter_next(&first) &&
				strcmp(bson_iter_key(&first), "$param") == 0)
			{
				Leaf		leaf;
				bson_iter_t spec;
				int			n = 0;
				bool		lossy;
				bson_t	   *f;
				const char *stage = NULL;
				int			m = 0;

				memset(&leaf, 0, sizeof(leaf));
				bson_iter_recurse(&first, &spec);
				while (bson_iter_next(&spec))
				{
					const char *k = bson_iter_key(&spec);

					if (strcmp(k, "n") == 0)
						n = bson_iter_int32(&spec);
					else if (strcmp(k, "path") == 0)
						leaf.path = bson_iter_utf8(&spec, NULL);
					else if (strcmp(k, "op") == 0)
					{
						const char *name = bson_iter_utf8(&spec, NULL);
						int			o;

						for (o = 0; o < L_NUM_OPS; o++)
							if (strcmp(name, leaf_op_names[o]) == 0)
								leaf.op = (LeafOp) o;
					}
					else if (strcmp(k, "kind") == 0)
						leaf.kind = (QleafValueKind) bson_iter_int32(&spec);
					else if (strcmp(k, "type") == 0)
						leaf.valtype = (Oid) bson_iter_int64(&spec);
					else if (strcmp(k, "nullMode") == 0)
						leaf.null_mode = bson_iter_bool(&spec);
					else if (strcmp(k, "stage") == 0)
						stage = bson_iter_utf8(&spec, NULL);
					else if (strcmp(k, "m") == 0)
						m = bson_iter_int32(&spec);
				}
				if (stage != NULL && n >= 1 && n <= nparams &&
					m >= 1 && m <= nparams)
				{
					f = qleaf_limit_stage(values[n - 1], nulls[n - 1],
										  values[m - 1], nulls[m - 1]);
					bson_append_document(dst, key, -1, f);
					continue;
				}
				if (n < 1 || n > nparams || leaf.path == NULL)
					elog(ERROR, "qleaf_fdw: invalid parameter placeholder in pipeline");
				f = leaf_filter(&leaf, values[n - 1], nulls[n - 1], &lossy);
				if (f == NULL)
					elog(ERROR, "qleaf_fdw: parameter %d has no translation", n);
				bson_append_document(dst, key, -1, f);
				continue;
			}
			{
				bson_t		sub;

				bson_append_document_begin(dst, key, -1, &sub);
				bson_iter_recurse(iter, &child);
				fill_placeholders(&child, &sub, values, nulls, nparams);
				bson_append_document_end(dst, &sub);
			}
		}
		else if (BSON_ITER_HOLDS_ARRAY(iter))
		{
			bson_t		sub;

			bson_append_array_begin(dst, key, -1, &sub);
			bson_iter_recurse(iter, &child);
			fill_placeholders(&child, &sub, values, nulls, nparams);
			bson_append_array_end(dst, &sub);
		}
		else
			bson_append_iter(dst, key, -1, iter);
	}
}

/*
 * The pipeline to run: the plan's pipeline with its placeholders
 * replaced by the filters for the current values of the parameter
 * expressions (param_states, from fdw_exprs).  Called at the start of a
 * scan and at every rescan.
 */
bytea *
qleaf_fill_pipeline(const bytea *pipeline, List *param_states,
					ExprContext *econtext)
{
	int			nparams = list_length(param_states);
	Datum	   *values = palloc(sizeof(Datum) * Max(nparams, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(nparams, 1));
	MemoryContext oldcxt;
	MemoryContext cxt;
	ListCell   *lc;
	bson_t		tmpl;
	bson_t	   *out;
	bson_iter_t iter;
	bytea	   *result;
	int			i = 0;

	oldcxt = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
	foreach(lc, param_states)
	{
		ExprState  *es = (ExprState *) lfirst(lc);

		values[i] = ExecEvalExpr(es, econtext, &nulls[i]);
		i++;
	}
	MemoryContextSwitchTo(oldcxt);

	cxt = AllocSetContextCreate(CurrentMemoryContext, "qleaf_fdw parameters",
								ALLOCSET_SMALL_SIZES);
	MemoryContextSwitchTo(cxt);
	if (!bson_init_static(&tmpl, (const uint8_t *) VARDATA_ANY(pipeline),
						  VARSIZE_ANY_EXHDR(pipeline)) ||
		!bson_iter_init(&iter, &tmpl))
		elog(ERROR, "qleaf_fdw: invalid pipeline in plan");
	out = new_filter();
	fill_placeholders(&iter, out, values, nulls, nparams);
	MemoryContextSwitchTo(oldcxt);

	/*
	 * The values stay in the per-tuple memory, which the executor resets;
	 * the caller's context may be that very memory, so it is not reset
	 * here.
	 */
	result = qleaf_bson_to_bytea(out);
	MemoryContextDelete(cxt);
	return result;
}
/*
 * Check that a column can hold what its field path maps to: the whole
 * document only goes to a json or jsonb column.
 */
void
qleaf_check_column_mapping(Relation rel, AttrNumber attnum, const char *field)
{
	Form_pg_attribute attr = TupleDescAttr(RelationGetDescr(rel), attnum - 1);
	Oid			basetype;

	if (!qleaf_is_root_field(field))
		return;
	basetype = getBaseType(attr->atttypid);
	if (basetype != JSONBOID && basetype != JSONOID)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("column \"%s\" of foreign table \"%s\" maps the whole document and must be of type json or jsonb",
						NameStr(attr->attname), RelationGetRelationName(rel)),
				 errdetail("Its option \"field\" is \"%s\" but its type is %s.",
						   QLEAF_ROOT_FIELD, format_type_be(attr->atttypid))));
}

/*
 * The columns to fetch: those in attrs_used (attribute numbers offset by
 * FirstLowInvalidHeapAttributeNumber, as pull_varattnos makes them), or
 * every column for a whole-row reference or when all_columns is set.
 * System columns are never fetched.
 */
static List *
fetched_columns(Relation rel, Bitmapset *attrs_used, bool all_columns)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	List	   *columns = NIL;
	int			i;

	if (bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs_used))
		all_columns = true;

	for (i = 1; i <= tupdesc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(tupdesc, i - 1);
		FetchedColumn *col;
		bool		ignored = false;

		if (attr->attisdropped)
			continue;
		if (!all_columns &&
			!bms_is_member(i - FirstLowInvalidHeapAttributeNumber, attrs_used))
			continue;

		col = palloc(sizeof(FetchedColumn));
		col->attnum = i;
		col->field = qleaf_get_column_field(RelationGetRelid(rel), i,
											NameStr(attr->attname), &ignored);
		qleaf_check_column_mapping(rel, i, col->field);
		columns = lappend(columns, col);
	}
	return columns;
}

/*
 * Append {$project: {_id: 1, c0: "$path", ...}} to stages under key.
 * Nothing here can raise an ERROR between opening and closing the stage
 * documents, other than running out of memory, and stages is owned by a
 * memory context in any case.
 */
static void
append_project(bson_t *stages, const char *key, List *columns)
{
	bson_t		stage;
	bson_t		project;
	ListCell   *lc;
	char		ckey[16];
	StringInfoData path;

	initStringInfo(&path);

	bson_append_document_begin(stages, key, -1, &stage);
	bson_append_document_begin(&stage, "$project", -1, &project);
	bson_append_int32(&project, "_id", -1, 1);
	foreach(lc, columns)
	{
		FetchedColumn *col = (FetchedColumn *) lfirst(lc);

		/* columns mapped to "_id" read the _id fetched above */
		if (strcmp(col->field, "_id") == 0)
			continue;

		snprintf(ckey, sizeof(ckey), "c%d", foreach_current_index(lc));
		if (qleaf_is_root_field(col->field))
			bson_append_utf8(&project, ckey, -1, QLEAF_ROOT_FIELD, -1);
		else
		{
			resetStringInfo(&path);
			appendStringInfoChar(&path, '$');
			appendStringInfoString(&path, col->field);
			bson_append_utf8(&project, ckey, -1, path.data, path.len);
		}
	}
	bson_append_document_end(&stage, &project);
	bson_append_document_end(stages, &stage);
}

/* A copy of a BSON document in a bytea, as a plan's private list holds it. */
bytea *
qleaf_bson_to_bytea(const bson_t *b)
{
	bytea	   *result = palloc(VARHDRSZ + b->len);

	SET_VARSIZE(result, VARHDRSZ + b->len);
	memcpy(VARDATA(result), bson_get_data(b), b->len);
	return result;
}

static void
columns_to_lists(List *columns, List **retrieved_attrs, List **fields)
{
	ListCell   *lc;

	*retrieved_attrs = NIL;
	*fields = NIL;
	foreach(lc, columns)
	{
		FetchedColumn *col = (FetchedColumn *) lfirst(lc);

		*retrieved_attrs = lappend_int(*retrieved_attrs, col->attnum);
		*fields = lappend(*fields, makeString(col->field));
	}
}

/*
 * Build the pipeline of a scan of baserel: the stages for remote_conds,
 * then the projection of the attributes in attrs_used.  Returns the
 * pipeline as a BSON array in a bytea, and the fetched attribute numbers
 * and their field paths in key order.
 */
bytea *
qleaf_build_pipeline(PlannerInfo *root, RelOptInfo *baserel, Relation rel,
					 Bitmapset *attrs_used, List *remote_conds,
					 List **retrieved_attrs, List **fields,
					 List **param_exprs)
{
	return qleaf_build_pipeline_with(root, baserel, rel, attrs_used,
									 remote_conds, NULL, retrieved_attrs,
									 fields, param_exprs);
}

/*
 * The same, with middle_stages (a BSON array of stages, or NULL) between
 * the $match and the $project: the $sort of an ordered scan.
 */
bytea *
qleaf_build_pipeline_with(PlannerInfo *root, RelOptInfo *baserel,
						  Relation rel, Bitmapset *attrs_used,
						  List *remote_conds, const bson_t *middle_stages,
						  List **retrieved_attrs, List **fields,
						  List **param_exprs)
{
	bson_t	   *stages = qleaf_bson_new_owned(CurrentMemoryContext);
	List	   *columns;
	int			nstages = 0;
	char		key[16];

	*param_exprs = NIL;
	qleaf_append_match_next(root, baserel, stages, &nstages, remote_conds,
							param_exprs);
	if (middle_stages != NULL)
	{
		bson_iter_t iter;

		bson_iter_init(&iter, middle_stages);
		while (bson_iter_next(&iter))
		{
			snprintf(key, sizeof(key), "%d", nstages++);
			bson_append_iter(stages, key, -1, &iter);
		}
	}

	columns = fetched_columns(rel, attrs_used, false);
	columns_to_lists(columns, retrieved_attrs, fields);

	snprintf(key, sizeof(key), "%d", nstages++);
	append_project(stages, key, columns);

	return qleaf_bson_to_bytea(stages);
}

/*
 * Append the $match of remote_conds (nothing when there are none) as
 * stage *nstages of stages, counting it; the expressions whose values the
 * executor supplies are appended to *params.
 */
void
qleaf_append_match_next(PlannerInfo *root, RelOptInfo *baserel,
						bson_t *stages, int *nstages, List *remote_conds,
						List **params)
{
	char		key[16];

	if (remote_conds == NIL)
		return;
	snprintf(key, sizeof(key), "%d", (*nstages)++);
	append_match(root, baserel, stages, key, remote_conds, params);
}

/*
 * The $limit of a LIMIT / OFFSET known only at execution: {"$param":
 * {"n": n, "m": m, "stage": "$limit"}} in the plan's pipeline, where n
 * and m are the 1-based positions of the LIMIT and OFFSET expressions in
 * fdw_exprs; qleaf_fill_pipeline replaces it with qleaf_limit_stage's
 * stage for their values.
 */
bson_t *
qleaf_stage_placeholder(int n, int m)
{
	bson_t	   *f = new_filter();
	bson_t		d;

	bson_append_document_begin(f, "$param", -1, &d);
	bson_append_int32(&d, "n", -1, n);
	bson_append_int32(&d, "m", -1, m);
	bson_append_utf8(&d, "stage", -1, "$limit", -1);
	bson_append_document_end(f, &d);
	return f;
}

/*
 * The pipeline ANALYZE runs: $sample of targrows documents (MongoDB picks
 * them at random without reading the whole collection when it can), then
 * every column.
 */
bytea *
qleaf_build_sample_pipeline(Relation rel, int targrows,
							List **retrieved_attrs, List **fields)
{
	bson_t	   *stages = qleaf_bson_new_owned(CurrentMemoryContext);
	List	   *columns;
	bson_t		stage;
	bson_t		sample;

	columns = fetched_columns(rel, NULL, true);
	columns_to_lists(columns, retrieved_attrs, fields);

	bson_append_document_begin(stages, "0", -1, &stage);
	bson_append_document_begin(&stage, "$sample", -1, &sample);
	bson_append_int32(&sample, "size", -1, targrows);
	bson_append_document_end(&stage, &sample);
	bson_append_document_end(stages, &stage);
	append_project(stages, "1", columns);

	return qleaf_bson_to_bytea(stages);
}

/* EquivalenceClass members that are columns of the scanned relation */
static bool
ec_member_is_column(PlannerInfo *root, RelOptInfo *rel,
					EquivalenceClass *ec, EquivalenceMember *em, void *arg)
{
	Expr	   *e = em->em_expr;

	while (IsA(e, RelabelType))
		e = ((RelabelType *) e)->arg;
	return IsA(e, Var) && ((Var *) e)->varno == (int) rel->relid &&
		((Var *) e)->varattno > 0;
}

/*
 * The join clauses of baserel a $match can take with the other side's
 * values as parameters, for parameterized paths (nested loops that run
 * the pipeline once per outer row): the movable clauses of joininfo, and
 * the equalities implied by equivalence classes.
 */
List *
qleaf_pushable_join_clauses(PlannerInfo *root, RelOptInfo *baserel)
{
	List	   *result = NIL;
	List	   *candidates;
	ListCell   *lc;

	if (!qleaf_enable_pushdown)
		return NIL;

	candidates = list_copy(baserel->joininfo);
	if (baserel->has_eclass_joins)
		candidates = list_concat(candidates,
								 generate_implied_equalities_for_column(root, baserel,
																		ec_member_is_column,
																		NULL,
																		baserel->lateral_referencers));
	foreach(lc, candidates)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);

		if (!join_clause_is_movable_to(ri, baserel))
			continue;
		if (qleaf_is_foreign_expr(root, baserel, ri->clause))
			result = lappend(result, ri);
	}
	return result;
}

/* Walker of qleaf_add_condition_columns */
static bool
add_condition_columns_walker(Node *node, void *arg)
{
	void	  **a = (void **) arg;
	RelOptInfo *baserel = (RelOptInfo *) a[0];
	Bitmapset **attrs = (Bitmapset **) a[1];

	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		Var		   *var = (Var *) node;

		if ((Index) var->varno == baserel->relid && var->varlevelsup == 0 &&
			var->varattno > 0 &&
			var->vartype != JSONBOID && var->vartype != JSONOID)
			*attrs = bms_add_member(*attrs,
									var->varattno - FirstLowInvalidHeapAttributeNumber);
		return false;
	}
	return expression_tree_walker(node, add_condition_columns_walker, arg);
}

/*
 * Add to *attrs the columns the shipped conditions remote_exprs read,
 * except json and jsonb columns.  Their values are fetched and converted
 * even though PostgreSQL does not recheck an exact condition: a document
 * MongoDB matches whose field does not fit its column (a string in an
 * integer column matched by <>, an array matched element by element) then
 * raises the conversion error it raises without pushdown, instead of
 * being returned.  json and jsonb columns take any value.
 */
void
qleaf_add_condition_columns(RelOptInfo *baserel, List *remote_exprs,
							Bitmapset **attrs)
{
	void	   *arg[2];

	arg[0] = baserel;
	arg[1] = attrs;
	(void) add_condition_columns_walker((Node *) remote_exprs, arg);
}

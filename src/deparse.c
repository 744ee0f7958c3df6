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
 * Conditions are split once, by qleaf_classify_conditions, into those
 * MongoDB evaluates exactly and those PostgreSQL checks locally; the
 * pushdown of each kind of expression is decided by qleaf_is_foreign_expr
 * alone.  Nothing is shipped yet: every condition is local, and the
 * pipeline is the projection.
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

#include "access/htup_details.h"
#include "access/sysattr.h"
#include "access/tupdesc.h"
#include "catalog/pg_type.h"
#include "nodes/bitmapset.h"
#include "optimizer/optimizer.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

/* One fetched column: which attribute and where its value comes from. */
typedef struct FetchedColumn
{
	AttrNumber	attnum;
	char	   *field;
} FetchedColumn;

static List *fetched_columns(Relation rel, Bitmapset *attrs_used,
							 bool all_columns);
static void append_project(bson_t *stages, const char *key, List *columns);
static bytea *pipeline_to_bytea(const bson_t *stages);

/*
 * Split the restriction clauses of a foreign base relation into those
 * the pipeline evaluates (remote_conds) and those checked locally
 * (local_conds).
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

		if (qleaf_is_foreign_expr(root, baserel, ri->clause))
			*remote_conds = lappend(*remote_conds, ri);
		else
			*local_conds = lappend(*local_conds, ri);
	}
}

/*
 * Can MongoDB evaluate expr with exactly PostgreSQL's result?  No kind of
 * expression is shipped yet, so every condition is checked locally; with
 * qleaf_fdw.enable_pushdown off nothing ever is.
 */
bool
qleaf_is_foreign_expr(PlannerInfo *root, RelOptInfo *baserel, Expr *expr)
{
	if (!qleaf_enable_pushdown)
		return false;
	return false;
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

static bytea *
pipeline_to_bytea(const bson_t *stages)
{
	bytea	   *result = palloc(VARHDRSZ + stages->len);

	SET_VARSIZE(result, VARHDRSZ + stages->len);
	memcpy(VARDATA(result), bson_get_data(stages), stages->len);
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
					 List **retrieved_attrs, List **fields)
{
	bson_t	   *stages = qleaf_bson_new_owned(CurrentMemoryContext);
	List	   *columns;
	int			nstages = 0;
	char		key[16];

	if (remote_conds != NIL)
		elog(ERROR, "qleaf_fdw cannot ship conditions yet");

	columns = fetched_columns(rel, attrs_used, false);
	columns_to_lists(columns, retrieved_attrs, fields);

	snprintf(key, sizeof(key), "%d", nstages++);
	append_project(stages, key, columns);

	return pipeline_to_bytea(stages);
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

	return pipeline_to_bytea(stages);
}

/*-------------------------------------------------------------------------
 *
 * qleaf_fdw.h
 *		  private declarations shared by qleaf_fdw's source files
 *
 * Prototypes are grouped by the file that defines them.  The conversion
 * (convert.h) and connection (connection.h) interfaces have their own
 * headers; everything else the files share is declared here.
 *
 *-------------------------------------------------------------------------
 */
#ifndef QLEAF_FDW_H
#define QLEAF_FDW_H

#include "postgres.h"

#include <mongoc/mongoc.h>

#include "connection.h"
#include "convert.h"
#include "foreign/foreign.h"
#include "nodes/execnodes.h"
#include "nodes/pathnodes.h"
#include "utils/relcache.h"

/* The field path that maps a column to the whole document. */
#define QLEAF_ROOT_FIELD		"$$ROOT"

/* Row count assumed for a collection we know nothing about. */
#define QLEAF_DEFAULT_ROWS		1000

/*
 * Options of a foreign table, merged with its server's: what to read and
 * how.  Filled by qleaf_get_table_options.
 */
typedef struct QleafTableOptions
{
	char	   *database;		/* table's database, else the server's */
	char	   *collection;		/* default: the table's name */
	int			batch_size;		/* documents per round trip, 0 = GUC */
	bool		null_on_error;	/* on_conversion_error 'null' */
	double		fdw_startup_cost;	/* cost of a round trip */
	double		fdw_tuple_cost; /* cost of a document received */
} QleafTableOptions;

/* Defaults of the options fdw_startup_cost and fdw_tuple_cost. */
#define QLEAF_DEFAULT_STARTUP_COST	100.0
#define QLEAF_DEFAULT_TUPLE_COST	0.01

/*
 * Planner state of one foreign base relation, kept in
 * baserel->fdw_private.  Conditions are split once into those MongoDB
 * can evaluate (remote_conds) and those PostgreSQL checks (local_conds).
 */
typedef struct QleafRelInfo
{
	QleafTableOptions opts;
	ForeignTable *table;
	ForeignServer *server;
	UserMapping *user;

	List	   *remote_conds;	/* RestrictInfos shipped in $match */
	List	   *local_conds;	/* RestrictInfos checked locally */

	/* attributes needed by the output or by local_conds */
	Bitmapset  *attrs_used;

	/* what upper planning could not push (String notes for EXPLAIN) */
	List	   *kept_local;

	double		rows;			/* estimated rows after all quals */
	double		retrieved_rows; /* documents MongoDB sends */
	int			width;			/* estimated row width */
	Cost		startup_cost;
	Cost		total_cost;

	/* from costs.c */
	double		fdw_startup_cost;
	double		fdw_tuple_cost;
	double		avg_size;		/* server's average document size, or 0 */
	List	   *index_keys;		/* String: leading field of each index */
} QleafRelInfo;

/*
 * Indexes of the items of a ForeignScan's fdw_private list.
 */
enum FdwScanPrivateIndex
{
	/* the pipeline: a bytea Const holding a BSON array of stages */
	FdwScanPrivatePipeline,
	/* integer list of the attribute numbers fetched, in key order */
	FdwScanPrivateRetrievedAttrs,
	/* list of String: the field path of each fetched attribute */
	FdwScanPrivateFields,
	/* String: database name */
	FdwScanPrivateDatabase,
	/* String: collection name */
	FdwScanPrivateCollection,
	/* Integer: documents per batch */
	FdwScanPrivateBatchSize,
	/* list of String: why each local condition is local, in qual order */
	FdwScanPrivateLocalReasons,
	/*
	 * a pushed-down join (scanrelid 0): what join.c needs; a base scan:
	 * list of String, why its joins stay local
	 */
	FdwScanPrivateJoin,
	/* list of String: what the query asked for that stays local, and why */
	FdwScanPrivateKeptLocal,
	/* grouped or limited scans (scanrelid 0): how rows are built (upper.c) */
	FdwScanPrivateUpper
};

/*
 * What a scan counts for EXPLAIN ANALYZE.
 */
typedef struct QleafScanCounters
{
	uint64		documents;		/* documents received */
	uint64		batches;		/* round trips (aggregate + getMore) */
	uint64		bytes;			/* reply bytes */
} QleafScanCounters;

typedef struct QleafScan QleafScan;

/*
 * One fetched value of a scan: the row attribute (0-based) it fills and
 * how to convert it.  A column with from_id reads the document's "_id".
 */
typedef struct QleafScanColumn
{
	int			att;
	Oid			typid;
	int32		typmod;
	const char *colname;
	const char *field;
	bool		null_on_error;
	bool		from_id;
} QleafScanColumn;

/* the values of a grouped or limited scan (upper.c) are read alike */
typedef QleafScanColumn QleafScanKey;

/* State of a foreign scan at execution */
typedef struct QleafScanState
{
	QleafScan  *scan;			/* NULL under EXPLAIN without ANALYZE */
	QleafScanCounters counters; /* kept after the scan ends */
	List	   *param_states;	/* ExprStates of fdw_exprs: $match values */
	bool		params_pending; /* fill them in before the next document */
	struct QleafUpperExec *upper;	/* grouped or limited scans (upper.c) */
} QleafScanState;

/* in qleaf_fdw.c */
extern int	qleaf_batch_size;
extern bool qleaf_enable_pushdown;
extern bson_t *qleaf_bson_new_owned(MemoryContext cxt);
extern void qleaf_append_pipeline_json(StringInfo buf, const bson_t *pipeline);

/* in option.c */
extern void qleaf_get_table_options(ForeignTable *table,
									ForeignServer *server,
									QleafTableOptions *opts);
extern char *qleaf_get_column_field(Oid relid, AttrNumber attnum,
									const char *colname,
									bool *null_on_error);
extern bool qleaf_is_root_field(const char *field);

/* in deparse.c */

/*
 * How a condition is evaluated: exact (in $match only), lossy (in $match
 * as a prefilter and rechecked by PostgreSQL) or unsafe (by PostgreSQL
 * only).
 */
typedef enum QleafShipKind
{
	QLEAF_SHIP_UNSAFE,
	QLEAF_SHIP_LOSSY,
	QLEAF_SHIP_EXACT
} QleafShipKind;

extern void qleaf_classify_conditions(PlannerInfo *root, RelOptInfo *baserel,
									  List *input_conds,
									  List **remote_conds,
									  List **local_conds);
extern bool qleaf_is_foreign_expr(PlannerInfo *root, RelOptInfo *baserel,
								  Expr *expr);
extern QleafShipKind qleaf_classify_expr(PlannerInfo *root,
										 RelOptInfo *baserel, Expr *expr,
										 const char **reason);
extern void qleaf_place_clause(PlannerInfo *root, RelOptInfo *baserel,
							   RestrictInfo *ri, List **remote_conds,
							   List **remote_exprs, List **local_exprs,
							   List **local_reasons);
extern void qleaf_check_column_mapping(Relation rel, AttrNumber attnum,
									   const char *field);
extern bytea *qleaf_build_pipeline(PlannerInfo *root, RelOptInfo *baserel,
								   Relation rel, Bitmapset *attrs_used,
								   List *remote_conds,
								   List **retrieved_attrs, List **fields,
								   List **param_exprs);
extern bytea *qleaf_build_pipeline_with(PlannerInfo *root,
										RelOptInfo *baserel, Relation rel,
										Bitmapset *attrs_used,
										List *remote_conds,
										const bson_t *middle_stages,
										List **retrieved_attrs,
										List **fields,
										List **param_exprs);
extern void qleaf_append_match_next(PlannerInfo *root, RelOptInfo *baserel,
									bson_t *stages, int *nstages,
									List *remote_conds, List **params);
extern bson_t *qleaf_stage_placeholder(int n, int m);
extern bson_t *qleaf_limit_stage(Datum count, bool count_null, Datum offset,
								 bool offset_null);
extern bytea *qleaf_bson_to_bytea(const bson_t *b);
extern void qleaf_append_match_stage(PlannerInfo *root, RelOptInfo *baserel,
									 bson_t *stages, const char *key,
									 List *remote_conds, List **params);
extern bytea *qleaf_fill_pipeline(const bytea *pipeline, List *param_states,
								  ExprContext *econtext);
extern List *qleaf_pushable_join_clauses(PlannerInfo *root,
										 RelOptInfo *baserel);
extern void qleaf_add_condition_columns(RelOptInfo *baserel,
										List *remote_exprs,
										Bitmapset **attrs);
extern bytea *qleaf_build_sample_pipeline(Relation rel, int targrows,
										  List **retrieved_attrs,
										  List **fields);

/* in shippable.c */

/* What a shippable column holds, as far as comparisons are concerned. */
typedef enum QleafValueKind
{
	QLEAF_VK_NONE,
	QLEAF_VK_INT,				/* smallint, integer, bigint */
	QLEAF_VK_NUMERIC,			/* numeric without precision */
	QLEAF_VK_TEXT,				/* text, varchar */
	QLEAF_VK_BOOL,
	QLEAF_VK_TIMESTAMP,			/* timestamptz, timestamp */
	QLEAF_VK_JSONB,
	QLEAF_VK_FLOAT8				/* double precision: prefilter only */
} QleafValueKind;

extern QleafValueKind qleaf_value_kind(Oid typid, int32 typmod,
									   const char **reason);
extern bool qleaf_value_type_ok(QleafValueKind kind, Oid coltype,
								Oid valtype);
extern int	qleaf_comparison_strategy(Oid opno, QleafValueKind kind,
									  Oid coltype, Oid valtype);
extern bool qleaf_collation_ok(Oid collid, bool ordering,
							   const char **reason);
extern bool qleaf_like_function(Oid funcid, bool *negated, bool *icase);
extern char *qleaf_like_regex(const char *pattern, int len, bool icase,
							  bool narrow, bool *hex_possible,
							  const char **reason);

/* in scan.c */
extern QleafScan *qleaf_scan_begin(Relation rel, ForeignServer *server,
								   UserMapping *user, const char *database,
								   const char *collection,
								   const bytea *pipeline,
								   List *retrieved_attrs, List *fields,
								   int batch_size, bool null_on_error,
								   MemoryContext parent);
extern QleafScan *qleaf_scan_begin_columns(ForeignServer *server,
										   UserMapping *user,
										   const char *database,
										   const char *collection,
										   const bytea *pipeline, int natts,
										   const QleafScanColumn *cols,
										   int ncols, const char *joined_key,
										   int batch_size,
										   MemoryContext parent);
extern QleafScan *qleaf_scan_begin_keys(ForeignServer *server,
										UserMapping *user,
										const char *database,
										const char *collection,
										const bytea *pipeline, int natts,
										int nkeys, const QleafScanKey *keys,
										int batch_size,
										MemoryContext parent);
extern bool qleaf_scan_next(QleafScan *scan, Datum *values, bool *isnull);
extern void qleaf_scan_rescan(QleafScan *scan);
extern void qleaf_scan_set_pipeline(QleafScan *scan, const bytea *pipeline);
extern void qleaf_scan_end(QleafScan *scan);
extern const QleafScanCounters *qleaf_scan_counters(QleafScan *scan);

/* in costs.c */
typedef struct QleafRemote QleafRemote;

extern void qleaf_estimate_rel_size(PlannerInfo *root, RelOptInfo *baserel,
									QleafRelInfo *fpinfo);
extern void qleaf_estimate_param_path(PlannerInfo *root, RelOptInfo *baserel,
									  ParamPathInfo *ppi, double *rows,
									  Cost *startup_cost, Cost *total_cost);
extern double qleaf_collection_count(ForeignServer *server, UserMapping *user,
									 const char *database,
									 const char *collection);
extern QleafRemote *qleaf_remote_open(ForeignServer *server, UserMapping *user,
									  const char *database,
									  const char *collection);
extern void qleaf_remote_close(QleafRemote *r);
extern mongoc_client_t *qleaf_remote_client(QleafRemote *r);
extern QleafConn *qleaf_remote_conn(QleafRemote *r);
extern mongoc_database_t *qleaf_remote_database(QleafRemote *r);
extern mongoc_collection_t *qleaf_remote_collection(QleafRemote *r);
extern void qleaf_remote_set_cursor(QleafRemote *r, mongoc_cursor_t *cursor);
extern const bson_t *qleaf_remote_next(QleafRemote *r, int elevel,
									   const char *what, bool *failed);

/* in import.c */
extern List *qleaf_import_foreign_schema(ImportForeignSchemaStmt *stmt,
										 Oid serverOid);

/* in join.c */
struct ExplainState;
extern bool qleaf_enable_join_pushdown;
extern void qleaf_join_init(void);
extern void qleaf_get_foreign_join_paths(PlannerInfo *root,
										 RelOptInfo *joinrel,
										 RelOptInfo *outerrel,
										 RelOptInfo *innerrel,
										 JoinType jointype,
										 JoinPathExtraData *extra);
extern ForeignScan *qleaf_join_plan(PlannerInfo *root, RelOptInfo *joinrel,
									ForeignPath *best_path, List *tlist,
									List *scan_clauses, Plan *outer_plan);
extern bool qleaf_is_join_plan(ForeignScan *fsplan);
extern QleafScan *qleaf_join_scan_begin(ForeignScanState *node,
										const bytea *pipeline,
										int batch_size);
extern void qleaf_join_explain(ForeignScanState *node,
							   struct ExplainState *es);
extern List *qleaf_join_refusals(PlannerInfo *root, RelOptInfo *baserel);
extern void qleaf_join_explain_refusals(List *fdw_private,
										struct ExplainState *es);
/* in upper.c */
extern bool qleaf_enable_sort_pushdown;
extern bool qleaf_enable_limit_pushdown;
extern bool qleaf_enable_aggregate_pushdown;
extern void qleaf_upper_init(void);
extern void qleaf_add_sorted_paths(PlannerInfo *root, RelOptInfo *baserel);
extern void qleafGetForeignUpperPaths(PlannerInfo *root,
									  UpperRelationKind stage,
									  RelOptInfo *input_rel,
									  RelOptInfo *output_rel, void *extra);
extern bson_t *qleaf_sort_stages(PlannerInfo *root, RelOptInfo *baserel,
								 List *pathkeys);
extern List *qleaf_kept_local(PlannerInfo *root, RelOptInfo *baserel,
							  List *pathkeys);
extern ForeignScan *qleaf_upper_plan(PlannerInfo *root, RelOptInfo *rel,
									 List *tlist, Plan *outer_plan);
extern void qleaf_upper_begin(ForeignScanState *node, int eflags,
							  QleafScanState *state);
extern TupleTableSlot *qleaf_upper_iterate(ForeignScanState *node,
										   QleafScanState *state);
extern void qleaf_upper_rescan(QleafScanState *state);

/* in changes.c */
struct ExplainState;
extern bool qleaf_changes_option(const char *name);
extern void qleaf_changes_validate_options(List *options);
extern bool qleaf_is_changes_table(ForeignTable *table);
extern char *qleaf_changes_column_field(Oid relid, const char *colname);
extern bool qleaf_is_changes_plan(ForeignScan *fsplan);
extern void qleaf_changes_rel_size(PlannerInfo *root, RelOptInfo *baserel);
extern ForeignScan *qleaf_changes_plan(PlannerInfo *root, RelOptInfo *baserel,
									   List *tlist, List *scan_clauses,
									   Plan *outer_plan);
extern void qleaf_changes_begin(ForeignScanState *node, int eflags);
extern TupleTableSlot *qleaf_changes_iterate(ForeignScanState *node);
extern void qleaf_changes_rescan(ForeignScanState *node);
extern void qleaf_changes_end(ForeignScanState *node);
extern void qleaf_changes_explain(ForeignScanState *node,
								  struct ExplainState *es);

#endif							/* QLEAF_FDW_H */

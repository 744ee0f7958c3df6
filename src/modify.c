/*-------------------------------------------------------------------------
 *
 * modify.c
 *		  INSERT, UPDATE, DELETE and COPY FROM on qleaf_fdw foreign tables
 *
 * Design rules of this file:
 *
 * - What each statement sends: INSERT one "insert" command per batch of
 *   batch_size rows (one per row when RETURNING or AFTER ROW triggers
 *   need each row at once); COPY FROM the same batches; UPDATE one
 *   findAndModify per row, by _id, with $set for the changed columns that
 *   are not NULL and $unset for those set to NULL (a replacement when the
 *   whole-document column changes); DELETE one findAndModify with remove
 *   per row, by _id.  findAndModify returns the document as stored, which
 *   RETURNING shows.
 *
 * - SQL NULL is a missing field: INSERT leaves NULL columns out, UPDATE
 *   ... SET c = NULL removes the field.  Both read back as NULL.
 *
 * - RETURNING shows the document as MongoDB stored it, converted by the
 *   read path: a generated _id, a numeric written as a double, all read
 *   back exactly as a later SELECT would.
 *
 * - A row's document is built from its columns: a column mapped to a
 *   dotted path writes a nested field; the whole-document column (field
 *   '$$ROOT') gives the fields no column maps.  A missing _id is
 *   generated here (an ObjectId), as MongoDB drivers do.
 *
 * - Every libmongoc and libbson object is owned by the statement's memory
 *   context, whose reset callback frees it: an ERROR anywhere frees it.
 *
 * - Writes run in the PostgreSQL transaction's MongoDB transaction
 *   (xact.c) unless the table or server says transactions 'false'.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "qleaf_fdw.h"
#include "bson_out.h"
#include "modify.h"

#include "access/sysattr.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/explain.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "optimizer/appendinfo.h"
#include "optimizer/optimizer.h"
#include "optimizer/planmain.h"
#include "parser/parsetree.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "common/hashfn.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

/* Rows per insert command when no batch_size is set. */
#define QLEAF_DEFAULT_WRITE_BATCH	1000

/* MongoDB's largest document (maxBsonObjectSize). */
#define QLEAF_MAX_DOCUMENT_SIZE		(16 * 1024 * 1024)

/* The junk column that carries a row's _id from the scan to the write. */
#define QLEAF_ID_JUNK	"qleaf_id"

typedef struct QleafModifyState
{
	MemoryContext cxt;			/* owns this and every libmongoc object */
	MemoryContextCallback cleanup;
	MemoryContext rowcxt;		/* reset after each row or batch */

	Relation	rel;
	CmdType		operation;
	QleafConn  *conn;
	mongoc_collection_t *coll;
	char	   *database;
	char	   *collection_name;
	bool		use_txn;		/* option transactions */
	int			batch_size;

	int			natts;
	char	  **fields;			/* per attribute: field path, NULL if dropped */
	QleafWriteConv *wconvs;		/* per attribute */
	QleafColumnConv *rconvs;	/* per attribute, for RETURNING */
	int			root_att;		/* whole-document column, or -1 */
	int			id_att;			/* the column mapped to _id, or -1 */
	AttrNumber	junk_att;		/* resno of QLEAF_ID_JUNK in the plan */
	Bitmapset  *updated;		/* attribute indexes an UPDATE sets */
	bool		fill_slot;		/* RETURNING or triggers need the row */

	/* bson_t objects of the current row or batch, freed after it */
	bson_t	  **owned;
	int			nowned;
	int			maxowned;
	bson_t	   *reply;			/* valid while reply_live */
	bool		reply_live;
	mongoc_find_and_modify_opts_t *fam;

	/* COPY FROM: documents waiting to be sent */
	bool		buffering;
	bson_t	  **pending;
	int			npending;

	/*
	 * UPDATE: the _ids already updated by this statement.  A scan may
	 * return a document again after its update moved it ahead of the
	 * cursor (an index on an updated field; MongoDB gives no snapshot to
	 * a scan outside a transaction, and one inside sees its own writes);
	 * PostgreSQL updates each row once.
	 */
	HTAB	   *seen_ids;

	uint64		commands;		/* commands sent, for EXPLAIN ANALYZE */
	uint64		documents;		/* documents written */
} QleafModifyState;

/* a node of the document being built */
typedef enum DocNodeKind
{
	DN_DOC,						/* a document built from its children */
	DN_DATUM,					/* a column's value */
	DN_ITER						/* a value of the whole-document column */
} DocNodeKind;

/* an entry of QleafModifyState.seen_ids: the BSON filters {_id: ...} of a hash */
typedef struct SeenId
{
	uint64		hash;			/* key */
	List	   *filters;		/* bytea copies of the filters */
} SeenId;

typedef struct DocNode
{
	char	   *key;
	DocNodeKind kind;
	bool		from_column;	/* made for a column's path */
	int			att;			/* DN_DATUM */
	Datum		value;
	bson_iter_t *iter;			/* DN_ITER (see iter_copy) */
	List	   *children;		/* DN_DOC */
} DocNode;

static void modify_cleanup(void *arg);
static void *palloc_aligned(Size size);

/* ----------------------------------------------------------------
 *		Owned BSON
 * ----------------------------------------------------------------
 */

/* Room for one more owned object. */
static void
own_reserve(QleafModifyState *st)
{
	if (st->nowned == st->maxowned)
	{
		int			n = Max(16, st->maxowned * 2);

		st->owned = st->owned ?
			repalloc(st->owned, sizeof(bson_t *) * n) :
			MemoryContextAlloc(st->cxt, sizeof(bson_t *) * n);
		st->maxowned = n;
	}
}

static bson_t *
own_new(QleafModifyState *st)
{
	bson_t	   *b;

	own_reserve(st);
	b = bson_new();
	st->owned[st->nowned++] = b;
	return b;
}

/* Adopt a bson_t made elsewhere; call own_reserve before making it. */
static void
own_adopt(QleafModifyState *st, bson_t *b)
{
	Assert(st->nowned < st->maxowned);
	st->owned[st->nowned++] = b;
}

static void
free_owned(QleafModifyState *st)
{
	int			i;

	for (i = 0; i < st->nowned; i++)
		if (st->owned[i] != NULL)
			bson_destroy(st->owned[i]);
	st->nowned = 0;
	if (st->reply_live)
	{
		bson_destroy(st->reply);
		st->reply_live = false;
	}
	if (st->fam != NULL)
	{
		mongoc_find_and_modify_opts_destroy(st->fam);
		st->fam = NULL;
	}
}

static void
modify_cleanup(void *arg)
{
	QleafModifyState *st = (QleafModifyState *) arg;

	free_owned(st);
	if (st->coll != NULL)
	{
		mongoc_collection_destroy(st->coll);
		st->coll = NULL;
	}
	if (st->conn != NULL)
	{
		QleafConn  *conn = st->conn;

		st->conn = NULL;
		qleaf_release_connection(conn);
	}
}

/* ----------------------------------------------------------------
 *		Options and columns
 * ----------------------------------------------------------------
 */

/* The transactions option: the table's, else the server's, else true. */
static bool
use_transactions(ForeignTable *table, ForeignServer *server)
{
	bool		result = true;
	ListCell   *lc;

	foreach(lc, server->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "transactions") == 0)
			result = defGetBoolean(def);
	}
	foreach(lc, table->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "transactions") == 0)
			result = defGetBoolean(def);
	}
	return result;
}

static QleafBsonType
column_bson_type(Oid relid, AttrNumber attnum)
{
	ListCell   *lc;

	foreach(lc, GetForeignColumnOptions(relid, attnum))
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "bson_type") == 0)
			return qleaf_parse_bson_type(defGetString(def));
	}
	return QLEAF_BT_AUTO;
}

/* The attribute number of the column mapped to _id, or 0. */
static AttrNumber
id_column(Relation rel)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int			i;

	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(tupdesc, i);
		bool		dummy = false;

		if (attr->attisdropped)
			continue;
		if (strcmp(qleaf_get_column_field(RelationGetRelid(rel), i + 1,
										  NameStr(attr->attname), &dummy),
				   "_id") == 0)
			return i + 1;
	}
	return 0;
}

static void
refuse_changes_table(Relation rel)
{
	if (qleaf_is_changes_table(GetForeignTable(RelationGetRelid(rel))))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot modify changes table \"%s\"",
						RelationGetRelationName(rel)),
				 errdetail("A changes table reads a change stream; it has no documents to write.")));
}

/* ----------------------------------------------------------------
 *		Planning
 * ----------------------------------------------------------------
 */

static int
qleafIsForeignRelUpdatable(Relation rel)
{
	if (qleaf_is_changes_table(GetForeignTable(RelationGetRelid(rel))))
		return 0;
	return (1 << CMD_INSERT) | (1 << CMD_UPDATE) | (1 << CMD_DELETE);
}

/*
 * UPDATE and DELETE find each document by its _id: the scan carries the
 * _id column as a junk column.
 */
static void
qleafAddForeignUpdateTargets(PlannerInfo *root, Index rtindex,
							 RangeTblEntry *target_rte,
							 Relation target_relation)
{
	AttrNumber	attnum;
	Form_pg_attribute attr;
	Var		   *var;

	refuse_changes_table(target_relation);
	attnum = id_column(target_relation);
	if (attnum == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("foreign table \"%s\" has no column for the MongoDB field \"_id\"",
						RelationGetRelationName(target_relation)),
				 errdetail("UPDATE and DELETE find each document by its _id."),
				 errhint("Add a column for it, for example ALTER FOREIGN TABLE %s ADD COLUMN _id text.",
						 quote_identifier(RelationGetRelationName(target_relation)))));
	attr = TupleDescAttr(RelationGetDescr(target_relation), attnum - 1);
	var = makeVar(rtindex, attnum, attr->atttypid, attr->atttypmod,
				  attr->attcollation, 0);
	add_row_identity_var(root, var, rtindex, QLEAF_ID_JUNK);
}

/* ----------------------------------------------------------------
 *		Execution set-up
 * ----------------------------------------------------------------
 */

static int
write_batch_size(ForeignTable *table, ForeignServer *server)
{
	QleafTableOptions opts;

	qleaf_get_table_options(table, server, &opts);
	if (opts.batch_size > 0)
		return opts.batch_size;
	if (qleaf_batch_size > 0)
		return qleaf_batch_size;
	return QLEAF_DEFAULT_WRITE_BATCH;
}

static QleafModifyState *
modify_begin(EState *estate, ResultRelInfo *rinfo, CmdType operation,
			 Plan *subplan, bool returning)
{
	Relation	rel = rinfo->ri_RelationDesc;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	Oid			relid = RelationGetRelid(rel);
	ForeignTable *table = GetForeignTable(relid);
	ForeignServer *server = GetForeignServer(table->serverid);
	UserMapping *user;
	QleafTableOptions opts;
	QleafModifyState *st;
	MemoryContext cxt;
	MemoryContext oldcxt;
	Oid			userid;
	TriggerDesc *trig = rinfo->ri_TrigDesc;
	int			i;

	refuse_changes_table(rel);
	{
		Index		rti = rinfo->ri_RangeTableIndex;
		RangeTblEntry *rte;

		/* a row routed to a partition: the statement's target checks */
		if (rti == 0 && rinfo->ri_RootResultRelInfo != NULL)
			rti = rinfo->ri_RootResultRelInfo->ri_RangeTableIndex;
		rte = rti > 0 ? exec_rt_fetch(rti, estate) : NULL;
		userid = rte && OidIsValid(rte->checkAsUser) ? rte->checkAsUser :
			GetUserId();
	}
	user = GetUserMapping(userid, server->serverid);
	qleaf_get_table_options(table, server, &opts);

	cxt = AllocSetContextCreate(estate->es_query_cxt, "qleaf_fdw modify",
								ALLOCSET_SMALL_SIZES);
	st = MemoryContextAllocZero(cxt, sizeof(QleafModifyState));
	st->cxt = cxt;
	st->cleanup.func = modify_cleanup;
	st->cleanup.arg = st;
	MemoryContextRegisterResetCallback(cxt, &st->cleanup);
	oldcxt = MemoryContextSwitchTo(cxt);

	st->reply = palloc_aligned(sizeof(bson_t));
	st->rowcxt = AllocSetContextCreate(cxt, "qleaf_fdw modify row",
									   ALLOCSET_DEFAULT_SIZES);
	st->rel = rel;
	st->operation = operation;
	st->database = pstrdup(opts.database);
	st->collection_name = pstrdup(opts.collection);
	st->use_txn = use_transactions(table, server);
	st->batch_size = write_batch_size(table, server);
	st->natts = tupdesc->natts;
	st->fields = palloc0(sizeof(char *) * st->natts);
	st->wconvs = palloc0(sizeof(QleafWriteConv) * st->natts);
	st->rconvs = palloc0(sizeof(QleafColumnConv) * st->natts);
	st->root_att = -1;
	st->id_att = -1;

	for (i = 0; i < st->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(tupdesc, i);
		char	   *colname;
		bool		null_on_error = opts.null_on_error;

		if (attr->attisdropped)
			continue;
		colname = pstrdup(NameStr(attr->attname));
		st->fields[i] = pstrdup(qleaf_get_column_field(relid, i + 1, colname,
													   &null_on_error));
		qleaf_init_write_conv(&st->wconvs[i], attr->atttypid, colname,
							  st->fields[i], column_bson_type(relid, i + 1));
		qleaf_init_column_conv(&st->rconvs[i], attr->atttypid,
							   attr->atttypmod, colname, st->fields[i],
							   null_on_error);
		if (qleaf_is_root_field(st->fields[i]))
		{
			if (attr->atttypid != JSONBOID && attr->atttypid != JSONOID)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("the whole-document column \"%s\" must be of type jsonb or json to be written",
								colname)));
			st->root_att = i;
		}
		else if (strcmp(st->fields[i], "_id") == 0 && st->id_att < 0)
			st->id_att = i;
	}

	if (operation == CMD_UPDATE)
	{
		Bitmapset  *cols = ExecGetUpdatedCols(rinfo, estate);
		int			col = -1;

		while ((col = bms_next_member(cols, col)) >= 0)
		{
			AttrNumber	attno = col + FirstLowInvalidHeapAttributeNumber;

			if (attno > 0)
				st->updated = bms_add_member(st->updated, attno - 1);
		}
	}
	if ((operation == CMD_UPDATE || operation == CMD_DELETE) && subplan != NULL)
	{
		st->junk_att = ExecFindJunkAttributeInTlist(subplan->targetlist,
													QLEAF_ID_JUNK);
		if (!AttributeNumberIsValid(st->junk_att))
			elog(ERROR, "qleaf_fdw: could not find junk column \"%s\"",
				 QLEAF_ID_JUNK);
	}

	st->fill_slot = returning || rinfo->ri_returningList != NIL ||
		rinfo->ri_projectReturning != NULL ||
		(trig != NULL &&
		 ((operation == CMD_INSERT && trig->trig_insert_after_row) ||
		  (operation == CMD_UPDATE && trig->trig_update_after_row) ||
		  (operation == CMD_DELETE && trig->trig_delete_after_row)));

	st->conn = qleaf_get_connection(user, server);
	st->coll = mongoc_client_get_collection(qleaf_conn_client(st->conn),
											st->database, st->collection_name);
	MemoryContextSwitchTo(oldcxt);
	return st;
}

/* ----------------------------------------------------------------
 *		Building documents
 * ----------------------------------------------------------------
 */

/*
 * libbson declares bson_t and bson_iter_t 128-byte aligned, and the
 * compiler relies on it: palloc gives less, so they get storage aligned
 * by hand.
 */
static void *
palloc_aligned(Size size)
{
	return (void *) TYPEALIGN(128, palloc(size + 128));
}

static bson_iter_t *
iter_copy(const bson_iter_t *it)
{
	bson_iter_t *c = palloc_aligned(sizeof(bson_iter_t));

	memcpy(c, it, sizeof(bson_iter_t));
	return c;
}

static DocNode *
doc_child(DocNode *parent, const char *key, int keylen)
{
	ListCell   *lc;

	foreach(lc, parent->children)
	{
		DocNode    *n = (DocNode *) lfirst(lc);

		if (strlen(n->key) == (size_t) keylen &&
			strncmp(n->key, key, keylen) == 0)
			return n;
	}
	return NULL;
}

static DocNode *
doc_add(DocNode *parent, const char *key, int keylen, DocNodeKind kind)
{
	DocNode    *n = palloc0(sizeof(DocNode));

	n->key = pnstrdup(key, keylen);
	n->kind = kind;
	parent->children = lappend(parent->children, n);
	return n;
}

/* A DN_ITER holding a document becomes a DN_DOC of DN_ITER children. */
static void
doc_expand(DocNode *n)
{
	bson_iter_t child;

	Assert(n->kind == DN_ITER);
	n->kind = DN_DOC;
	n->children = NIL;
	if (BSON_ITER_HOLDS_DOCUMENT(n->iter) &&
		bson_iter_recurse(n->iter, &child))
	{
		while (bson_iter_next(&child))
		{
			DocNode    *c = doc_add(n, bson_iter_key(&child),
									bson_iter_key_len(&child), DN_ITER);

			c->iter = iter_copy(&child);
		}
	}
}

static void
path_conflict(QleafModifyState *st, int att)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("column \"%s\" writes field \"%s\", which another column of the same row writes too",
					st->wconvs[att].colname, st->fields[att]),
			 errhint("Give a value (not NULL) to only one of the columns whose field paths overlap.")));
}

/* Place a column's value at its field path. */
static void
doc_place(QleafModifyState *st, DocNode *root, int att, Datum value)
{
	const char *path = st->fields[att];
	DocNode    *n = root;

	for (;;)
	{
		const char *dot = strchr(path, '.');
		int			len = dot ? (int) (dot - path) : (int) strlen(path);
		DocNode    *c = doc_child(n, path, len);

		if (dot == NULL)
		{
			if (c == NULL)
				c = doc_add(n, path, len, DN_DATUM);
			else if (c->from_column)
				path_conflict(st, att);
			c->kind = DN_DATUM;
			c->children = NIL;
			c->att = att;
			c->value = value;
			c->from_column = true;
			return;
		}
		if (c == NULL)
			c = doc_add(n, path, len, DN_DOC);
		else if (c->kind == DN_DATUM)
			path_conflict(st, att);
		else if (c->kind == DN_ITER)
		{
			if (BSON_ITER_HOLDS_DOCUMENT(c->iter))
				doc_expand(c);
			else
			{
				c->kind = DN_DOC;
				c->children = NIL;
			}
		}
		c->from_column = true;
		n = c;
		path = dot + 1;
	}
}

static void
doc_emit(QleafModifyState *st, bson_t *out, DocNode *n)
{
	ListCell   *lc;

	foreach(lc, n->children)
	{
		DocNode    *c = (DocNode *) lfirst(lc);

		switch (c->kind)
		{
			case DN_DATUM:
				qleaf_append_datum(out, c->key, &st->wconvs[c->att], c->value);
				break;
			case DN_ITER:
				if (!bson_append_iter(out, c->key, -1, c->iter))
					elog(ERROR, "qleaf_fdw: could not copy a BSON value");
				break;
			case DN_DOC:
				{
					bson_t		child;

					bson_append_document_begin(out, c->key, -1, &child);
					doc_emit(st, &child, c);
					bson_append_document_end(out, &child);
					break;
				}
		}
	}
}

static void
check_document_size(QleafModifyState *st, const bson_t *doc)
{
	if (doc->len > QLEAF_MAX_DOCUMENT_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("document too large for MongoDB collection \"%s.%s\"",
						st->database, st->collection_name),
				 errdetail("The document is %u bytes; MongoDB stores documents of at most %d bytes (16 MB).",
						   doc->len, QLEAF_MAX_DOCUMENT_SIZE)));
}

/*
 * The document of a row: the whole-document column's fields, then the
 * columns in only (all when only is NULL) that are not NULL, each at its
 * path.  With add_id, a missing _id is generated.
 */
static bson_t *
build_document(QleafModifyState *st, TupleTableSlot *slot, Bitmapset *only,
			   bool add_id)
{
	DocNode		root;
	DocNode    *id;
	bson_t	   *doc;
	int			i;

	memset(&root, 0, sizeof(root));
	root.kind = DN_DOC;
	slot_getallattrs(slot);

	if (st->root_att >= 0 && !slot->tts_isnull[st->root_att] &&
		(only == NULL || bms_is_member(st->root_att, only)))
	{
		bson_t	   *base;
		bson_iter_t it;

		own_reserve(st);
		base = qleaf_json_object_to_bson(&st->wconvs[st->root_att],
										 slot->tts_values[st->root_att]);
		own_adopt(st, base);
		if (bson_iter_init(&it, base))
		{
			while (bson_iter_next(&it))
			{
				DocNode    *c = doc_add(&root, bson_iter_key(&it),
										bson_iter_key_len(&it), DN_ITER);

				c->iter = iter_copy(&it);
			}
		}
	}

	for (i = 0; i < st->natts; i++)
	{
		if (st->fields[i] == NULL || i == st->root_att || slot->tts_isnull[i])
			continue;
		if (only != NULL && !bms_is_member(i, only))
			continue;
		doc_place(st, &root, i, slot->tts_values[i]);
	}

	doc = own_new(st);
	id = doc_child(&root, "_id", 3);
	if (id != NULL)
	{
		/* _id first, as MongoDB stores it */
		DocNode		only_id;

		memset(&only_id, 0, sizeof(only_id));
		only_id.kind = DN_DOC;
		only_id.children = list_make1(id);
		doc_emit(st, doc, &only_id);
		root.children = list_delete_ptr(root.children, id);
	}
	else if (add_id)
	{
		bson_oid_t	oid;

		bson_oid_init(&oid, NULL);
		bson_append_oid(doc, "_id", 3, &oid);
	}
	doc_emit(st, doc, &root);
	check_document_size(st, doc);
	return doc;
}

/*
 * The filter that finds a row's document: {_id: value}.  A text _id of
 * 24 hex digits may have been read from an ObjectId or from a string:
 * both are looked for.
 */
static bson_t *
id_filter(QleafModifyState *st, Datum id)
{
	bson_t	   *q = own_new(st);
	QleafWriteConv *wc = &st->wconvs[st->id_att];

	qleaf_append_datum(q, "_id", wc, id);
	if (wc->bson_type == QLEAF_BT_AUTO)
	{
		bson_iter_t it;

		if (bson_iter_init_find(&it, q, "_id") && BSON_ITER_HOLDS_OID(&it))
		{
			bson_t	   *q2 = own_new(st);
			bson_t		in;
			bson_t		arr;
			char		hex[25];

			bson_oid_to_string(bson_iter_oid(&it), hex);
			bson_append_document_begin(q2, "_id", 3, &in);
			bson_append_array_begin(&in, "$in", 3, &arr);
			bson_append_oid(&arr, "0", 1, bson_iter_oid(&it));
			bson_append_utf8(&arr, "1", 1, hex, 24);
			bson_append_array_end(&in, &arr);
			bson_append_document_end(q2, &in);
			return q2;
		}
	}
	return q;
}

/* ----------------------------------------------------------------
 *		Sending and errors
 * ----------------------------------------------------------------
 */

/* Add the session (if this write runs in a transaction) to opts. */
static void
append_session(QleafModifyState *st, bson_t *opts)
{
	bson_error_t error;

	if (st->use_txn)
	{
		mongoc_client_session_t *session = qleaf_xact_write_session(st->conn);

		if (!mongoc_client_session_append(session, opts, &error))
			qleaf_report_error(ERROR, st->conn, &error, NULL, NULL);
	}
	else
		qleaf_xact_check_usable();
}

static bool
first_write_error(const bson_t *reply, bson_iter_t *we)
{
	bson_iter_t it;

	if (reply == NULL || !bson_iter_init_find(&it, reply, "writeErrors") ||
		!BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, we))
		return false;
	return bson_iter_next(we) && BSON_ITER_HOLDS_DOCUMENT(we);
}

/*
 * Report a failed write.  A duplicate key is a unique_violation with the
 * key in the detail; a write concern error says the write may have been
 * applied; anything else goes to qleaf_report_error.
 */
static void
report_write_error(QleafModifyState *st, const bson_error_t *error,
				   const bson_t *reply, const char *command)
{
	char	   *what = psprintf("while running %s on collection \"%s.%s\"",
								command, st->database, st->collection_name);
	bson_iter_t we;

	if ((error->domain == MONGOC_ERROR_SERVER ||
		 error->domain == MONGOC_ERROR_COLLECTION ||
		 error->domain == MONGOC_ERROR_QUERY) &&
		(error->code == 11000 || error->code == 11001 || error->code == 12582))
	{
		StringInfoData key;
		const char *index = NULL;
		const char *p;
		bson_iter_t in;

		initStringInfo(&key);
		/* insert: in writeErrors; findAndModify: in the reply itself */
		if (first_write_error(reply, &we) && bson_iter_recurse(&we, &in) &&
			bson_iter_find(&in, "keyValue") && BSON_ITER_HOLDS_DOCUMENT(&in))
			qleaf_append_json_value(&key, &in);
		else if (reply != NULL && bson_iter_init_find(&in, reply, "keyValue") &&
				 BSON_ITER_HOLDS_DOCUMENT(&in))
			qleaf_append_json_value(&key, &in);
		p = strstr(error->message, " index: ");
		if (p != NULL)
		{
			const char *end;

			p += 8;
			end = strchr(p, ' ');
			index = end ? pnstrdup(p, end - p) : pstrdup(p);
		}
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 index ?
				 errmsg("duplicate key value violates unique index \"%s\" of MongoDB collection \"%s.%s\"",
						index, st->database, st->collection_name) :
				 errmsg("duplicate key value violates a unique index of MongoDB collection \"%s.%s\"",
						st->database, st->collection_name),
				 key.len > 0 ?
				 errdetail("Key %s already exists.", key.data) :
				 errdetail("MongoDB error %u: %s", error->code, error->message),
				 errcontext("%s", what)));
	}
	if (error->domain == MONGOC_ERROR_WRITE_CONCERN)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("MongoDB server \"%s\" could not satisfy the write concern",
						qleaf_conn_server_name(st->conn)),
				 errdetail("MongoDB error %u: %s. The write may have been applied on some members.",
						   error->code, error->message),
				 errhint("Check the write concern in the connection string and the state of the replica set."),
				 errcontext("%s", what)));
	/* ShardKeyNotFound: mongos before 7.0 routes findAndModify by shard key */
	if ((error->domain == MONGOC_ERROR_SERVER ||
		 error->domain == MONGOC_ERROR_COLLECTION ||
		 error->domain == MONGOC_ERROR_QUERY) &&
		error->code == 61)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot write to sharded MongoDB collection \"%s.%s\" by _id alone",
						st->database, st->collection_name),
				 errdetail("MongoDB error %u: %s. UPDATE and DELETE find each row by _id, and MongoDB before 7.0 routes a %s on a sharded collection only by its shard key.",
						   error->code, error->message, command),
				 errhint("Write to collections sharded on _id only, or use MongoDB 7.0 or later, or change these documents in MongoDB itself."),
				 errcontext("%s", what)));
	if ((error->domain == MONGOC_ERROR_SERVER ||
		 error->domain == MONGOC_ERROR_COLLECTION) &&
		error->code == 20 && st->use_txn)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("MongoDB server \"%s\" cannot run transactions",
						qleaf_conn_server_name(st->conn)),
				 errdetail("MongoDB error %u: %s", error->code, error->message),
				 errhint("Transactions need a replica set or a sharded cluster.  Set the option transactions 'false' on the server or the table to write without them."),
				 errcontext("%s", what)));
	if (error->domain == MONGOC_ERROR_COMMAND &&
		error->code == MONGOC_ERROR_COMMAND_INVALID_ARG)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("MongoDB refused the document for collection \"%s.%s\"",
						st->database, st->collection_name),
				 errdetail_internal("%s", error->message),
				 errcontext("%s", what)));
	qleaf_report_error(ERROR, st->conn, error, reply, what);
}

/* Send documents in one insert command. */
static void
send_insert(QleafModifyState *st, bson_t **docs, int n)
{
	bson_t	   *opts = own_new(st);
	bson_error_t error;
	bool		ok;
	uint64		before = qleaf_conn_stats(st->conn)->round_trips;

	if (n == 0)
		return;
	BSON_APPEND_BOOL(opts, "ordered", true);
	append_session(st, opts);
	st->reply_live = true;
	ok = mongoc_collection_insert_many(st->coll, (const bson_t **) docs, n,
									   opts, st->reply, &error);
	st->commands += qleaf_conn_stats(st->conn)->round_trips - before;
	if (!ok)
		report_write_error(st, &error, st->reply, "insert");
	st->documents += n;
	bson_destroy(st->reply);
	st->reply_live = false;
}

/*
 * Run findAndModify on the document of a row; returns the document it
 * returns (after an update, before a remove), or NULL if there was none.
 * The result lives in st->reply.
 */
static bool
send_find_and_modify(QleafModifyState *st, bson_t *query, bson_t *update,
					 bson_iter_t *value)
{
	bson_t	   *extra = own_new(st);
	bson_t		collation;
	bson_error_t error;
	bool		ok;
	uint64		before = qleaf_conn_stats(st->conn)->round_trips;

	bson_append_document_begin(extra, "collation", -1, &collation);
	bson_append_utf8(&collation, "locale", -1, "simple", -1);
	bson_append_document_end(extra, &collation);
	append_session(st, extra);

	st->fam = mongoc_find_and_modify_opts_new();
	if (update != NULL)
	{
		mongoc_find_and_modify_opts_set_update(st->fam, update);
		mongoc_find_and_modify_opts_set_flags(st->fam,
											  MONGOC_FIND_AND_MODIFY_RETURN_NEW);
	}
	else
		mongoc_find_and_modify_opts_set_flags(st->fam,
											  MONGOC_FIND_AND_MODIFY_REMOVE);
	if (!st->fill_slot)
	{
		bson_t	   *fields = own_new(st);

		BSON_APPEND_INT32(fields, "_id", 1);
		mongoc_find_and_modify_opts_set_fields(st->fam, fields);
	}
	mongoc_find_and_modify_opts_append(st->fam, extra);

	st->reply_live = true;
	ok = mongoc_collection_find_and_modify_with_opts(st->coll, query, st->fam,
													 st->reply, &error);
	st->commands += qleaf_conn_stats(st->conn)->round_trips - before;
	if (!ok)
		report_write_error(st, &error, st->reply, "findAndModify");
	if (bson_iter_init_find(value, st->reply, "value") &&
		BSON_ITER_HOLDS_DOCUMENT(value))
	{
		st->documents++;
		return true;
	}
	return false;
}

/*
 * Fill slot with the row of doc, converted as a scan converts it; values
 * go to the executor's per-tuple memory.
 */
static void
fill_slot_from_document(QleafModifyState *st, EState *estate,
						TupleTableSlot *slot, const bson_t *doc)
{
	MemoryContext oldcxt;
	int			i;

	oldcxt = MemoryContextSwitchTo(GetPerTupleMemoryContext(estate));
	ExecClearTuple(slot);
	for (i = 0; i < st->natts; i++)
	{
		bson_iter_t it;
		bson_iter_t found;

		slot->tts_values[i] = (Datum) 0;
		slot->tts_isnull[i] = true;
		if (st->fields[i] == NULL)
			continue;
		if (i == st->root_att)
		{
			if (st->rconvs[i].typid == JSONBOID)
				slot->tts_values[i] = qleaf_bson_document_to_jsonb(doc);
			else
			{
				/* a json column: render the document as the read path does */
				bson_t	   *wrap = own_new(st);
				bson_iter_t wi;

				bson_append_document(wrap, "d", 1, doc);
				if (bson_iter_init_find(&wi, wrap, "d"))
					slot->tts_values[i] =
						qleaf_bson_to_datum(&st->rconvs[i], &wi, doc,
											&slot->tts_isnull[i]);
				continue;
			}
			slot->tts_isnull[i] = false;
			continue;
		}
		if (!bson_iter_init(&it, doc) ||
			!bson_iter_find_descendant(&it, st->fields[i], &found))
			continue;
		slot->tts_values[i] = qleaf_bson_to_datum(&st->rconvs[i], &found, doc,
												  &slot->tts_isnull[i]);
	}
	ExecStoreVirtualTuple(slot);
	MemoryContextSwitchTo(oldcxt);
}

/* ----------------------------------------------------------------
 *		INSERT and COPY
 * ----------------------------------------------------------------
 */

static void
qleafBeginForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
						List *fdw_private, int subplan_index, int eflags)
{
	ModifyTable *plan = (ModifyTable *) mtstate->ps.plan;

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	/* RETURNING is set up after this: look at the plan */
	rinfo->ri_FdwState = modify_begin(mtstate->ps.state, rinfo,
									  mtstate->operation,
									  outerPlanState(mtstate)->plan,
									  plan->returningLists != NIL);
}

static void
flush_pending(QleafModifyState *st)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(st->rowcxt);

	send_insert(st, st->pending, st->npending);
	st->npending = 0;
	free_owned(st);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(st->rowcxt);
}

static TupleTableSlot *
qleafExecForeignInsert(EState *estate, ResultRelInfo *rinfo,
					   TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	QleafModifyState *st = (QleafModifyState *) rinfo->ri_FdwState;
	MemoryContext oldcxt;
	bson_t	   *doc;

	oldcxt = MemoryContextSwitchTo(st->rowcxt);
	doc = build_document(st, slot, NULL, true);
	if (st->buffering)
	{
		/* COPY FROM: send full batches */
		if (st->pending == NULL)
			st->pending = MemoryContextAlloc(st->cxt,
											 sizeof(bson_t *) * st->batch_size);
		st->pending[st->npending++] = doc;
		MemoryContextSwitchTo(oldcxt);
		if (st->npending >= st->batch_size)
			flush_pending(st);
		return slot;
	}
	send_insert(st, &doc, 1);
	if (st->fill_slot)
		fill_slot_from_document(st, estate, slot, doc);
	free_owned(st);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(st->rowcxt);
	return slot;
}

static TupleTableSlot **
qleafExecForeignBatchInsert(EState *estate, ResultRelInfo *rinfo,
							TupleTableSlot **slots, TupleTableSlot **planSlots,
							int *numSlots)
{
	QleafModifyState *st = (QleafModifyState *) rinfo->ri_FdwState;
	MemoryContext oldcxt;
	bson_t	  **docs;
	int			i;

	oldcxt = MemoryContextSwitchTo(st->rowcxt);
	docs = palloc(sizeof(bson_t *) * *numSlots);
	for (i = 0; i < *numSlots; i++)
		docs[i] = build_document(st, slots[i], NULL, true);
	send_insert(st, docs, *numSlots);
	free_owned(st);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(st->rowcxt);
	return slots;
}

/*
 * Rows per insert command.  One when each row must come back at once:
 * PostgreSQL does not process RETURNING for batches.
 */
static int
qleafGetForeignModifyBatchSize(ResultRelInfo *rinfo)
{
	QleafModifyState *st = (QleafModifyState *) rinfo->ri_FdwState;
	Relation	rel = rinfo->ri_RelationDesc;
	ForeignTable *table;

	if (rinfo->ri_projectReturning != NULL ||
		rinfo->ri_WithCheckOptions != NIL ||
		(rinfo->ri_TrigDesc && (rinfo->ri_TrigDesc->trig_insert_before_row ||
								rinfo->ri_TrigDesc->trig_insert_after_row)))
		return 1;
	if (st != NULL)
		return st->batch_size;
	table = GetForeignTable(RelationGetRelid(rel));
	return write_batch_size(table, GetForeignServer(table->serverid));
}

/*
 * COPY FROM (whose ModifyTableState has no plan) and rows routed to a
 * foreign partition.  COPY buffers its rows and sends them batch_size at
 * a time, unless AFTER ROW triggers need each row as it is written.
 */
static void
qleafBeginForeignInsert(ModifyTableState *mtstate, ResultRelInfo *rinfo)
{
	QleafModifyState *st;

	st = modify_begin(mtstate->ps.state, rinfo, CMD_INSERT, NULL, false);
	st->buffering = (mtstate->ps.plan == NULL && !st->fill_slot);
	rinfo->ri_FdwState = st;
}

static void
qleafEndForeignInsert(EState *estate, ResultRelInfo *rinfo)
{
	QleafModifyState *st = (QleafModifyState *) rinfo->ri_FdwState;

	if (st == NULL)
		return;
	if (st->npending > 0)
		flush_pending(st);
	MemoryContextDelete(st->cxt);
	rinfo->ri_FdwState = NULL;
}

/* ----------------------------------------------------------------
 *		UPDATE and DELETE
 * ----------------------------------------------------------------
 */

static Datum
row_id(QleafModifyState *st, TupleTableSlot *planSlot)
{
	bool		isnull;
	Datum		id = ExecGetJunkAttribute(planSlot, st->junk_att, &isnull);

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("cannot find the MongoDB document of a row whose _id is NULL"),
				 errdetail("UPDATE and DELETE find each document by its _id.")));
	return id;
}

/*
 * Whether this statement already updated the document the filter finds;
 * remembers it if not.
 */
static bool
already_updated(QleafModifyState *st, const bson_t *filter)
{
	const uint8_t *data = bson_get_data(filter);
	uint64		h = hash_bytes_extended(data, filter->len, 0);
	SeenId	   *e;
	bool		found;
	ListCell   *lc;
	bytea	   *copy;

	if (st->seen_ids == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(SeenId);
		ctl.hcxt = st->cxt;
		st->seen_ids = hash_create("qleaf_fdw updated _ids", 256, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	e = hash_search(st->seen_ids, &h, HASH_ENTER, &found);
	if (!found)
		e->filters = NIL;
	foreach(lc, e->filters)
	{
		bytea	   *b = (bytea *) lfirst(lc);

		if (VARSIZE(b) - VARHDRSZ == filter->len &&
			memcmp(VARDATA(b), data, filter->len) == 0)
			return true;
	}
	copy = MemoryContextAlloc(st->cxt, VARHDRSZ + filter->len);
	SET_VARSIZE(copy, VARHDRSZ + filter->len);
	memcpy(VARDATA(copy), data, filter->len);
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(st->cxt);

		e->filters = lappend(e->filters, copy);
		MemoryContextSwitchTo(oldcxt);
	}
	return false;
}

/*
 * One row's findAndModify (update NULL: remove it); with RETURNING, slot
 * is filled from the document MongoDB returns.  False when no document
 * matched.
 */
static bool
modify_one(QleafModifyState *st, EState *estate, TupleTableSlot *slot,
		   bson_t *query, bson_t *update)
{
	bson_iter_t value;
	bson_t		doc;
	const uint8_t *data;
	uint32_t	len;

	if (!send_find_and_modify(st, query, update, &value))
		return false;
	if (!st->fill_slot)
		return true;
	bson_iter_document(&value, &len, &data);
	if (!bson_init_static(&doc, data, len))
		elog(ERROR, "qleaf_fdw: invalid document in findAndModify reply");
	fill_slot_from_document(st, estate, slot, &doc);
	return true;
}

static TupleTableSlot *
qleafExecForeignUpdate(EState *estate, ResultRelInfo *rinfo,
					   TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	QleafModifyState *st = (QleafModifyState *) rinfo->ri_FdwState;
	MemoryContext oldcxt;
	Datum		id;
	bson_t	   *query;
	bson_t	   *update;
	TupleTableSlot *result = slot;

	oldcxt = MemoryContextSwitchTo(st->rowcxt);
	id = row_id(st, planSlot);
	slot_getallattrs(slot);

	/* _id is immutable in MongoDB */
	if (bms_is_member(st->id_att, st->updated))
	{
		Form_pg_attribute attr = TupleDescAttr(RelationGetDescr(st->rel),
											   st->id_att);

		if (slot->tts_isnull[st->id_att] ||
			!datum_image_eq(slot->tts_values[st->id_att], id,
							attr->attbyval, attr->attlen))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot change the _id of a MongoDB document"),
					 errdetail("MongoDB's _id field is immutable."),
					 errhint("Insert a new row and delete the old one instead.")));
	}

	query = id_filter(st, id);
	if (already_updated(st, query))
	{
		free_owned(st);
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(st->rowcxt);
		return NULL;
	}
	if (st->root_att >= 0 && bms_is_member(st->root_att, st->updated))
	{
		Bitmapset  *cols = bms_copy(st->updated);

		/* a replacement: the new document, with the columns set */
		if (slot->tts_isnull[st->root_att])
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("the whole-document column \"%s\" cannot be set to NULL",
							st->wconvs[st->root_att].colname),
					 errhint("Use DELETE to remove a document.")));
		cols = bms_del_member(cols, st->id_att);
		update = build_document(st, slot, cols, false);
	}
	else
	{
		bson_t		set;
		bson_t		unset;
		bool		any_set = false;
		bool		any_unset = false;
		int			i = -1;

		update = own_new(st);
		bson_append_document_begin(update, "$set", 4, &set);
		while ((i = bms_next_member(st->updated, i)) >= 0)
		{
			if (i == st->id_att || st->fields[i] == NULL ||
				slot->tts_isnull[i])
				continue;
			qleaf_append_datum(&set, st->fields[i], &st->wconvs[i],
							   slot->tts_values[i]);
			any_set = true;
		}
		bson_append_document_end(update, &set);
		i = -1;
		bson_append_document_begin(update, "$unset", 6, &unset);
		while ((i = bms_next_member(st->updated, i)) >= 0)
		{
			if (i == st->id_att || st->fields[i] == NULL ||
				!slot->tts_isnull[i])
				continue;
			bson_append_utf8(&unset, st->fields[i], -1, "", 0);
			any_unset = true;
		}
		bson_append_document_end(update, &unset);

		if (!any_set || !any_unset)
		{
			/* MongoDB before 5.0 refuses an empty $set or $unset */
			bson_t	   *trimmed = own_new(st);
			bson_iter_t it;

			if (bson_iter_init(&it, update))
			{
				while (bson_iter_next(&it))
				{
					if ((strcmp(bson_iter_key(&it), "$set") == 0 && !any_set) ||
						(strcmp(bson_iter_key(&it), "$unset") == 0 && !any_unset))
						continue;
					bson_append_iter(trimmed, NULL, 0, &it);
				}
			}
			if (!any_set && !any_unset)
			{
				bson_t		s;

				/*
				 * Only _id was set, to itself: an update that changes
				 * nothing but still finds (and returns) the document.
				 */
				bson_append_document_begin(trimmed, "$setOnInsert", 12, &s);
				bson_append_bool(&s, "_id", 3, true);
				bson_append_document_end(trimmed, &s);
			}
			update = trimmed;
		}
		check_document_size(st, update);
	}

	if (!modify_one(st, estate, slot, query, update))
		result = NULL;
	free_owned(st);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(st->rowcxt);
	return result;
}

static TupleTableSlot *
qleafExecForeignDelete(EState *estate, ResultRelInfo *rinfo,
					   TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	QleafModifyState *st = (QleafModifyState *) rinfo->ri_FdwState;
	MemoryContext oldcxt;
	bson_t	   *query;
	TupleTableSlot *result = slot;

	oldcxt = MemoryContextSwitchTo(st->rowcxt);
	query = id_filter(st, row_id(st, planSlot));
	if (!modify_one(st, estate, slot, query, NULL))
		result = NULL;
	free_owned(st);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(st->rowcxt);
	return result;
}

static void
qleafEndForeignModify(EState *estate, ResultRelInfo *rinfo)
{
	QleafModifyState *st = (QleafModifyState *) rinfo->ri_FdwState;

	if (st == NULL)
		return;
	MemoryContextDelete(st->cxt);
	rinfo->ri_FdwState = NULL;
}

static void
qleafExplainForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
						  List *fdw_private, int subplan_index,
						  ExplainState *es)
{
	Relation	rel = rinfo->ri_RelationDesc;
	ForeignTable *table = GetForeignTable(RelationGetRelid(rel));
	ForeignServer *server = GetForeignServer(table->serverid);
	QleafTableOptions opts;

	qleaf_get_table_options(table, server, &opts);
	ExplainPropertyText("Collection",
						psprintf("%s.%s", opts.database, opts.collection), es);
	if (mtstate->operation == CMD_INSERT)
		ExplainPropertyInteger("Batch Size", NULL,
							   rinfo->ri_BatchSize > 0 ? rinfo->ri_BatchSize :
							   qleafGetForeignModifyBatchSize(rinfo), es);
	if (es->analyze && rinfo->ri_FdwState != NULL)
	{
		QleafModifyState *st = (QleafModifyState *) rinfo->ri_FdwState;

		ExplainPropertyUInteger("MongoDB Commands", NULL, st->commands, es);
		ExplainPropertyUInteger("Documents Written", NULL, st->documents, es);
	}
	if (es->verbose)
		ExplainPropertyText("MongoDB Transaction",
							use_transactions(table, server) ? "on" : "off",
							es);
}

/* ----------------------------------------------------------------
 *		Direct modify: one updateMany / deleteMany
 * ----------------------------------------------------------------
 */

/* fdw_private of a ForeignScan that runs a direct modify */
enum FdwDirectModifyPrivateIndex
{
	/* String "qleaf direct modify" */
	FdwDirectPrivateMarker,
	/* bytea Const: the scan's pipeline, whose $match is the filter */
	FdwDirectPrivatePipeline,
	FdwDirectPrivateDatabase,
	FdwDirectPrivateCollection,
	/* integer list: attribute numbers an UPDATE sets, in fdw_exprs order */
	FdwDirectPrivateSetAttrs,
	/* Integer: how many fdw_exprs fill the $match (the rest are SET values) */
	FdwDirectPrivateMatchParams,
	/* Integer: whether to count rows in es_processed */
	FdwDirectPrivateSetProcessed
};

#define QLEAF_DIRECT_MARKER "qleaf direct modify"

typedef struct QleafDirectState
{
	QleafModifyState *st;		/* connection, collection, conversions */
	List	   *match_states;	/* ExprStates filling the $match */
	List	   *set_states;		/* ExprStates of the SET values */
	List	   *set_attrs;
	bool		set_processed;
	bool		done;
	uint64		matched;
} QleafDirectState;

/*
 * The $match document of a scan pipeline made only of an optional first
 * $match and $project stages; false for any other pipeline.
 */
static bool
pipeline_match_only(const bytea *pipeline, bool *has_match)
{
	bson_t		stages;
	bson_iter_t it;
	bool		first = true;

	*has_match = false;
	if (!bson_init_static(&stages, (const uint8_t *) VARDATA_ANY(pipeline),
						  VARSIZE_ANY_EXHDR(pipeline)) ||
		!bson_iter_init(&it, &stages))
		return false;
	while (bson_iter_next(&it))
	{
		bson_iter_t stage;
		const char *name;

		if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &stage) ||
			!bson_iter_next(&stage))
			return false;
		name = bson_iter_key(&stage);
		if (first && strcmp(name, "$match") == 0)
			*has_match = true;
		else if (strcmp(name, "$project") != 0)
			return false;
		first = false;
	}
	return true;
}

/*
 * UPDATE or DELETE as one command when the scan below ships its whole
 * WHERE exactly (no local filter), no RETURNING is asked, and every SET
 * value is known before the command runs (no column references, nothing
 * volatile).  Otherwise the row-by-row path runs.
 */
static bool
qleafPlanDirectModify(PlannerInfo *root, ModifyTable *plan,
					  Index resultRelation, int subplan_index)
{
	Plan	   *subplan = outerPlan(plan);
	ForeignScan *fscan;
	RangeTblEntry *rte;
	Relation	rel;
	List	   *set_attrs = NIL;
	List	   *set_exprs = NIL;
	List	   *fdw_private;
	Const	   *pipeline;
	bool		has_match;
	AttrNumber	id_att;
	bool		ok = true;

	if (plan->operation != CMD_UPDATE && plan->operation != CMD_DELETE)
		return false;
	if (plan->returningLists != NIL)
		return false;
	if (subplan == NULL || !IsA(subplan, ForeignScan))
		return false;
	fscan = (ForeignScan *) subplan;
	if (fscan->scan.scanrelid != resultRelation ||
		fscan->scan.plan.qual != NIL || qleaf_is_changes_plan(fscan) ||
		list_length(fscan->fdw_private) <= FdwScanPrivateCollection)
		return false;
	pipeline = list_nth_node(Const, fscan->fdw_private,
							 FdwScanPrivatePipeline);
	if (!pipeline_match_only(DatumGetByteaPP(pipeline->constvalue),
							 &has_match))
		return false;

	rte = planner_rt_fetch(resultRelation, root);
	rel = table_open(rte->relid, NoLock);
	id_att = id_column(rel);
	if (plan->operation == CMD_UPDATE)
	{
		List	   *processed_tlist = NIL;
		List	   *update_colnos = NIL;
		ListCell   *lc;
		ListCell   *lc2;
		Oid			relid = RelationGetRelid(rel);

		get_translated_update_targetlist(root, resultRelation,
										 &processed_tlist, &update_colnos);
		forboth(lc, processed_tlist, lc2, update_colnos)
		{
			TargetEntry *tle = lfirst_node(TargetEntry, lc);
			AttrNumber	attno = lfirst_int(lc2);
			Form_pg_attribute attr = TupleDescAttr(RelationGetDescr(rel),
												   attno - 1);
			bool		dummy = false;
			char	   *field;

			field = qleaf_get_column_field(relid, attno,
										   NameStr(attr->attname), &dummy);
			if (attno == id_att || qleaf_is_root_field(field) ||
				contain_var_clause((Node *) tle->expr) ||
				contain_volatile_functions((Node *) tle->expr))
			{
				ok = false;
				break;
			}
			set_attrs = lappend_int(set_attrs, attno);
			set_exprs = lappend(set_exprs, tle->expr);
		}
		if (set_attrs == NIL)
			ok = false;
	}
	table_close(rel, NoLock);
	if (!ok)
		return false;

	fdw_private = list_make5(makeString(QLEAF_DIRECT_MARKER),
							 pipeline,
							 list_nth(fscan->fdw_private, FdwScanPrivateDatabase),
							 list_nth(fscan->fdw_private, FdwScanPrivateCollection),
							 set_attrs);
	fdw_private = lappend(fdw_private,
						  makeInteger(list_length(fscan->fdw_exprs)));
	fdw_private = lappend(fdw_private, makeInteger(plan->canSetTag ? 1 : 0));

	fscan->operation = plan->operation;
	fscan->resultRelation = resultRelation;
	fscan->fdw_private = fdw_private;
	fscan->fdw_exprs = list_concat(list_copy(fscan->fdw_exprs), set_exprs);
	return true;
}

static void
qleafBeginDirectModify(ForeignScanState *node, int eflags)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	EState	   *estate = node->ss.ps.state;
	QleafDirectState *ds;
	int			nmatch;
	List	   *states;
	int			i;
	ListCell   *lc;

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	ds = palloc0(sizeof(QleafDirectState));
	node->fdw_state = ds;
	ds->st = modify_begin(estate, node->resultRelInfo, fsplan->operation,
						  NULL, false);
	ds->set_attrs = (List *) list_nth(fsplan->fdw_private,
									  FdwDirectPrivateSetAttrs);
	ds->set_processed = intVal(list_nth(fsplan->fdw_private,
										FdwDirectPrivateSetProcessed)) != 0;
	nmatch = intVal(list_nth(fsplan->fdw_private,
							 FdwDirectPrivateMatchParams));
	states = ExecInitExprList(fsplan->fdw_exprs, (PlanState *) node);
	i = 0;
	foreach(lc, states)
	{
		if (i++ < nmatch)
			ds->match_states = lappend(ds->match_states, lfirst(lc));
		else
			ds->set_states = lappend(ds->set_states, lfirst(lc));
	}
}

static void
run_direct_modify(ForeignScanState *node, QleafDirectState *ds)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	QleafModifyState *st = ds->st;
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	Const	   *c = list_nth_node(Const, fsplan->fdw_private,
								  FdwDirectPrivatePipeline);
	bytea	   *pipeline = DatumGetByteaPP(c->constvalue);
	bson_t		stages;
	bson_iter_t it;
	bson_t	   *filter;
	bson_t	   *opts;
	bson_error_t error;
	bool		ok;
	MemoryContext oldcxt;
	uint64		before;

	oldcxt = MemoryContextSwitchTo(st->rowcxt);
	if (ds->match_states != NIL)
		pipeline = qleaf_fill_pipeline(pipeline, ds->match_states, econtext);

	/* the filter: the first stage's $match, or everything */
	filter = own_new(st);
	if (bson_init_static(&stages, (const uint8_t *) VARDATA_ANY(pipeline),
						 VARSIZE_ANY_EXHDR(pipeline)) &&
		bson_iter_init(&it, &stages) && bson_iter_next(&it) &&
		BSON_ITER_HOLDS_DOCUMENT(&it))
	{
		bson_iter_t stage;

		if (bson_iter_recurse(&it, &stage) && bson_iter_next(&stage) &&
			strcmp(bson_iter_key(&stage), "$match") == 0 &&
			BSON_ITER_HOLDS_DOCUMENT(&stage))
		{
			const uint8_t *data;
			uint32_t	len;
			bson_t		m;

			bson_iter_document(&stage, &len, &data);
			if (bson_init_static(&m, data, len))
				bson_concat(filter, &m);
		}
	}

	opts = own_new(st);
	{
		bson_t		collation;

		bson_append_document_begin(opts, "collation", -1, &collation);
		bson_append_utf8(&collation, "locale", -1, "simple", -1);
		bson_append_document_end(opts, &collation);
	}
	append_session(st, opts);

	before = qleaf_conn_stats(st->conn)->round_trips;
	st->reply_live = true;
	if (fsplan->operation == CMD_UPDATE)
	{
		bson_t	   *update = own_new(st);
		bson_t		set;
		bson_t		unset;
		bool		any_set = false;
		bool		any_unset = false;
		ListCell   *la;
		ListCell   *le;

		bson_append_document_begin(update, "$set", 4, &set);
		forboth(la, ds->set_attrs, le, ds->set_states)
		{
			int			att = lfirst_int(la) - 1;
			bool		isnull;
			Datum		v = ExecEvalExpr((ExprState *) lfirst(le), econtext,
										 &isnull);

			if (isnull)
				continue;
			qleaf_append_datum(&set, st->fields[att], &st->wconvs[att], v);
			any_set = true;
		}
		bson_append_document_end(update, &set);
		bson_append_document_begin(update, "$unset", 6, &unset);
		forboth(la, ds->set_attrs, le, ds->set_states)
		{
			int			att = lfirst_int(la) - 1;
			bool		isnull;

			(void) ExecEvalExpr((ExprState *) lfirst(le), econtext, &isnull);
			if (!isnull)
				continue;
			bson_append_utf8(&unset, st->fields[att], -1, "", 0);
			any_unset = true;
		}
		bson_append_document_end(update, &unset);
		if (!any_set || !any_unset)
		{
			bson_t	   *trimmed = own_new(st);
			bson_iter_t ui;

			if (bson_iter_init(&ui, update))
				while (bson_iter_next(&ui))
					if ((strcmp(bson_iter_key(&ui), "$set") == 0 && any_set) ||
						(strcmp(bson_iter_key(&ui), "$unset") == 0 && any_unset))
						bson_append_iter(trimmed, NULL, 0, &ui);
			update = trimmed;
		}
		ok = mongoc_collection_update_many(st->coll, filter, update, opts,
										   st->reply, &error);
		st->commands += qleaf_conn_stats(st->conn)->round_trips - before;
		if (!ok)
			report_write_error(st, &error, st->reply, "update");
		if (bson_iter_init_find(&it, st->reply, "matchedCount"))
			ds->matched = bson_iter_as_int64(&it);
	}
	else
	{
		ok = mongoc_collection_delete_many(st->coll, filter, opts, st->reply,
										   &error);
		st->commands += qleaf_conn_stats(st->conn)->round_trips - before;
		if (!ok)
			report_write_error(st, &error, st->reply, "delete");
		if (bson_iter_init_find(&it, st->reply, "deletedCount"))
			ds->matched = bson_iter_as_int64(&it);
	}
	st->documents += ds->matched;
	free_owned(st);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(st->rowcxt);
}

static TupleTableSlot *
qleafIterateDirectModify(ForeignScanState *node)
{
	QleafDirectState *ds = (QleafDirectState *) node->fdw_state;
	EState	   *estate = node->ss.ps.state;
	Instrumentation *instr = node->ss.ps.instrument;

	if (!ds->done)
	{
		run_direct_modify(node, ds);
		ds->done = true;
		if (ds->set_processed)
			estate->es_processed += ds->matched;
		if (instr)
			instr->tuplecount += ds->matched;
	}
	return ExecClearTuple(node->ss.ss_ScanTupleSlot);
}

static void
qleafEndDirectModify(ForeignScanState *node)
{
	QleafDirectState *ds = (QleafDirectState *) node->fdw_state;

	if (ds == NULL || ds->st == NULL)
		return;
	MemoryContextDelete(ds->st->cxt);
	ds->st = NULL;
}

static void
qleafExplainDirectModify(ForeignScanState *node, ExplainState *es)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	List	   *fdw_private = fsplan->fdw_private;
	QleafDirectState *ds = (QleafDirectState *) node->fdw_state;

	ExplainPropertyText("Collection",
						psprintf("%s.%s",
								 strVal(list_nth(fdw_private, FdwDirectPrivateDatabase)),
								 strVal(list_nth(fdw_private, FdwDirectPrivateCollection))),
						es);
	ExplainPropertyText("MongoDB Command",
						fsplan->operation == CMD_UPDATE ?
						"update (multi)" : "delete (limit 0)", es);
	if (es->verbose)
	{
		Const	   *c = list_nth_node(Const, fdw_private,
									  FdwDirectPrivatePipeline);
		bytea	   *pipeline = DatumGetByteaPP(c->constvalue);
		bson_t		stages;
		bson_iter_t it;
		bson_iter_t stage;
		StringInfoData json;

		/* the first stage's $match; placeholders show as {"$param": ...} */
		initStringInfo(&json);
		if (bson_init_static(&stages, (const uint8_t *) VARDATA_ANY(pipeline),
							 VARSIZE_ANY_EXHDR(pipeline)) &&
			bson_iter_init(&it, &stages) && bson_iter_next(&it) &&
			BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &stage) &&
			bson_iter_next(&stage) && strcmp(bson_iter_key(&stage), "$match") == 0)
			qleaf_append_json_value(&json, &stage);
		else
			appendStringInfoString(&json, "{}");
		ExplainPropertyText("Filter", json.data, es);
		if (fsplan->operation == CMD_UPDATE)
		{
			List	   *names = NIL;
			ListCell   *lc;
			Relation	rel = node->ss.ss_currentRelation;

			foreach(lc, (List *) list_nth(fdw_private, FdwDirectPrivateSetAttrs))
			{
				AttrNumber	attno = lfirst_int(lc);
				Form_pg_attribute attr = TupleDescAttr(RelationGetDescr(rel),
													   attno - 1);
				bool		dummy = false;

				names = lappend(names,
								qleaf_get_column_field(RelationGetRelid(rel), attno,
													   NameStr(attr->attname),
													   &dummy));
			}
			ExplainPropertyList("Fields Set", names, es);
		}
	}
	if (es->analyze && ds != NULL)
		ExplainPropertyUInteger("Documents Matched", NULL, ds->matched, es);
}

void
qleaf_modify_routines(FdwRoutine *routine)
{
	routine->AddForeignUpdateTargets = qleafAddForeignUpdateTargets;
	routine->PlanForeignModify = NULL;
	routine->BeginForeignModify = qleafBeginForeignModify;
	routine->ExecForeignInsert = qleafExecForeignInsert;
	routine->ExecForeignBatchInsert = qleafExecForeignBatchInsert;
	routine->GetForeignModifyBatchSize = qleafGetForeignModifyBatchSize;
	routine->ExecForeignUpdate = qleafExecForeignUpdate;
	routine->ExecForeignDelete = qleafExecForeignDelete;
	routine->EndForeignModify = qleafEndForeignModify;
	routine->BeginForeignInsert = qleafBeginForeignInsert;
	routine->EndForeignInsert = qleafEndForeignInsert;
	routine->IsForeignRelUpdatable = qleafIsForeignRelUpdatable;
	routine->ExplainForeignModify = qleafExplainForeignModify;
	routine->PlanDirectModify = qleafPlanDirectModify;
	routine->BeginDirectModify = qleafBeginDirectModify;
	routine->IterateDirectModify = qleafIterateDirectModify;
	routine->EndDirectModify = qleafEndDirectModify;
	routine->ExplainDirectModify = qleafExplainDirectModify;
}

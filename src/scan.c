/*-------------------------------------------------------------------------
 *
 * scan.c
 *		  run a pipeline and turn the documents it returns into rows
 *
 * Rules of this file:
 * - Every libmongoc object (connection reference, collection, cursor) is
 *   owned by the scan's memory context, whose reset callback frees it.
 *   An ERROR anywhere, in our code or in conversion, frees them when the
 *   executor's memory goes away; End and ReScan free them on the happy
 *   path.  Nothing is freed only on the happy path.
 * - Documents are read where libmongoc received them: each document is
 *   walked in place and every value is converted straight into the row's
 *   Datum.  No per-document copy, no text round trip.
 * - The walk does what bson_iter_next would for the usual element types,
 *   with the same bounds checks, and hands anything else (another type,
 *   anything that fails a check, a value the fast conversions do not take)
 *   to libbson and the general conversion from the same element, so
 *   malformed input and unusual values are judged by them alone.
 * - A key is matched to its column by parsing the short key the
 *   projection gave it ("c<N>" or "_id"), once: the documents of one scan
 *   come with the same keys in the same order, and mostly the same types,
 *   so the type byte and key at each position of the previous document
 *   are remembered and one masked 8-byte compare recognises both in the
 *   next, with the size of a fixed-size value.
 * - A row costs no allocation on its common paths: string, ObjectId and
 *   decimal values go to a row arena reused row after row, so a row's
 *   by-reference values live until the next row is fetched.
 * - Batches are streamed: one reply at a time, never the whole result.
 * - Running out of documents is checked against the cursor's error: an
 *   error from the server at any batch is an ERROR, never fewer rows.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "qleaf_fdw.h"
#include "modify.h"

#include "access/tupdesc.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/rel.h"

/* Documents per getMore when no batch size is set. */
#define QLEAF_GETMORE_BATCH_SIZE	10000

struct QleafScan
{
	MemoryContext cxt;			/* owns this struct and its libmongoc objects */
	MemoryContextCallback cleanup;

	ForeignServer *server;
	UserMapping *user;
	QleafConn  *conn;			/* reference, released by cleanup */
	const QleafConnStats *stats;	/* conn's */
	mongoc_collection_t *collection;
	mongoc_cursor_t *cursor;

	char	   *database;
	char	   *collection_name;
	char	   *what;			/* error context: what we were doing */
	char	   *joined_key;		/* key of a joined subdocument, or NULL */
	bson_t		pipeline;		/* static, over pipeline_data */
	uint8_t    *pipeline_data;
	int			batch_size;	/* 0: the first batch as the server sizes
								 * it, then QLEAF_GETMORE_BATCH_SIZE */
	bool		batch_grown;	/* getMore batch size set */

	int			natts;			/* attributes in a row */
	int			nkeys;			/* fetched columns, in key order */
	QleafColumnConv *convs;		/* per key */
	int		   *key_att;		/* per key: attribute index, or -1 */
	int		   *id_keys;		/* keys whose field is "_id" */
	int			n_id_keys;

	QleafRowArena arena;		/* the current row's string and numeric
								 * values */
	struct ScanKeyMemo *memo;	/* per element position: its last type
								 * and key */
	int			nmemo;

	bool		exhausted;
	QleafScanCounters counters;
};

/* First size of a scan's row arena; it grows to fit the largest row. */
#define QLEAF_ROW_ARENA_SIZE	8192

/* What a key names: a fetched column's index k (>= 0), or one of these. */
#define SLOT_NONE	(-1)		/* no fetched column */
#define SLOT_ID		(-2)		/* "_id": the columns in id_keys */

/*
 * The head of the element at one position of the previous document: its
 * type byte, key and NUL (at most 8 bytes, in head, zero-padded), what the
 * key names, the value's size if the type has a fixed one, and for a key
 * naming one column ("_id" too, when one column has it), the fast
 * conversion of that type to it.  A longer head, or none yet, is never
 * matched (mask 0, head 1).
 */
typedef struct ScanKeyMemo
{
	uint64		head;
	uint64		mask;			/* 0xFF over the head's bytes */
	uint32		headlen;		/* bytes: type, key, NUL */
	int32		size;			/* value bytes, or -1: not a fixed size */
	int			slot;
	QleafColumnConv *conv;		/* the one column, or NULL */
	int			att;			/* its attribute index */
	QleafFastOp op;				/* qleaf_fast_op for it, or QF_NONE */
} ScanKeyMemo;

static int	scan_key_slot(QleafScan *scan, const char *key);
static uint32 scan_element_slow(QleafScan *scan, const bson_t *doc,
								uint32 off, Datum *values, bool *isnull);
static void scan_cleanup(void *arg);
static void scan_close_cursor(QleafScan *scan);
static void scan_open_cursor(QleafScan *scan);
static void scan_read_keys(QleafScan *scan, bson_iter_t *iter,
						   const bson_t *doc, Datum *values, bool *isnull);
static void scan_read_joined(QleafScan *scan, bson_iter_t *iter,
							 Datum *values, bool *isnull);

/*
 * A zeroed QleafScan owned by the new memory context cxt, which releases
 * the scan's connection and cursor when it is reset or deleted.
 */
static QleafScan *
scan_alloc(MemoryContext cxt)
{
	QleafScan  *scan = MemoryContextAllocZero(cxt, sizeof(QleafScan));

	scan->cxt = cxt;
	scan->cleanup.func = scan_cleanup;
	scan->cleanup.arg = scan;
	MemoryContextRegisterResetCallback(cxt, &scan->cleanup);
	return scan;
}

/*
 * Prepare a scan of rel running pipeline (a BSON array in a bytea),
 * fetching retrieved_attrs under keys "c<N>" (N = position in the list)
 * or "_id".  The connection is taken at once so that a server that cannot
 * be reached fails here; the pipeline runs at the first qleaf_scan_next.
 */
QleafScan *
qleaf_scan_begin(Relation rel, ForeignServer *server, UserMapping *user,
				 const char *database, const char *collection,
				 const bytea *pipeline, List *retrieved_attrs, List *fields,
				 int batch_size, bool null_on_error, MemoryContext parent)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	QleafScanColumn *cols;
	ListCell   *lc;
	ListCell   *lf;
	int			i = 0;

	cols = palloc0(sizeof(QleafScanColumn) * Max(list_length(retrieved_attrs), 1));
	forboth(lc, retrieved_attrs, lf, fields)
	{
		AttrNumber	attnum = lfirst_int(lc);
		Form_pg_attribute attr = TupleDescAttr(tupdesc, attnum - 1);
		QleafScanColumn *col = &cols[i++];

		col->att = attnum - 1;
		col->typid = attr->atttypid;
		col->typmod = attr->atttypmod;
		col->colname = pstrdup(NameStr(attr->attname));
		col->field = strVal(lfirst(lf));
		col->from_id = strcmp(col->field, "_id") == 0;
		/* the column's own on_conversion_error wins over the table's */
		col->null_on_error = null_on_error;
		(void) qleaf_get_column_field(RelationGetRelid(rel), attnum,
									  col->colname, &col->null_on_error);
	}
	return qleaf_scan_begin_columns(server, user, database, collection,
									pipeline, tupdesc->natts, cols, i, NULL,
									batch_size, parent);
}

/*
 * Prepare a scan that reads nkeys values, key i of the documents the
 * pipeline returns being "c<i>" (or "_id" when keys[i].from_id), into
 * element keys[i].att of rows of natts values: the scans whose rows are
 * built by the pipeline (grouped or limited scans, with no relation of
 * their own).
 */
QleafScan *
qleaf_scan_begin_keys(ForeignServer *server, UserMapping *user,
					  const char *database, const char *collection,
					  const bytea *pipeline, int natts, int nkeys,
					  const QleafScanKey *keys, int batch_size,
					  MemoryContext parent)
{
	return qleaf_scan_begin_columns(server, user, database, collection,
									pipeline, natts, keys, nkeys, NULL,
									batch_size, parent);
}

/*
 * Prepare a scan running pipeline whose documents fill rows of natts
 * attributes: key "c<N>" goes to cols[N] (a column with from_id set
 * reads "_id" instead).  With joined_key, the subdocument under that key
 * holds more "c<N>" keys (a joined document: its conversion errors name
 * its own _id).
 */
QleafScan *
qleaf_scan_begin_columns(ForeignServer *server, UserMapping *user,
						 const char *database, const char *collection,
						 const bytea *pipeline, int natts,
						 const QleafScanColumn *cols, int ncols,
						 const char *joined_key, int batch_size,
						 MemoryContext parent)
{
	MemoryContext oldcxt;
	QleafScan  *scan;
	int			i;

	scan = scan_alloc(AllocSetContextCreate(parent, "qleaf_fdw scan",
											ALLOCSET_SMALL_SIZES));
	oldcxt = MemoryContextSwitchTo(scan->cxt);

	scan->server = server;
	scan->user = user;
	scan->database = pstrdup(database);
	scan->collection_name = pstrdup(collection);
	scan->what = psprintf("while running aggregate on collection \"%s.%s\"",
						  database, collection);
	scan->batch_size = batch_size;
	scan->joined_key = joined_key != NULL ? pstrdup(joined_key) : NULL;

	scan->pipeline_data = palloc(VARSIZE_ANY_EXHDR(pipeline));
	memcpy(scan->pipeline_data, VARDATA_ANY(pipeline),
		   VARSIZE_ANY_EXHDR(pipeline));
	if (!bson_init_static(&scan->pipeline, scan->pipeline_data,
						  VARSIZE_ANY_EXHDR(pipeline)))
		elog(ERROR, "qleaf_fdw: invalid pipeline in plan");

	scan->natts = natts;
	scan->nkeys = ncols;
	scan->convs = palloc0(sizeof(QleafColumnConv) * Max(scan->nkeys, 1));
	scan->key_att = palloc(sizeof(int) * Max(scan->nkeys, 1));
	scan->id_keys = palloc(sizeof(int) * Max(scan->nkeys, 1));

	for (i = 0; i < ncols; i++)
	{
		const QleafScanColumn *col = &cols[i];

		qleaf_init_column_conv(&scan->convs[i], col->typid, col->typmod,
							   pstrdup(col->colname), pstrdup(col->field),
							   col->null_on_error);
		scan->key_att[i] = col->att;
		if (col->from_id)
			scan->id_keys[scan->n_id_keys++] = i;
	}

	/*
	 * In the parent context: a row's values may be looked at until the
	 * next row, even after the scan's own memory is gone.
	 */
	qleaf_arena_init(&scan->arena, parent, QLEAF_ROW_ARENA_SIZE);
	for (i = 0; i < scan->nkeys; i++)
		scan->convs[i].arena = &scan->arena;

	/* the projection's keys, "_id" and one more: nothing remembered yet */
	scan->nmemo = scan->nkeys + 2;
	scan->memo = palloc(sizeof(ScanKeyMemo) * scan->nmemo);
	for (i = 0; i < scan->nmemo; i++)
	{
		scan->memo[i].head = 1;
		scan->memo[i].mask = 0;
		scan->memo[i].headlen = 0;
		scan->memo[i].size = -1;
		scan->memo[i].slot = SLOT_NONE;
		scan->memo[i].conv = NULL;
		scan->memo[i].att = -1;
		scan->memo[i].op = QF_NONE;
	}

	scan->conn = qleaf_get_connection(user, server);
	scan->stats = qleaf_conn_stats(scan->conn);
	scan->collection = mongoc_client_get_collection(qleaf_conn_client(scan->conn),
													scan->database,
													scan->collection_name);

	MemoryContextSwitchTo(oldcxt);
	return scan;
}

/*
 * Free the libmongoc objects of a scan.  Runs when the scan's memory
 * context is reset or deleted: at the end of the scan, or during the
 * cleanup after an ERROR.
 */
static void
scan_cleanup(void *arg)
{
	QleafScan  *scan = (QleafScan *) arg;

	scan_close_cursor(scan);
	if (scan->collection != NULL)
	{
		mongoc_collection_destroy(scan->collection);
		scan->collection = NULL;
	}
	if (scan->conn != NULL)
	{
		QleafConn  *conn = scan->conn;

		scan->conn = NULL;
		qleaf_release_connection(conn);
	}
}

static void
scan_close_cursor(QleafScan *scan)
{
	if (scan->cursor != NULL)
	{
		mongoc_cursor_t *cursor = scan->cursor;

		scan->cursor = NULL;
		mongoc_cursor_destroy(cursor);
	}
	scan->exhausted = false;
	scan->batch_grown = false;
}

static void
scan_open_cursor(QleafScan *scan)
{
	bson_t		opts;

	/* small enough to stay in the bson_t's inline buffer: no allocation */
	bson_init(&opts);
	if (scan->batch_size > 0)
		bson_append_int32(&opts, "batchSize", -1, scan->batch_size);

	/*
	 * Strings compare byte by byte, as pushdown assumes, even in a
	 * collection whose default collation is another one.
	 */
	{
		bson_t		collation;

		bson_append_document_begin(&opts, "collation", -1, &collation);
		bson_append_utf8(&collation, "locale", -1, "simple", -1);
		bson_append_document_end(&opts, &collation);
	}

	/* a transaction that wrote through this connection sees its writes */
	{
		mongoc_client_session_t *session = qleaf_xact_read_session(scan->conn);

		if (session != NULL)
			(void) mongoc_client_session_append(session, &opts, NULL);
	}
	scan->cursor = mongoc_collection_aggregate(scan->collection,
											   MONGOC_QUERY_NONE,
											   &scan->pipeline, &opts, NULL);
	bson_destroy(&opts);
}

/* What a key names (see SLOT_NONE): "c<N>" for N < nkeys, or "_id". */
static int
scan_key_slot(QleafScan *scan, const char *key)
{
	if (key[0] == 'c')
	{
		const char *p = key + 1;
		int			k = 0;

		while (*p >= '0' && *p <= '9')
		{
			/* past any key index: stays too large */
			if (k <= scan->nkeys)
				k = k * 10 + (*p - '0');
			p++;
		}
		if (*p == '\0' && p > key + 1 && k < scan->nkeys)
			return k;
		return SLOT_NONE;
	}
	if (scan->n_id_keys > 0 && strcmp(key, "_id") == 0)
		return SLOT_ID;
	return SLOT_NONE;
}

/*
 * The element of doc at offset off, the way libbson reads it, converted
 * with qleaf_bson_to_datum into the columns its key names.  Returns the
 * next element's offset, or 0 at the end of the document (or where
 * libbson finds it malformed, which ends its walk too).  Out of line: the
 * iterator it needs is large and aligned.
 */
static pg_noinline uint32
scan_element_slow(QleafScan *scan, const bson_t *doc, uint32 off,
				  Datum *values, bool *isnull)
{
	bson_iter_t iter;
	int			slot;

	if (!bson_iter_init(&iter, doc))
		return 0;
	iter.next_off = off;
	if (!bson_iter_next(&iter))
		return 0;

	slot = scan_key_slot(scan, bson_iter_key_unsafe(&iter));
	if (slot >= 0)
	{
		int			att = scan->key_att[slot];

		values[att] = qleaf_bson_to_datum(&scan->convs[slot], &iter, doc,
										  &isnull[att]);
	}
	else if (slot == SLOT_ID)
	{
		for (int j = 0; j < scan->n_id_keys; j++)
		{
			int			k = scan->id_keys[j];
			int			att = scan->key_att[k];

			values[att] = qleaf_bson_to_datum(&scan->convs[k], &iter, doc,
											  &isnull[att]);
		}
	}
	else if (scan->joined_key != NULL &&
			 BSON_ITER_HOLDS_DOCUMENT(&iter) &&
			 strcmp(bson_iter_key_unsafe(&iter), scan->joined_key) == 0)
		scan_read_joined(scan, &iter, values, isnull);
	return iter.next_off;
}

/*
 * Remember that position pos of a document holds an element whose type
 * byte, key and NUL are the headlen bytes at head, the key naming slot.
 */
static void
scan_memo_head(QleafScan *scan, int pos, const uint8_t *head, uint32 headlen,
			   int slot)
{
	ScanKeyMemo *memo = &scan->memo[pos];
	int			k = slot;

	if (slot == SLOT_ID && scan->n_id_keys == 1)
		k = scan->id_keys[0];

	if (headlen > sizeof(uint64))
	{
		memo->head = 1;
		memo->mask = 0;
		memo->headlen = 0;
		return;
	}
	memo->head = 0;
	memo->mask = 0;
	memcpy(&memo->head, head, headlen);
	memset(&memo->mask, 0xFF, headlen);
	memo->headlen = headlen;
	memo->slot = slot;
	memo->conv = k >= 0 ? &scan->convs[k] : NULL;
	memo->att = k >= 0 ? scan->key_att[k] : -1;
	memo->op = k >= 0 ? qleaf_fast_op(memo->conv, head[0]) : QF_NONE;
	switch (head[0])
	{
		case BSON_TYPE_BOOL:
			/* its byte is checked by the conversion, else by the switch */
			memo->size = memo->op != QF_NONE ? 1 : -1;
			break;
		case BSON_TYPE_INT32:
			memo->size = 4;
			break;
		case BSON_TYPE_INT64:
		case BSON_TYPE_DOUBLE:
		case BSON_TYPE_DATE_TIME:
			memo->size = 8;
			break;
		case BSON_TYPE_OID:
			memo->size = 12;
			break;
		case BSON_TYPE_DECIMAL128:
			memo->size = 16;
			break;
		default:
			/* strings: the switch below */
			memo->size = -1;
			break;
	}
}

/*
 * The string value at o of a document of len bytes, checked as libbson
 * checks it: its characters and their number (without the NUL), and the
 * next element's offset.  False if it does not hold together.
 */
static inline bool
scan_string_at(const uint8_t *data, uint32 len, uint32 o,
			   const uint8_t **chars, uint32 *slen, uint32 *next)
{
	uint32_t	l;

	if ((uint64) o + 4 >= len)
		return false;
	memcpy(&l, data + o, sizeof(l));
	l = BSON_UINT32_FROM_LE(l);
	if (l == 0 || l > len - (o + 4) || data[o + 4 + l - 1] != 0)
		return false;
	*chars = data + o + 4;
	*slen = l - 1;
	*next = o + 4 + l;
	return true;
}

/*
 * Convert the element at off into the row: its type t, its key at
 * off + 1 naming slot, its value at value (a string's length in slen),
 * the next element at next.  Returns the next element's offset, or 0 when
 * the document ends (see scan_element_slow).
 */
static inline uint32
scan_element(QleafScan *scan, const bson_t *doc, uint32 off, uint8_t t,
			 int slot, const uint8_t *value, uint32 slen, uint32 next,
			 Datum *values, bool *isnull)
{
	if (slot >= 0)
	{
		int			att = scan->key_att[slot];

		if (likely(qleaf_convert_fast(&scan->convs[slot], t, value, slen,
									  &values[att])))
		{
			isnull[att] = false;
			return next;
		}
	}
	else if (slot == SLOT_NONE)
		return next;
	else
	{
		int			j;

		for (j = 0; j < scan->n_id_keys; j++)
		{
			int			k = scan->id_keys[j];
			int			att = scan->key_att[k];

			if (!qleaf_convert_fast(&scan->convs[k], t, value, slen,
									&values[att]))
				break;
			isnull[att] = false;
		}
		if (likely(j == scan->n_id_keys))
			return next;
	}
	return scan_element_slow(scan, doc, off, values, isnull);
}

/*
 * Convert the keys of a document (doc, walked by iter) into values and
 * isnull: "c<N>" keys, "_id", and the joined subdocument if there is one.
 */
static void
scan_read_keys(QleafScan *scan, bson_iter_t *iter, const bson_t *doc,
			   Datum *values, bool *isnull)
{
	while (bson_iter_next(iter))
	{
		const char *key = (const char *) iter->raw + iter->key;

		if (key[0] == 'c')
		{
			const char *p = key + 1;
			int			k = 0;

			while (*p >= '0' && *p <= '9')
				k = k * 10 + (*p++ - '0');
			if (*p == '\0' && p > key + 1 && k < scan->nkeys)
			{
				int			att = scan->key_att[k];

				values[att] = qleaf_bson_to_datum(&scan->convs[k], iter,
												  doc, &isnull[att]);
			}
		}
		else if (scan->n_id_keys > 0 && strcmp(key, "_id") == 0)
		{
			int			j;

			for (j = 0; j < scan->n_id_keys; j++)
			{
				int			k = scan->id_keys[j];
				int			att = scan->key_att[k];

				values[att] = qleaf_bson_to_datum(&scan->convs[k], iter,
												  doc, &isnull[att]);
			}
		}
		else if (scan->joined_key != NULL &&
				 strcmp(key, scan->joined_key) == 0 &&
				 BSON_ITER_HOLDS_DOCUMENT(iter))
			scan_read_joined(scan, iter, values, isnull);
	}
}

/*
 * Convert the keys of the joined subdocument iter points at (see
 * scan_read_keys).
 */
static void
scan_read_joined(QleafScan *scan, bson_iter_t *iter, Datum *values,
				 bool *isnull)
{
	const uint8_t *data;
	uint32_t	len;
	bson_t		sub;
	bson_iter_t subiter;

	bson_iter_document(iter, &len, &data);
	if (!bson_init_static(&sub, data, len) ||
		!bson_iter_init(&subiter, &sub))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("MongoDB returned a malformed document"),
				 errcontext("%s", scan->what)));
	scan_read_keys(scan, &subiter, &sub, values, isnull);
}

/*
 * Convert the elements of doc into the row (values/isnull, all NULL on
 * entry).  What the loop needs of the scan is read into locals first:
 * stores to isnull (bool) may alias anything, so fields read through scan
 * would be loaded again after each one.
 */
static void
scan_document(QleafScan *scan, const bson_t *doc, Datum *values,
			  bool *isnull)
{
	const uint8_t *data = bson_get_data(doc);
	const uint32 len = doc->len;
	ScanKeyMemo *const memo = scan->memo;
	const int	nmemo = scan->nmemo;
	uint32		off;
	int			pos;

	if (len < 5)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("MongoDB returned a malformed document"),
				 errcontext("%s", scan->what)));

	off = 4;
	for (pos = 0; off != 0; pos++)
	{
		uint32		o;
		uint32		next;
		uint32		slen = 0;
		int			slot;

		if (unlikely(off >= len - 1))
		{
			/* the document's final NUL, or the slow path tells */
			if (off == len - 1 && data[off] == 0)
				break;
			off = scan_element_slow(scan, doc, off, values, isnull);
			continue;
		}

		/* type and key: as in the previous document at this position? */
		if (likely(pos < nmemo && off + sizeof(uint64) <= len))
		{
			const ScanKeyMemo *m = &memo[pos];
			uint64		w;

			memcpy(&w, data + off, sizeof(w));
			if ((w & m->mask) == m->head)
			{
				o = off + m->headlen;
				if (m->op != QF_NONE)
				{
					/* one column, and its fast conversion */
					const uint8_t *value = data + o;

					if (m->size >= 0)
						next = o + m->size;
					else if (!scan_string_at(data, len, o, &value, &slen,
											 &next))
						goto slow;
					if (unlikely(next >= len))
						goto slow;
					if (likely(qleaf_convert_op(m->conv, m->op, value, slen,
												&values[m->att])))
					{
						isnull[m->att] = false;
						off = next;
						continue;
					}
					goto slow;
				}
				slot = m->slot;
				if (m->size < 0)
					goto value;
				next = o + m->size;
				goto convert;
			}
		}
		for (o = off + 1; o < len && data[o] != 0; o++)
			;
		if (unlikely(o >= len))
		{
			off = scan_element_slow(scan, doc, off, values, isnull);
			continue;
		}
		slot = scan_key_slot(scan, (const char *) data + off + 1);
		if (pos < nmemo)
			scan_memo_head(scan, pos, data + off, o + 1 - off, slot);
		o++;

value:
		/* the value: where it ends, with libbson's checks */
		switch (data[off])
		{
			case BSON_TYPE_INT32:
				next = o + 4;
				break;
			case BSON_TYPE_INT64:
			case BSON_TYPE_DOUBLE:
			case BSON_TYPE_DATE_TIME:
				next = o + 8;
				break;
			case BSON_TYPE_OID:
				next = o + 12;
				break;
			case BSON_TYPE_DECIMAL128:
				next = o + 16;
				break;
			case BSON_TYPE_BOOL:
				if (o >= len || data[o] > 1)
					goto slow;
				next = o + 1;
				break;
			case BSON_TYPE_UTF8:
				{
					const uint8_t *chars;

					if (!scan_string_at(data, len, o, &chars, &slen, &next))
						goto slow;
					o = chars - data;
				}
				break;
			default:
				goto slow;
		}
convert:
		if (unlikely(next >= len))
			goto slow;
		off = scan_element(scan, doc, off, data[off], slot, data + o, slen,
						   next, values, isnull);
		continue;

slow:
		off = scan_element_slow(scan, doc, off, values, isnull);
	}
}

/*
 * Fill values/isnull (natts entries) with the next document.  Returns
 * false when the pipeline has no more documents.  By-reference values stay
 * valid until the next call (they may live in the scan's row arena).
 */
bool
qleaf_scan_next(QleafScan *scan, Datum *values, bool *isnull)
{
	const bson_t *doc;
	const QleafConnStats *stats;
	uint64		round_trips;
	uint64		bytes;
	bool		found;

	if (scan->exhausted)
		return false;
	if (scan->cursor == NULL)
		scan_open_cursor(scan);

	stats = scan->stats;
	round_trips = stats->round_trips;
	bytes = stats->bytes_received;

	found = mongoc_cursor_next(scan->cursor, &doc);

	/*
	 * The server's first batch (101 documents) is small, so that a query
	 * that stops early costs little; the getMores that follow fetch large
	 * batches, which cost far less per document.  Batches of a few MB keep
	 * libmongoc's reply buffers in the heap (see _PG_init).
	 */
	if (!scan->batch_grown && scan->batch_size == 0)
	{
		mongoc_cursor_set_batch_size(scan->cursor, QLEAF_GETMORE_BATCH_SIZE);
		scan->batch_grown = true;
	}

	scan->counters.batches += stats->round_trips - round_trips;
	scan->counters.bytes += stats->bytes_received - bytes;

	if (!found)
	{
		bson_error_t error;
		const bson_t *reply;

		if (mongoc_cursor_error_document(scan->cursor, &error, &reply))
			qleaf_report_error(ERROR, scan->conn, &error, reply, scan->what);
		scan->exhausted = true;
		return false;
	}
	scan->counters.documents++;

	memset(isnull, true, sizeof(bool) * scan->natts);
	qleaf_arena_next_row(&scan->arena);

	scan_document(scan, doc, values, isnull);
	return true;
}

/* Start over: the next qleaf_scan_next runs the pipeline again. */
void
qleaf_scan_rescan(QleafScan *scan)
{
	scan_close_cursor(scan);
}

/*
 * Run pipeline (a BSON array in a bytea) from the next qleaf_scan_next on:
 * a rescan with new parameter values.
 */
void
qleaf_scan_set_pipeline(QleafScan *scan, const bytea *pipeline)
{
	uint8_t    *data;

	scan_close_cursor(scan);
	data = MemoryContextAlloc(scan->cxt, VARSIZE_ANY_EXHDR(pipeline));
	memcpy(data, VARDATA_ANY(pipeline), VARSIZE_ANY_EXHDR(pipeline));
	if (!bson_init_static(&scan->pipeline, data, VARSIZE_ANY_EXHDR(pipeline)))
		elog(ERROR, "qleaf_fdw: invalid pipeline");
	pfree(scan->pipeline_data);
	scan->pipeline_data = data;
}

/* Free everything the scan holds. */
void
qleaf_scan_end(QleafScan *scan)
{
	/* the reset callback frees the libmongoc objects */
	MemoryContextDelete(scan->cxt);
}

const QleafScanCounters *
qleaf_scan_counters(QleafScan *scan)
{
	return &scan->counters;
}

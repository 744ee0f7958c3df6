/*-------------------------------------------------------------------------
 *
 * convert.h
 *		  BSON <-> PostgreSQL Datum conversion for qleaf_fdw
 *
 * A scan builds one QleafColumnConv per fetched column when it starts and
 * then converts every value in place from a bson_iter_t: no text round
 * trips for scalar types.  A value that does not fit its column is an
 * ERROR naming the column, the field path, the BSON type found and the
 * document's _id, unless the column asks for NULL instead.
 *
 *-------------------------------------------------------------------------
 */
#ifndef QLEAF_CONVERT_H
#define QLEAF_CONVERT_H

#include "postgres.h"

#include <bson/bson.h>

#include "fmgr.h"
#include "lib/stringinfo.h"

/*
 * Memory for the values of one row, reused row after row: the common
 * conversions (strings, ObjectIds, decimals) bump-allocate here instead of
 * calling palloc, so that a row costs no allocations and the per-tuple
 * memory has nothing to reset.  What does not fit goes to palloc and makes
 * the arena grow at the next row.  Values in it are valid until
 * qleaf_arena_next_row, like values in per-tuple memory.
 */
typedef struct QleafRowArena
{
	MemoryContext cxt;			/* owns buf */
	char	   *buf;
	Size		size;
	Size		used;
	Size		missed;			/* bytes that went to palloc this row */
} QleafRowArena;

typedef struct QleafColumnConv
{
	Oid			typid;			/* column type */
	int32		typmod;			/* column typmod */
	const char *colname;		/* for error messages */
	const char *field;			/* dotted field path, for error messages */
	bool		null_on_error;	/* a value that does not fit becomes NULL */

	/* filled by qleaf_init_column_conv; private to convert.c */
	int			kind;			/* which conversion routine */
	Oid			elemtype;		/* element type for array columns */
	int16		elemlen;
	bool		elembyval;
	char		elemalign;
	int			elemkind;
	FmgrInfo	infunc;			/* input function, for types read from text */
	Oid			ioparam;
	int32		basetypmod;		/* typmod of the base type (domains) */
	Oid			domaintypid;	/* the column's domain, or InvalidOid */
	void	   *domain_extra;	/* domain_check() cache */
	Oid			elemdomain;		/* element domain of an array, or InvalidOid */
	void	   *elem_domain_extra;
	MemoryContext mcxt;			/* where the domain_check() caches live */
	Datum		numeric_bound;	/* numeric(p,s): 10^(p-s), or 0 if unset */
	bool		db_utf8;		/* database encoding is UTF8: strings need
								 * only be verified, not converted */
	QleafRowArena *arena;		/* where values go; NULL: palloc */
} QleafColumnConv;

/*
 * Prepare conversion of values to a column.  Raises an ERROR for a column
 * type qleaf_fdw cannot map (naming the column and type).
 */
extern void qleaf_init_column_conv(QleafColumnConv *conv, Oid typid,
								   int32 typmod, const char *colname,
								   const char *field, bool null_on_error);

/* An empty arena of size bytes in cxt. */
extern void qleaf_arena_init(QleafRowArena *arena, MemoryContext cxt,
							 Size size);

/* Make room for what the last row did not fit (qleaf_arena_next_row). */
extern void qleaf_arena_grow(QleafRowArena *arena);

/*
 * Start a row: the previous row's values in the arena are dead.  Grows
 * the arena if the previous row did not fit.
 */
static inline void
qleaf_arena_next_row(QleafRowArena *arena)
{
	if (unlikely(arena->missed > 0))
		qleaf_arena_grow(arena);
	arena->used = 0;
}

/*
 * Convert the value at iter to the column's type.  doc is the whole
 * document the value came from (used only to find its _id for an error
 * message).  Sets *isnull for BSON null/undefined and for values turned
 * into NULL by null_on_error.
 */
extern Datum qleaf_bson_to_datum(QleafColumnConv *conv, const bson_iter_t *iter,
								 const bson_t *doc, bool *isnull);

/* A whole document (e.g. the row's $$ROOT) as jsonb. */
extern Datum qleaf_bson_document_to_jsonb(const bson_t *doc);

/*
 * Append the value at iter as JSON text in qleaf_fdw's documented
 * rendering (MongoDB Extended JSON, relaxed, for BSON-only types).
 */
extern void qleaf_append_json_value(StringInfo buf, const bson_iter_t *iter);

/* The BSON type's name as MongoDB's $type spells it ("double", "objectId", ...). */
extern const char *qleaf_bson_type_name(bson_type_t type);

#endif							/* QLEAF_CONVERT_H */

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
} QleafColumnConv;

/*
 * Prepare conversion of values to a column.  Raises an ERROR for a column
 * type qleaf_fdw cannot map (naming the column and type).
 */
extern void qleaf_init_column_conv(QleafColumnConv *conv, Oid typid,
								   int32 typmod, const char *colname,
								   const char *field, bool null_on_error);

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

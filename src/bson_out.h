/*-------------------------------------------------------------------------
 *
 * bson_out.h
 *		  PostgreSQL Datum -> BSON conversion for qleaf_fdw's writes
 *
 * The inverse of convert.c: a value written and read back through the
 * same column type is the same value.  Each written column gets a
 * QleafWriteConv once per statement; values are then appended to BSON
 * documents without text round trips for the scalar types.
 *
 *-------------------------------------------------------------------------
 */
#ifndef QLEAF_BSON_OUT_H
#define QLEAF_BSON_OUT_H

#include "postgres.h"

#include <bson/bson.h>

#include "fmgr.h"

/* What BSON type a column writes, from its "bson_type" option. */
typedef enum QleafBsonType
{
	QLEAF_BT_AUTO,				/* the natural type of the column type */
	QLEAF_BT_OBJECTID,			/* text of 24 hex digits -> ObjectId */
	QLEAF_BT_STRING,			/* text stays a string, even on _id */
	QLEAF_BT_DECIMAL,			/* numeric -> Decimal128 (the default) */
	QLEAF_BT_DOUBLE				/* numeric -> double */
} QleafBsonType;

typedef struct QleafWriteConv
{
	Oid			typid;			/* column type (domains resolved below) */
	const char *colname;		/* for error messages */
	const char *field;			/* dotted field path, for error messages */
	QleafBsonType bson_type;
	bool		is_id;			/* the column maps "_id" */

	/* private to bson_out.c */
	int			kind;
	Oid			basetype;		/* the base type of a domain, else typid */
	Oid			elemtype;		/* array element type */
	int			elemkind;
	int16		elemlen;
	bool		elembyval;
	char		elemalign;
	FmgrInfo	outfunc;		/* output function, for other types */
	FmgrInfo	elem_outfunc;
} QleafWriteConv;

/* Parse a "bson_type" option value; raises an ERROR for a bad one. */
extern QleafBsonType qleaf_parse_bson_type(const char *value);

/*
 * Prepare writing a column.  Raises an ERROR when bson_type does not
 * apply to the column's type.
 */
extern void qleaf_init_write_conv(QleafWriteConv *wc, Oid typid,
								  const char *colname, const char *field,
								  QleafBsonType bson_type);

/* Append value (not NULL) under key. */
extern void qleaf_append_datum(bson_t *doc, const char *key,
							   QleafWriteConv *wc, Datum value);

/*
 * A jsonb (or json) object as a new BSON document, the whole-document
 * column's value: bson_destroy it.  Raises an ERROR if the value is not
 * an object.
 */
extern bson_t *qleaf_json_object_to_bson(QleafWriteConv *wc, Datum value);

/*
 * Check that a key may be stored by MongoDB: not empty, not starting
 * with "$", no ".".  what names where it came from, for the message.
 */
extern void qleaf_check_field_name(const char *key, int len,
								   const char *colname);

#endif							/* QLEAF_BSON_OUT_H */

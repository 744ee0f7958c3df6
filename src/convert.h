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

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/timestamp.h"

/* Conversion kinds (QleafColumnConv.kind), chosen once per column. */
typedef enum QleafConvKind
{
	QK_BOOL = 1,
	QK_INT2,
	QK_INT4,
	QK_INT8,
	QK_FLOAT4,
	QK_FLOAT8,
	QK_NUMERIC,
	QK_TEXT,
	QK_VARCHAR,
	QK_BPCHAR,
	QK_NAME,
	QK_BYTEA,
	QK_UUID,
	QK_DATE,
	QK_TIMESTAMP,
	QK_TIMESTAMPTZ,
	QK_JSON,
	QK_JSONB,
	QK_TEXTIN,
	QK_ARRAY
} QleafConvKind;

/* Milliseconds from the Unix epoch to the PostgreSQL epoch. */
#define QLEAF_EPOCH_DIFF_MS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000)

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
 * The out-of-line halves of qleaf_convert_op; each returns (Datum) 0
 * when the value needs the general path.
 */
extern Datum qleaf_text_from_utf8(QleafColumnConv *conv, const char *s,
								  size_t len);
extern Datum qleaf_text_from_oid(QleafColumnConv *conv, const uint8_t *oid);
extern Datum qleaf_numeric_from_d128(QleafColumnConv *conv,
									 const uint8_t *value);

/*
 * The common exact matches of BSON type and column type, each converted
 * from a value's bytes where they lie in the document (qleaf_convert_op).
 * Which one applies depends only on the column and the BSON type, so a
 * scan may choose it once for a run of documents of the same shape.
 */
typedef enum QleafFastOp
{
	QF_NONE = 0,				/* none: qleaf_bson_to_datum's general path */
	QF_INT4_FROM_INT32,
	QF_INT8_FROM_INT64,
	QF_INT8_FROM_INT32,
	QF_FLOAT8_FROM_DOUBLE,
	QF_BOOL_FROM_BOOL,
	QF_TIMESTAMP_FROM_DATE,		/* timestamp and timestamptz */
	QF_TEXT_FROM_UTF8,
	QF_TEXT_FROM_OID,
	QF_NUMERIC_FROM_DECIMAL
} QleafFastOp;

/* The fast conversion of a BSON type to the column, or QF_NONE. */
static inline QleafFastOp
qleaf_fast_op(const QleafColumnConv *conv, uint8_t type)
{
	if (unlikely(OidIsValid(conv->domaintypid)))
		return QF_NONE;

	switch (conv->kind)
	{
		case QK_INT4:
			if (type == BSON_TYPE_INT32)
				return QF_INT4_FROM_INT32;
			break;
		case QK_INT8:
			if (type == BSON_TYPE_INT64)
				return QF_INT8_FROM_INT64;
			if (type == BSON_TYPE_INT32)
				return QF_INT8_FROM_INT32;
			break;
		case QK_FLOAT8:
			if (type == BSON_TYPE_DOUBLE)
				return QF_FLOAT8_FROM_DOUBLE;
			break;
		case QK_BOOL:
			if (type == BSON_TYPE_BOOL)
				return QF_BOOL_FROM_BOOL;
			break;
		case QK_TIMESTAMP:
		case QK_TIMESTAMPTZ:
			if (type == BSON_TYPE_DATE_TIME && conv->basetypmod < 0)
				return QF_TIMESTAMP_FROM_DATE;
			break;
		case QK_TEXT:
			if (type == BSON_TYPE_UTF8 && conv->db_utf8)
				return QF_TEXT_FROM_UTF8;
			if (type == BSON_TYPE_OID)
				return QF_TEXT_FROM_OID;
			break;
		case QK_NUMERIC:
			if (type == BSON_TYPE_DECIMAL128 && conv->basetypmod < 0)
				return QF_NUMERIC_FROM_DECIMAL;
			break;
		default:
			break;
	}
	return QF_NONE;
}

/*
 * Convert a value by op (qleaf_fast_op of the column and the value's BSON
 * type).  value points at the element's value; for a string at its
 * characters, len of them (without the NUL), already checked to lie in
 * the document.  Returns false when qleaf_bson_to_datum must judge the
 * value (a bool byte other than 0 or 1, a value outside the fast range, a
 * string that is not plain valid UTF-8, QF_NONE): its general path gives
 * the same results, and the errors.  Never NULL: BSON null takes that
 * path.
 */
static inline bool
qleaf_convert_op(QleafColumnConv *conv, QleafFastOp op, const uint8_t *value,
				 uint32_t len, Datum *result)
{
	switch (op)
	{
		case QF_INT4_FROM_INT32:
			{
				int32_t		v;

				memcpy(&v, value, sizeof(v));
				*result = Int32GetDatum((int32) BSON_UINT32_FROM_LE(v));
				return true;
			}
		case QF_INT8_FROM_INT64:
			{
				int64_t		v;

				memcpy(&v, value, sizeof(v));
				*result = Int64GetDatum((int64) BSON_UINT64_FROM_LE(v));
				return true;
			}
		case QF_INT8_FROM_INT32:
			{
				int32_t		v;

				memcpy(&v, value, sizeof(v));
				*result = Int64GetDatum((int32) BSON_UINT32_FROM_LE(v));
				return true;
			}
		case QF_FLOAT8_FROM_DOUBLE:
			{
				double		v;

				memcpy(&v, value, sizeof(v));
				*result = Float8GetDatum(BSON_DOUBLE_FROM_LE(v));
				return true;
			}
		case QF_BOOL_FROM_BOOL:
			if (value[0] > 1)
				return false;
			*result = BoolGetDatum(value[0] != 0);
			return true;
		case QF_TIMESTAMP_FROM_DATE:
			{
				int64_t		ms;

				memcpy(&ms, value, sizeof(ms));
				ms = (int64_t) BSON_UINT64_FROM_LE(ms);
				/* well inside the range: no overflow check needed */
				if (ms > -INT64CONST(200000000000000) &&
					ms < INT64CONST(9000000000000000))
				{
					*result = TimestampTzGetDatum((ms - QLEAF_EPOCH_DIFF_MS) * 1000);
					return true;
				}
				return false;
			}
		case QF_TEXT_FROM_UTF8:
			*result = qleaf_text_from_utf8(conv, (const char *) value, len);
			return *result != (Datum) 0;
		case QF_TEXT_FROM_OID:
			*result = qleaf_text_from_oid(conv, value);
			return true;
		case QF_NUMERIC_FROM_DECIMAL:
			*result = qleaf_numeric_from_d128(conv, value);
			return *result != (Datum) 0;
		case QF_NONE:
			break;
	}
	return false;
}

/* qleaf_convert_op with the op chosen for this value. */
static inline bool
qleaf_convert_fast(QleafColumnConv *conv, uint8_t type, const uint8_t *value,
				   uint32_t len, Datum *result)
{
	return qleaf_convert_op(conv, qleaf_fast_op(conv, type), value, len,
							result);
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

/*-------------------------------------------------------------------------
 *
 * convert.c
 *		  BSON -> PostgreSQL Datum conversion for qleaf_fdw
 *
 * Design rules
 * ------------
 * - Each scan column gets a QleafColumnConv once per scan; the per-value
 *   routine switches on the precomputed kind, never on the type OID.
 * - Scalars convert in place from the bson_iter_t: numbers, booleans,
 *   dates, strings and binary data are never printed and re-parsed.  The
 *   only text steps left are numeric values with more digits than an
 *   int64 holds (exact decimal digits, then numeric_in) and column types
 *   qleaf_fdw has no direct mapping for (their input function, from a
 *   BSON string).
 * - A value that does not fit its column is an ERROR naming the column,
 *   the field path, the BSON type found and the document's _id, unless the
 *   column (or its table) has on_conversion_error 'null'; then it is NULL.
 *   Errors raised by a type's own input function (QK_TEXTIN columns) and
 *   domain constraint violations stay errors either way.
 *
 * Which BSON types each column type accepts
 * -----------------------------------------
 * BSON null and undefined are SQL NULL for every column type (jsonb too).
 *
 *	smallint, integer, bigint	int, long; double and decimal only when the
 *								value is integral.  Out of range is an error.
 *	real, double precision		int, long, double, decimal (NaN, Infinity
 *								kept; decimal beyond the type's range and
 *								real overflow/underflow are errors).
 *	numeric						int, long, double, decimal, all exactly:
 *								a double becomes its exact binary value
 *								(double 0.1 is numeric
 *								0.1000000000000000055511151231257827021181583404541015625),
 *								which is also how MongoDB compares a double
 *								with a decimal.  NaN and +-Infinity, double
 *								or decimal, become numeric NaN/+-Infinity.
 *								Decimal trailing zeros are kept (1.50).
 *								numeric(p,s) rounds to s digits; a value
 *								that still does not fit is out of range.
 *	boolean						bool only.
 *	text, varchar, char, name	string, symbol, objectId (24 lower-case hex
 *								digits).  Anything else is an error: map
 *								such fields to jsonb or json.  varchar(n)
 *								and char(n) apply their length rules.
 *	bytea						binData (any subtype), objectId (12 bytes).
 *	uuid						binData subtype 3 or 4 of 16 bytes.
 *	timestamptz, timestamp		date (milliseconds since 1970, UTC; a
 *								timestamp without time zone holds the UTC
 *								wall clock), timestamp (its seconds part).
 *								Outside PostgreSQL's range is an error.
 *	date						date, timestamp: the UTC day.
 *	json, jsonb					any BSON value, rendered as below.
 *	T[]							array, each element converted as for T
 *								(null elements are NULL).  A non-array
 *								value is an error; so is an element that
 *								does not fit (with on_conversion_error
 *								'null' the whole array is NULL).
 *	domains						as their base type, then the domain's
 *								constraints are checked.
 *	any other type				string, symbol, through the type's input function
 *								(enums, inet, interval, ...).
 *
 * JSON rendering
 * --------------
 * json and jsonb columns, and documents turned into jsonb, use MongoDB
 * Extended JSON v2 in relaxed mode, so that writing the value back yields
 * the same BSON:
 *	int, long			number
 *	double				number, the shortest decimal that reads back as the same
 *						double; an integral one keeps a ".0" (1.0) in json (and
 *						in jsonb when it has no exponent: jsonb numbers are
 *						numeric, so 1e21 shows in full); NaN and +-Infinity are
 *						{"$numberDouble": "NaN"|"Infinity"|"-Infinity"}
 *	decimal				{"$numberDecimal": "1.50"}
 *	string				string
 *	objectId			{"$oid": "<24 hex digits>"}
 *	date				{"$date": "1970-01-01T00:00:00.000Z"} for years 1970-9999,
 *						else {"$date": {"$numberLong": "<ms>"}}
 *	binData				{"$binary": {"base64": "...", "subType": "04"}}
 *	regex				{"$regularExpression": {"pattern": "...", "options": "imsx"}}
 *						(options sorted)
 *	timestamp			{"$timestamp": {"t": <seconds>, "i": <increment>}}
 *	minKey, maxKey		{"$minKey": 1}, {"$maxKey": 1}
 *	undefined			{"$undefined": true}
 *	symbol				{"$symbol": "..."}
 *	javascript			{"$code": "..."}; with scope adds "$scope": {...}
 *	dbPointer			{"$dbPointer": {"$ref": "...", "$id": {"$oid": "..."}}}
 * Strings that are not valid UTF-8 are conversion errors everywhere.  A
 * string holding a NUL byte is one too, except in json columns, where the
 * NUL is written \u0000 (text types and jsonb cannot hold it).  In a
 * database whose encoding is not UTF-8 strings are converted to it; a
 * character it cannot represent is a conversion error (SQL_ASCII takes the
 * bytes as they are).  Messages show values in the JSON rendering, with
 * \u escapes where the database encoding cannot show a character.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "common/shortest_dec.h"
#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "port/pg_bswap.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
#include "utils/varlena.h"

#include "convert.h"

/* Why a value does not fit. */
typedef enum ConvFailure
{
	CF_TYPE,					/* BSON type not accepted by the column type */
	CF_RANGE,					/* accepted type, value out of range */
	CF_VALUE					/* accepted type, value unusable (see reason) */
} ConvFailure;

/* Seconds from the Unix epoch to the PostgreSQL epoch. */
#define QLEAF_EPOCH_DIFF_SECS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)
#define MS_PER_DAY	((int64) SECS_PER_DAY * 1000)

/*
 * The iterator's value, its type known.  libbson's *_unsafe accessors are
 * inline; a BSON date is an int64 of milliseconds, read as libbson itself
 * reads it.
 */
#define iter_date_ms(iter) bson_iter_int64_unsafe(iter)

/* How much of a value an error message shows. */
#define QLEAF_ERR_VALUE_LEN 100

static bool convert_value(QleafColumnConv *conv, int kind, Oid typid,
						  int32 typmod, const bson_iter_t *iter,
						  const bson_t *doc, int elemidx, Datum *result);
static bool json_append(StringInfo buf, const bson_iter_t *iter, int depth);
static bool utf8_valid_with_nul(const char *s, uint32_t len);
static bool utf8_to_db_encoding(const char *s, int len, const char **out,
								int *outlen);
static bool jsonb_push(JsonbParseState **st, JsonbIteratorToken tok,
					   const bson_iter_t *iter, int depth, JsonbValue **res);

/* ----------------------------------------------------------------
 *		Type names, column set-up
 * ----------------------------------------------------------------
 */

const char *
qleaf_bson_type_name(bson_type_t type)
{
	switch (type)
	{
		case BSON_TYPE_DOUBLE:
			return "double";
		case BSON_TYPE_UTF8:
			return "string";
		case BSON_TYPE_DOCUMENT:
			return "object";
		case BSON_TYPE_ARRAY:
			return "array";
		case BSON_TYPE_BINARY:
			return "binData";
		case BSON_TYPE_UNDEFINED:
			return "undefined";
		case BSON_TYPE_OID:
			return "objectId";
		case BSON_TYPE_BOOL:
			return "bool";
		case BSON_TYPE_DATE_TIME:
			return "date";
		case BSON_TYPE_NULL:
			return "null";
		case BSON_TYPE_REGEX:
			return "regex";
		case BSON_TYPE_DBPOINTER:
			return "dbPointer";
		case BSON_TYPE_CODE:
			return "javascript";
		case BSON_TYPE_SYMBOL:
			return "symbol";
		case BSON_TYPE_CODEWSCOPE:
			return "javascriptWithScope";
		case BSON_TYPE_INT32:
			return "int";
		case BSON_TYPE_TIMESTAMP:
			return "timestamp";
		case BSON_TYPE_INT64:
			return "long";
		case BSON_TYPE_DECIMAL128:
			return "decimal";
		case BSON_TYPE_MINKEY:
			return "minKey";
		case BSON_TYPE_MAXKEY:
			return "maxKey";
		case BSON_TYPE_EOD:
			break;
	}
	return "unknown";
}

/* The direct conversion kind for a (base) type, or 0. */
static int
kind_for_type(Oid typid)
{
	switch (typid)
	{
		case BOOLOID:
			return QK_BOOL;
		case INT2OID:
			return QK_INT2;
		case INT4OID:
			return QK_INT4;
		case INT8OID:
			return QK_INT8;
		case FLOAT4OID:
			return QK_FLOAT4;
		case FLOAT8OID:
			return QK_FLOAT8;
		case NUMERICOID:
			return QK_NUMERIC;
		case TEXTOID:
			return QK_TEXT;
		case VARCHAROID:
			return QK_VARCHAR;
		case BPCHAROID:
			return QK_BPCHAR;
		case NAMEOID:
			return QK_NAME;
		case BYTEAOID:
			return QK_BYTEA;
		case UUIDOID:
			return QK_UUID;
		case DATEOID:
			return QK_DATE;
		case TIMESTAMPOID:
			return QK_TIMESTAMP;
		case TIMESTAMPTZOID:
			return QK_TIMESTAMPTZ;
		case JSONOID:
			return QK_JSON;
		case JSONBOID:
			return QK_JSONB;
	}
	return 0;
}

/* Check that a type can be read from a BSON string with its input function. */
static void
check_textin_type(Oid typid, const char *colname, Oid coltypid, int32 typmod)
{
	char		typtype = get_typtype(typid);

	if (typtype == TYPTYPE_PSEUDO || typtype == TYPTYPE_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("column \"%s\" of type %s cannot be mapped to a MongoDB field",
						colname, format_type_with_typemod(coltypid, typmod)),
				 errdetail("qleaf_fdw does not convert to composite types or pseudo-types."),
				 errhint("Use a column of type jsonb to read a document.")));
}

void
qleaf_init_column_conv(QleafColumnConv *conv, Oid typid, int32 typmod,
					   const char *colname, const char *field,
					   bool null_on_error)
{
	Oid			basetypid;
	int32		basetypmod = typmod;

	memset(conv, 0, sizeof(*conv));
	conv->typid = typid;
	conv->typmod = typmod;
	conv->colname = colname;
	conv->field = field ? field : colname;
	conv->null_on_error = null_on_error;
	conv->mcxt = CurrentMemoryContext;
	conv->db_utf8 = (GetDatabaseEncoding() == PG_UTF8);

	basetypid = getBaseTypeAndTypmod(typid, &basetypmod);
	conv->basetypmod = basetypmod;
	conv->domaintypid = (basetypid != typid) ? typid : InvalidOid;

	conv->kind = kind_for_type(basetypid);
	if (conv->kind != 0)
		return;

	conv->elemtype = get_element_type(basetypid);
	if (OidIsValid(conv->elemtype) && get_typlen(basetypid) == -1)
	{
		Oid			elembase;
		int32		elemtypmod = basetypmod;

		conv->kind = QK_ARRAY;
		get_typlenbyvalalign(conv->elemtype, &conv->elemlen,
							 &conv->elembyval, &conv->elemalign);
		elembase = getBaseTypeAndTypmod(conv->elemtype, &elemtypmod);
		if (elembase != conv->elemtype)
			conv->elemdomain = conv->elemtype;
		conv->elemkind = kind_for_type(elembase);
		if (conv->elemkind == 0)
		{
			Oid			infuncoid;

			check_textin_type(elembase, colname, typid, typmod);
			conv->elemkind = QK_TEXTIN;
			getTypeInputInfo(elembase, &infuncoid, &conv->ioparam);
			fmgr_info(infuncoid, &conv->infunc);
		}
		return;
	}

	{
		Oid			infuncoid;

		check_textin_type(basetypid, colname, typid, typmod);
		conv->kind = QK_TEXTIN;
		getTypeInputInfo(basetypid, &infuncoid, &conv->ioparam);
		fmgr_info(infuncoid, &conv->infunc);
	}
}

/* ----------------------------------------------------------------
 *		Error reporting
 * ----------------------------------------------------------------
 */

/*
 * JSON text (UTF-8) with every non-ASCII character written \uXXXX, for a
 * message in a database encoding that cannot show the characters.  Outside
 * strings JSON text is ASCII, so the result is the same JSON.
 */
static char *
json_ascii(const char *s, int len)
{
	StringInfoData buf;
	int			i = 0;

	initStringInfo(&buf);
	while (i < len)
	{
		unsigned char c = (unsigned char) s[i];

		if (c < 0x80)
		{
			appendStringInfoChar(&buf, (char) c);
			i++;
		}
		else
		{
			pg_wchar	u = utf8_to_unicode((const unsigned char *) s + i);

			if (u > 0xFFFF)
				appendStringInfo(&buf, "\\u%04x\\u%04x",
								 (unsigned int) (0xD800 + ((u - 0x10000) >> 10)),
								 (unsigned int) (0xDC00 + ((u - 0x10000) & 0x3FF)));
			else
				appendStringInfo(&buf, "\\u%04x", (unsigned int) u);
			i += pg_utf_mblen((const unsigned char *) s + i);
		}
	}
	return buf.data;
}

/* The value at iter as (possibly shortened) relaxed Extended JSON. */
static char *
value_for_message(const bson_iter_t *iter)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (!json_append(&buf, iter, 0))
		return psprintf("a BSON %s that is not valid UTF-8",
						qleaf_bson_type_name(bson_iter_type_unsafe(iter)));
	if (buf.len > QLEAF_ERR_VALUE_LEN)
	{
		int			cut = pg_encoding_mbcliplen(PG_UTF8, buf.data, buf.len,
												QLEAF_ERR_VALUE_LEN);

		buf.len = cut;
		buf.data[cut] = '\0';
		appendStringInfoString(&buf, "...");
	}
	if (GetDatabaseEncoding() != PG_UTF8)
	{
		const char *ps;
		int			plen;

		if (!utf8_to_db_encoding(buf.data, buf.len, &ps, &plen))
			return json_ascii(buf.data, buf.len);
		return (char *) ps;
	}
	return buf.data;
}

/* The document's _id for messages. */
static char *
id_for_message(const bson_t *doc)
{
	bson_iter_t it;

	if (doc == NULL || !bson_iter_init_find(&it, doc, "_id"))
		return pstrdup("(none)");
	return value_for_message(&it);
}

/*
 * A value does not fit.  With null_on_error, return false (the caller
 * makes the value NULL); otherwise raise the ERROR.
 */
static bool
conv_fail(QleafColumnConv *conv, const bson_iter_t *iter, const bson_t *doc,
		  int elemidx, Oid typid, int32 typmod, ConvFailure why,
		  const char *reason)
{
	const char *btype;
	char	   *path;
	char	   *typname;
	char	   *valstr;
	char	   *idstr;

	if (conv->null_on_error)
		return false;

	btype = qleaf_bson_type_name(bson_iter_type_unsafe(iter));
	path = elemidx >= 0 ? psprintf("%s.%d", conv->field, elemidx)
		: pstrdup(conv->field);
	typname = format_type_with_typemod(typid, typmod);
	valstr = value_for_message(iter);
	idstr = id_for_message(doc);

	if (why == CF_RANGE)
		ereport(ERROR,
				(errcode((typid == DATEOID || typid == TIMESTAMPOID ||
						  typid == TIMESTAMPTZOID) ?
						 ERRCODE_DATETIME_VALUE_OUT_OF_RANGE :
						 ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("BSON %s value is out of range for type %s of column \"%s\"",
						btype, typname, conv->colname),
				 errdetail("Field \"%s\" of the document with _id %s holds %s.",
						   path, idstr, valstr),
				 errhint("Set the option on_conversion_error to 'null' to read such values as NULL.")));
	else if (why == CF_VALUE)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("cannot convert BSON %s to %s for column \"%s\"",
						btype, typname, conv->colname),
				 errdetail("Field \"%s\" of the document with _id %s holds %s. %s",
						   path, idstr, valstr, reason),
				 errhint("Set the option on_conversion_error to 'null' to read such values as NULL.")));
	else
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("cannot convert BSON %s to %s for column \"%s\"",
						btype, typname, conv->colname),
				 errdetail("Field \"%s\" of the document with _id %s holds %s.",
						   path, idstr, valstr),
				 errhint("Map the field to a column of type jsonb to read any BSON value, or set the option on_conversion_error to 'null' to read such values as NULL.")));
	return false;
}

/*
 * Errors raised by code that is not ours (a type's input function, a
 * domain's constraints) get a context line naming column, field and _id.
 */
typedef struct ConvErrorContext
{
	QleafColumnConv *conv;
	const bson_t *doc;
	int			elemidx;
} ConvErrorContext;

static void
conv_error_callback(void *arg)
{
	ConvErrorContext *c = (ConvErrorContext *) arg;

	if (c->elemidx >= 0)
		errcontext("column \"%s\", field \"%s.%d\" of the document with _id %s",
				   c->conv->colname, c->conv->field, c->elemidx,
				   id_for_message(c->doc));
	else
		errcontext("column \"%s\", field \"%s\" of the document with _id %s",
				   c->conv->colname, c->conv->field, id_for_message(c->doc));
}

/* domain_check() with that context */
static void
checked_domain(QleafColumnConv *conv, const bson_t *doc, int elemidx,
			   Datum value, bool isnull, Oid domain, void **extra)
{
	ErrorContextCallback cb;
	ConvErrorContext c = {conv, doc, elemidx};

	cb.callback = conv_error_callback;
	cb.arg = &c;
	cb.previous = error_context_stack;
	error_context_stack = &cb;
	domain_check(value, isnull, domain, extra, conv->mcxt);
	error_context_stack = cb.previous;
}

/* ----------------------------------------------------------------
 *		Strings
 * ----------------------------------------------------------------
 */

/*
 * UTF-8 bytes (already verified) in the database encoding, when that is
 * not UTF-8.  Returns false when a character has no equivalent there,
 * instead of raising the conversion's own error, so that the caller can
 * name the column (or honour on_conversion_error).
 */
static bool
utf8_to_db_encoding(const char *s, int len, const char **out, int *outlen)
{
	static Oid	proc = InvalidOid;
	static int	proc_encoding = -1;
	int			dbenc = GetDatabaseEncoding();
	char	   *buf;
	int			done;

	if (dbenc == PG_UTF8 || dbenc == PG_SQL_ASCII || len == 0)
	{
		/* SQL_ASCII stores the bytes as they are, as client input does */
		*out = s;
		*outlen = len;
		return true;
	}
	if (proc_encoding != dbenc)
	{
		proc = FindDefaultConversionProc(PG_UTF8, dbenc);
		proc_encoding = dbenc;
	}
	if (!OidIsValid(proc))
		return false;
	buf = palloc((Size) len * MAX_CONVERSION_GROWTH + 1);
	done = pg_do_encoding_conversion_buf(proc, PG_UTF8, dbenc,
										 (unsigned char *) s, len,
										 (unsigned char *) buf,
										 len * MAX_CONVERSION_GROWTH + 1,
										 true);
	if (done < len)
	{
		pfree(buf);
		return false;
	}
	*out = buf;
	*outlen = strlen(buf);
	return true;
}

/*
 * Make a BSON string usable in the database encoding.  Returns false when
 * it is not valid UTF-8, holds a NUL byte (PostgreSQL strings cannot), or
 * has characters the database encoding cannot represent.
 */
static inline bool
string_to_server(bool db_utf8, const char *s, uint32_t len,
				 const char **out, int *outlen)
{
	if (!pg_verify_mbstr(PG_UTF8, s, (int) len, true))
		return false;
	if (likely(db_utf8))
	{
		*out = s;
		*outlen = (int) len;
		return true;
	}
	return utf8_to_db_encoding(s, (int) len, out, outlen);
}

/* Why string_to_server refused a string, as a sentence. */
static const char *
string_problem(const char *s, uint32_t len)
{
	if (memchr(s, '\0', len) != NULL && utf8_valid_with_nul(s, len))
		return "PostgreSQL strings cannot contain a NUL byte.";
	if (!pg_verify_mbstr(PG_UTF8, s, (int) len, true))
		return "The string is not valid UTF-8.";
	return psprintf("The database encoding %s cannot represent all of its characters.",
					GetDatabaseEncodingName());
}

/* The largest arena: a row that needs more allocates the rest with palloc. */
#define QLEAF_ARENA_MAX		(1024 * 1024)

void
qleaf_arena_init(QleafRowArena *arena, MemoryContext cxt, Size size)
{
	arena->cxt = cxt;
	arena->size = MAXALIGN(size);
	arena->buf = MemoryContextAlloc(cxt, arena->size);
	arena->used = 0;
	arena->missed = 0;
}

void
qleaf_arena_grow(QleafRowArena *arena)
{
	Size		want = arena->size + arena->missed;
	Size		size = arena->size;

	while (size < want && size < QLEAF_ARENA_MAX)
		size *= 2;
	if (size > arena->size)
	{
		/* nothing in the old buffer is alive at the start of a row */
		char	   *buf = MemoryContextAlloc(arena->cxt, size);

		pfree(arena->buf);
		arena->buf = buf;
		arena->size = size;
	}
	arena->missed = 0;
}

/* size bytes for a value of the current row: from the arena if any. */
static inline void *
conv_alloc(QleafColumnConv *conv, Size size)
{
	QleafRowArena *arena = conv->arena;

	if (arena != NULL)
	{
		Size		need = MAXALIGN(size);

		if (likely(arena->size - arena->used >= need))
		{
			void	   *p = arena->buf + arena->used;

			arena->used += need;
			return p;
		}
		arena->missed += need;
	}
	return palloc(size);
}

/* A text value of len bytes copied from s. */
static inline text *
conv_text(QleafColumnConv *conv, const char *s, Size len)
{
	text	   *t = (text *) conv_alloc(conv, VARHDRSZ + len);

	SET_VARSIZE(t, VARHDRSZ + len);
	memcpy(VARDATA(t), s, len);
	return t;
}

/*
 * Is s ASCII without NUL bytes?  Then it is valid UTF-8 that PostgreSQL can
 * store, with no need for pg_verify_mbstr (whose fast path starts at 16
 * bytes).  Eight bytes at a time; from eight bytes on, the last word
 * overlaps the one before it instead of a loop over the tail.
 */
static inline bool
ascii_no_nul(const char *s, Size len)
{
	const uint64 high = UINT64CONST(0x8080808080808080);
	const uint64 ones = UINT64CONST(0x0101010101010101);
	uint64		acc = 0;
	uint64		w;

	if (len < 8)
	{
		for (; len > 0; s++, len--)
			acc |= (*s == '\0') ? high : ((uint64) (unsigned char) *s & 0x80);
		return acc == 0;
	}
	for (; len > 16; s += 16, len -= 16)
	{
		uint64		w2;

		memcpy(&w, s, 8);
		memcpy(&w2, s + 8, 8);
		/* high bit set, or a zero byte */
		acc |= (w | ((w - ones) & ~w) | w2 | ((w2 - ones) & ~w2)) & high;
	}
	if (len > 8)
	{
		memcpy(&w, s, 8);
		acc |= (w | ((w - ones) & ~w)) & high;
	}
	memcpy(&w, s + len - 8, 8);
	acc |= (w | ((w - ones) & ~w)) & high;
	return acc == 0;
}

/* Two lower-case hex digits for each byte value, built on first use. */
static uint16 hex_pairs[256];
static bool hex_pairs_ready = false;

static void
hex_pairs_init(void)
{
	static const char hex[] = "0123456789abcdef";

	for (int b = 0; b < 256; b++)
	{
		char		pair[2] = {hex[b >> 4], hex[b & 0xF]};

		memcpy(&hex_pairs[b], pair, 2);
	}
	hex_pairs_ready = true;
}

/*
 * An ObjectId (12 bytes) as text of 24 lower-case hex digits, written in
 * place two digits at a time.
 */
Datum
qleaf_text_from_oid(QleafColumnConv *conv, const uint8_t *oid)
{
	text	   *t = (text *) conv_alloc(conv, VARHDRSZ + 24);
	char	   *p = VARDATA(t);

	if (unlikely(!hex_pairs_ready))
		hex_pairs_init();
	SET_VARSIZE(t, VARHDRSZ + 24);
	for (int i = 0; i < 12; i += 4)
	{
		uint16		q[4] = {hex_pairs[oid[i]], hex_pairs[oid[i + 1]],
		hex_pairs[oid[i + 2]], hex_pairs[oid[i + 3]]};

		memcpy(p + 2 * i, q, sizeof(q));
	}
	return PointerGetDatum(t);
}

/* The string bytes of a string-like BSON value (string, symbol). */
static inline const char *
iter_string(const bson_iter_t *iter, uint32_t *len)
{
	if (bson_iter_type_unsafe(iter) == BSON_TYPE_UTF8)
		return bson_iter_utf8(iter, len);
	return bson_iter_symbol(iter, len);
}

/* ----------------------------------------------------------------
 *		Decimal128 and exact decimal digits
 * ----------------------------------------------------------------
 */

typedef enum
{
	D128_FINITE,
	D128_NAN,
	D128_POS_INF,
	D128_NEG_INF
} D128Class;

typedef struct
{
	D128Class	cls;
	bool		negative;
	unsigned __int128 coef;		/* < 10^34 */
	int			exp;			/* value = coef * 10^exp */
} D128Parts;

/* Decode IEEE 754-2008 decimal128 in binary integer decimal encoding. */
static void
decode_decimal128(const bson_decimal128_t *d, D128Parts *p)
{
	uint64		high = d->high;
	uint64		low = d->low;
	unsigned int comb = (unsigned int) ((high >> 58) & 0x1F);

	p->negative = (high >> 63) != 0;
	p->coef = 0;
	p->exp = 0;
	if (comb == 0x1F)
	{
		p->cls = D128_NAN;
		return;
	}
	if (comb == 0x1E)
	{
		p->cls = p->negative ? D128_NEG_INF : D128_POS_INF;
		return;
	}
	p->cls = D128_FINITE;
	if (((high >> 61) & 3) == 3)
	{
		/* the coefficient would exceed 10^34 - 1: non-canonical, zero */
		p->exp = (int) ((high >> 47) & 0x3FFF) - 6176;
		return;
	}
	p->exp = (int) ((high >> 49) & 0x3FFF) - 6176;
	p->coef = ((unsigned __int128) (high & UINT64CONST(0x1FFFFFFFFFFFF)) << 64) | low;
	{
		/* 10^34 */
		unsigned __int128 limit = (unsigned __int128) UINT64CONST(10000000000000000) *
			UINT64CONST(1000000000000000000);

		if (p->coef >= limit)
			p->coef = 0;
	}
}

/* Write the decimal digits of v at the end of buf; returns the start. */
static char *
u128_digits(unsigned __int128 v, char *bufend)
{
	char	   *p = bufend;

	*--p = '\0';
	do
	{
		*--p = '0' + (int) (v % 10);
		v /= 10;
	} while (v != 0);
	return p;
}

/*
 * numeric from a sign, a string of decimal digits and a power of ten, as
 * plain digits (numeric_in's exponent range is narrower than decimal128's).
 */
static Numeric
numeric_from_digits(bool negative, const char *digits, int exp)
{
	StringInfoData buf;
	int			ndigits = strlen(digits);

	initStringInfo(&buf);
	if (negative)
		appendStringInfoChar(&buf, '-');
	if (exp >= 0)
	{
		appendBinaryStringInfo(&buf, digits, ndigits);
		for (int i = 0; i < exp; i++)
			appendStringInfoChar(&buf, '0');
	}
	else
	{
		int			frac = -exp;

		if (ndigits > frac)
		{
			appendBinaryStringInfo(&buf, digits, ndigits - frac);
			appendStringInfoChar(&buf, '.');
			appendStringInfoString(&buf, digits + ndigits - frac);
		}
		else
		{
			appendStringInfoString(&buf, "0.");
			for (int i = 0; i < frac - ndigits; i++)
				appendStringInfoChar(&buf, '0');
			appendStringInfoString(&buf, digits);
		}
	}
	return DatumGetNumeric(DirectFunctionCall3(numeric_in,
											   CStringGetDatum(buf.data),
											   ObjectIdGetDatum(InvalidOid),
											   Int32GetDatum(-1)));
}

static Numeric
numeric_special(const char *s)
{
	return DatumGetNumeric(DirectFunctionCall3(numeric_in,
											   CStringGetDatum(s),
											   ObjectIdGetDatum(InvalidOid),
											   Int32GetDatum(-1)));
}

/*
 * Values up to this magnitude go through int64_div_fast_to_numeric, which
 * multiplies by up to 1000 internally.
 */
#define FAST_NUMERIC_MAX INT64CONST(9000000000000000)

/*
 * numeric's short on-disk format (numeric.c; stable, pg_upgrade keeps it):
 * a varlena header, a 16-bit word holding sign, display scale and weight,
 * then base-10000 digits, most significant first, with no leading or
 * trailing zero digits.
 */
#define QN_SHORT				0x8000
#define QN_SHORT_SIGN_NEG		0x2000
#define QN_SHORT_DSCALE_SHIFT	7
#define QN_SHORT_DSCALE_MAX		63
#define QN_SHORT_WEIGHT_NEG		0x0040
#define QN_SHORT_WEIGHT_MASK	0x003F

/*
 * The numeric v / 10^scale (v <= FAST_NUMERIC_MAX), written directly in
 * the short format where int64_div_fast_to_numeric would take three
 * allocations; the same bytes.
 */
static Numeric
numeric_from_scaled(QleafColumnConv *conv, bool negative, uint64 v, int scale)
{
	static const uint64 pow10[] = {1, 10, 100, 1000};
	int16		digits[8];		/* least significant first */
	int			n = 0;
	int			low = 0;
	int			weight;
	uint16		header;
	Numeric		result;
	int16	   *out;
	Size		len;

	if (scale > QN_SHORT_DSCALE_MAX)
		return int64_div_fast_to_numeric(negative ? -(int64) v : (int64) v,
										 scale);

	/* align the decimal point on a base-10000 digit boundary */
	v *= pow10[(4 - scale % 4) % 4];
	while (v > 0)
	{
		digits[n++] = (int16) (v % 10000);
		v /= 10000;
	}
	while (low < n && digits[low] == 0)
		low++;

	if (n == 0)
	{
		/* zero has no digits, a positive sign and weight 0 */
		header = QN_SHORT | (scale << QN_SHORT_DSCALE_SHIFT);
		negative = false;
		weight = 0;
	}
	else
	{
		weight = n - 1 - (scale + 3) / 4;
		header = QN_SHORT | (negative ? QN_SHORT_SIGN_NEG : 0) |
			(scale << QN_SHORT_DSCALE_SHIFT) |
			(weight < 0 ? QN_SHORT_WEIGHT_NEG : 0) |
			(weight & QN_SHORT_WEIGHT_MASK);
	}

	len = VARHDRSZ + sizeof(uint16) + sizeof(int16) * (n - low);
	result = (Numeric) conv_alloc(conv, len);
	SET_VARSIZE(result, len);
	memcpy((char *) result + VARHDRSZ, &header, sizeof(uint16));
	out = (int16 *) ((char *) result + VARHDRSZ + sizeof(uint16));
	for (int i = n - 1; i >= low; i--)
		*out++ = digits[i];
	return result;
}

static Numeric
numeric_from_decimal128(const D128Parts *p)
{
	char		digits[48];

	switch (p->cls)
	{
		case D128_NAN:
			return numeric_special("NaN");
		case D128_POS_INF:
			return numeric_special("Infinity");
		case D128_NEG_INF:
			return numeric_special("-Infinity");
		case D128_FINITE:
			break;
	}
	if (p->coef <= (unsigned __int128) FAST_NUMERIC_MAX && p->exp <= 0)
	{
		int64		v = (int64) p->coef;

		return int64_div_fast_to_numeric(p->negative ? -v : v, -p->exp);
	}
	return numeric_from_digits(p->negative && p->coef != 0,
							   u128_digits(p->coef, digits + sizeof(digits)),
							   p->exp);
}

/*
 * The exact value of a finite double as numeric.  A double is m * 2^e;
 * with e < 0 that is m * 5^-e / 10^-e, whose digits we compute in base
 * 10^9 when they do not fit an int64.
 */
static Numeric
numeric_from_double_exact(double d)
{
	int			e;
	uint64		m;
	bool		neg = d < 0;

	if (isnan(d))
		return numeric_special("NaN");
	if (isinf(d))
		return numeric_special(neg ? "-Infinity" : "Infinity");
	if (d == 0)
		return int64_to_numeric(0);

	m = (uint64) ldexp(fabs(frexp(d, &e)), 53);
	e -= 53;
	while ((m & 1) == 0)
	{
		m >>= 1;
		e++;
	}

	if (e >= 0)
	{
		if (e < 63 && m <= ((uint64) FAST_NUMERIC_MAX >> e))
		{
			int64		v = (int64) (m << e);

			return int64_to_numeric(neg ? -v : v);
		}
	}
	else
	{
		int			k = -e;
		uint64		v = m;
		int			i;

		for (i = 0; i < k && v <= (uint64) FAST_NUMERIC_MAX / 5; i++)
			v *= 5;
		if (i == k)
			return int64_div_fast_to_numeric(neg ? -(int64) v : (int64) v, k);
	}

	/* Big-number path: limbs of 10^9, least significant first. */
	{
		uint32		limbs[100];
		int			nlimbs = 0;
		char		digits[100 * 9 + 2];
		char	   *p = digits;
		uint64		mm = m;
		int			steps;
		uint32		mult;
		int			chunk;

		while (mm != 0)
		{
			limbs[nlimbs++] = (uint32) (mm % 1000000000);
			mm /= 1000000000;
		}
		/* multiply by 2^e or 5^k in chunks of 2^29 or 5^12 */
		steps = e >= 0 ? e : -e;
		chunk = e >= 0 ? 29 : 12;
		while (steps > 0)
		{
			int			n = steps < chunk ? steps : chunk;
			uint64		carry = 0;

			mult = 1;
			for (int i = 0; i < n; i++)
				mult *= (e >= 0) ? 2 : 5;
			for (int i = 0; i < nlimbs; i++)
			{
				uint64		t = (uint64) limbs[i] * mult + carry;

				limbs[i] = (uint32) (t % 1000000000);
				carry = t / 1000000000;
			}
			while (carry != 0)
			{
				Assert(nlimbs < lengthof(limbs));
				limbs[nlimbs++] = (uint32) (carry % 1000000000);
				carry /= 1000000000;
			}
			steps -= n;
		}
		p += sprintf(p, "%u", limbs[nlimbs - 1]);
		for (int i = nlimbs - 2; i >= 0; i--)
			p += sprintf(p, "%09u", limbs[i]);
		return numeric_from_digits(neg, digits, e >= 0 ? 0 : e);
	}
}

/* Parse a decimal128 into a double (NaN and infinities kept). */
static bool
double_from_decimal128(const bson_iter_t *iter, double *out)
{
	bson_decimal128_t dec;
	char		str[BSON_DECIMAL128_STRING];
	char	   *end;

	bson_iter_decimal128_unsafe(iter, &dec);
	bson_decimal128_to_string(&dec, str);
	errno = 0;
	*out = strtod(str, &end);
	if (errno == ERANGE && (*out == 0 || isinf(*out)))
		return false;
	return true;
}

/*
 * Would numeric(p,s) accept n?  The same rule as the typmod coercion:
 * after rounding to s digits, |n| < 10^(p-s); NaN fits, infinities do not.
 */
static bool
numeric_fits_typmod(QleafColumnConv *conv, Numeric n, int32 typmod)
{
	int			precision = ((typmod - VARHDRSZ) >> 16) & 0xffff;
	int			scale = (((typmod - VARHDRSZ) & 0x7ff) ^ 1024) - 1024;
	Datum		rounded;

	if (numeric_is_nan(n))
		return true;
	if (numeric_is_inf(n))
		return false;
	if (conv->numeric_bound == (Datum) 0)
	{
		MemoryContext old = MemoryContextSwitchTo(conv->mcxt);
		char		buf[32];

		snprintf(buf, sizeof(buf), "1e%d", precision - scale);
		conv->numeric_bound = DirectFunctionCall3(numeric_in,
												  CStringGetDatum(buf),
												  ObjectIdGetDatum(InvalidOid),
												  Int32GetDatum(-1));
		MemoryContextSwitchTo(old);
	}
	rounded = DirectFunctionCall2(numeric_round, NumericGetDatum(n),
								  Int32GetDatum(scale));
	rounded = DirectFunctionCall1(numeric_abs, rounded);
	return DatumGetBool(DirectFunctionCall2(numeric_lt, rounded,
											conv->numeric_bound));
}

/* ----------------------------------------------------------------
 *		Integers
 * ----------------------------------------------------------------
 */

typedef enum
{
	INT_OK,
	INT_TYPE,					/* not a number */
	INT_RANGE,					/* out of int64 range */
	INT_FRACTION				/* not integral (or NaN) */
} IntResult;

static IntResult
iter_int64(const bson_iter_t *iter, int64 *out)
{
	switch (bson_iter_type_unsafe(iter))
	{
		case BSON_TYPE_INT32:
			*out = bson_iter_int32_unsafe(iter);
			return INT_OK;
		case BSON_TYPE_INT64:
			*out = bson_iter_int64_unsafe(iter);
			return INT_OK;
		case BSON_TYPE_DOUBLE:
			{
				double		d = bson_iter_double_unsafe(iter);

				if (isnan(d))
					return INT_FRACTION;
				if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
					return INT_RANGE;
				if (d != trunc(d))
					return INT_FRACTION;
				*out = (int64) d;
				return INT_OK;
			}
		case BSON_TYPE_DECIMAL128:
			{
				bson_decimal128_t dec;
				D128Parts	p;
				unsigned __int128 v;

				bson_iter_decimal128_unsafe(iter, &dec);
				decode_decimal128(&dec, &p);
				if (p.cls == D128_NAN)
					return INT_FRACTION;
				if (p.cls != D128_FINITE)
					return INT_RANGE;
				v = p.coef;
				if (v != 0 && p.exp > 0)
				{
					for (int i = 0; i < p.exp; i++)
					{
						if (v > (unsigned __int128) PG_UINT64_MAX)
							return INT_RANGE;
						v *= 10;
					}
				}
				else if (v != 0 && p.exp < 0)
				{
					for (int i = 0; i < -p.exp; i++)
					{
						if (v % 10 != 0)
							return INT_FRACTION;
						v /= 10;
					}
				}
				if (p.negative)
				{
					if (v > (unsigned __int128) PG_INT64_MAX + 1)
						return INT_RANGE;
					*out = (int64) (0 - (uint64) v);
				}
				else
				{
					if (v > (unsigned __int128) PG_INT64_MAX)
						return INT_RANGE;
					*out = (int64) v;
				}
				return INT_OK;
			}
		default:
			return INT_TYPE;
	}
}

/* ----------------------------------------------------------------
 *		Dates
 * ----------------------------------------------------------------
 */

/* PostgreSQL timestamp (µs since 2000) of a BSON date or timestamp. */
static bool
iter_timestamp(const bson_iter_t *iter, int64 *ts, bool *typeok)
{
	*typeok = true;
	if (bson_iter_type_unsafe(iter) == BSON_TYPE_DATE_TIME)
	{
		int64		ms = iter_date_ms(iter);
		int64		x;

		if (pg_sub_s64_overflow(ms, QLEAF_EPOCH_DIFF_MS, &x) ||
			pg_mul_s64_overflow(x, 1000, ts) ||
			!IS_VALID_TIMESTAMP(*ts))
			return false;
		return true;
	}
	if (bson_iter_type_unsafe(iter) == BSON_TYPE_TIMESTAMP)
	{
		uint32_t	t,
					i;

		bson_iter_timestamp(iter, &t, &i);
		*ts = ((int64) t - QLEAF_EPOCH_DIFF_SECS) * USECS_PER_SEC;
		return true;
	}
	*typeok = false;
	return false;
}

/* ----------------------------------------------------------------
 *		Per-value conversion
 * ----------------------------------------------------------------
 */

/* Convert to a character type; kind is QK_TEXT/VARCHAR/BPCHAR/NAME. */
static bool
convert_string(QleafColumnConv *conv, int kind, Oid typid, int32 typmod,
			   const bson_iter_t *iter, const bson_t *doc, int elemidx,
			   Datum *result)
{
	const char *s;
	uint32_t	len;
	const char *ps;
	int			plen;
	char		hex[25];

	switch (bson_iter_type_unsafe(iter))
	{
		case BSON_TYPE_UTF8:
		case BSON_TYPE_SYMBOL:
			s = iter_string(iter, &len);
			if (!string_to_server(conv->db_utf8, s, len, &ps, &plen))
				return conv_fail(conv, iter, doc, elemidx, typid, typmod, CF_VALUE,
								 string_problem(s, len));
			break;
		case BSON_TYPE_OID:
			bson_oid_to_string(bson_iter_oid_unsafe(iter), hex);
			ps = hex;
			plen = 24;
			break;
		default:
			return conv_fail(conv, iter, doc, elemidx, typid, typmod, CF_TYPE, NULL);
	}

	switch (kind)
	{
		case QK_TEXT:
			*result = PointerGetDatum(cstring_to_text_with_len(ps, plen));
			return true;
		case QK_NAME:
			{
				Name		n = (Name) palloc0(NAMEDATALEN);
				int			cut = plen;

				if (cut >= NAMEDATALEN)
					cut = pg_mbcliplen(ps, plen, NAMEDATALEN - 1);
				memcpy(NameStr(*n), ps, cut);
				*result = NameGetDatum(n);
				return true;
			}
		case QK_VARCHAR:
		case QK_BPCHAR:
			{
				text	   *t = cstring_to_text_with_len(ps, plen);

				if (typmod >= (int32) VARHDRSZ)
				{
					int			maxlen = typmod - VARHDRSZ;

					/* only trailing spaces may be cut, as on input */
					if (plen > maxlen &&
						pg_mbstrlen_with_len(ps, plen) > maxlen)
					{
						int			keep = pg_mbcharcliplen(ps, plen, maxlen);

						for (int j = keep; j < plen; j++)
						{
							if (ps[j] != ' ')
							{
								char	   *reason = psprintf("The string is longer than %d characters.", maxlen);

								return conv_fail(conv, iter, doc, elemidx, typid,
												 typmod, CF_VALUE, reason);
							}
						}
					}
					if (kind == QK_VARCHAR)
						*result = DirectFunctionCall3(varchar, PointerGetDatum(t),
													  Int32GetDatum(typmod),
													  BoolGetDatum(false));
					else
						*result = DirectFunctionCall3(bpchar, PointerGetDatum(t),
													  Int32GetDatum(typmod),
													  BoolGetDatum(false));
					return true;
				}
				*result = PointerGetDatum(t);
				return true;
			}
	}
	elog(ERROR, "unexpected string conversion kind %d", kind);
	return false;
}

static bool
convert_value(QleafColumnConv *conv, int kind, Oid typid, int32 typmod,
			  const bson_iter_t *iter, const bson_t *doc, int elemidx,
			  Datum *result)
{
	bson_type_t btype = bson_iter_type_unsafe(iter);

	switch (kind)
	{
		case QK_INT2:
		case QK_INT4:
		case QK_INT8:
			{
				int64		v;

				if (likely(btype == BSON_TYPE_INT32))
					v = bson_iter_int32_unsafe(iter);
				else
				{
					switch (iter_int64(iter, &v))
					{
						case INT_OK:
							break;
						case INT_TYPE:
							return conv_fail(conv, iter, doc, elemidx, typid, typmod,
											 CF_TYPE, NULL);
						case INT_RANGE:
							return conv_fail(conv, iter, doc, elemidx, typid, typmod,
											 CF_RANGE, NULL);
						case INT_FRACTION:
							return conv_fail(conv, iter, doc, elemidx, typid, typmod,
											 CF_VALUE, "The value is not an integer.");
					}
				}
				if (kind == QK_INT8)
					*result = Int64GetDatum(v);
				else if (kind == QK_INT4)
				{
					if (v < PG_INT32_MIN || v > PG_INT32_MAX)
						return conv_fail(conv, iter, doc, elemidx, typid, typmod,
										 CF_RANGE, NULL);
					*result = Int32GetDatum((int32) v);
				}
				else
				{
					if (v < PG_INT16_MIN || v > PG_INT16_MAX)
						return conv_fail(conv, iter, doc, elemidx, typid, typmod,
										 CF_RANGE, NULL);
					*result = Int16GetDatum((int16) v);
				}
				return true;
			}

		case QK_FLOAT4:
		case QK_FLOAT8:
			{
				double		d;

				switch (btype)
				{
					case BSON_TYPE_DOUBLE:
						d = bson_iter_double_unsafe(iter);
						break;
					case BSON_TYPE_INT32:
						d = bson_iter_int32_unsafe(iter);
						break;
					case BSON_TYPE_INT64:
						d = (double) bson_iter_int64_unsafe(iter);
						break;
					case BSON_TYPE_DECIMAL128:
						if (!double_from_decimal128(iter, &d))
							return conv_fail(conv, iter, doc, elemidx, typid, typmod,
											 CF_RANGE, NULL);
						break;
					default:
						return conv_fail(conv, iter, doc, elemidx, typid, typmod,
										 CF_TYPE, NULL);
				}
				if (kind == QK_FLOAT8)
				{
					*result = Float8GetDatum(d);
					return true;
				}
				else
				{
					float4		f = (float4) d;

					if ((isinf(f) && !isinf(d)) || (f == 0 && d != 0))
						return conv_fail(conv, iter, doc, elemidx, typid, typmod,
										 CF_RANGE, NULL);
					*result = Float4GetDatum(f);
					return true;
				}
			}

		case QK_NUMERIC:
			{
				Numeric		n;

				switch (btype)
				{
					case BSON_TYPE_INT32:
						n = int64_to_numeric(bson_iter_int32_unsafe(iter));
						break;
					case BSON_TYPE_INT64:
						n = int64_to_numeric(bson_iter_int64_unsafe(iter));
						break;
					case BSON_TYPE_DOUBLE:
						n = numeric_from_double_exact(bson_iter_double_unsafe(iter));
						break;
					case BSON_TYPE_DECIMAL128:
						{
							bson_decimal128_t dec;
							D128Parts	p;

							bson_iter_decimal128_unsafe(iter, &dec);
							decode_decimal128(&dec, &p);
							n = numeric_from_decimal128(&p);
							break;
						}
					default:
						return conv_fail(conv, iter, doc, elemidx, typid, typmod,
										 CF_TYPE, NULL);
				}
				*result = NumericGetDatum(n);
				if (typmod >= (int32) VARHDRSZ)
				{
					if (!numeric_fits_typmod(conv, n, typmod))
						return conv_fail(conv, iter, doc, elemidx, typid, typmod,
										 CF_RANGE, NULL);
					*result = DirectFunctionCall2(numeric, *result,
												  Int32GetDatum(typmod));
				}
				return true;
			}

		case QK_BOOL:
			if (btype != BSON_TYPE_BOOL)
				return conv_fail(conv, iter, doc, elemidx, typid, typmod,
								 CF_TYPE, NULL);
			*result = BoolGetDatum(bson_iter_bool_unsafe(iter));
			return true;

		case QK_TEXT:
			if (likely(btype == BSON_TYPE_UTF8))
			{
				size_t		len;
				const char *s = bson_iter_utf8_unsafe(iter, &len);

				if (likely(conv->db_utf8) &&
					likely(pg_verify_mbstr(PG_UTF8, s, (int) len, true)))
				{
					*result = PointerGetDatum(cstring_to_text_with_len(s, (int) len));
					return true;
				}
			}
			/* FALLTHROUGH */
		case QK_VARCHAR:
		case QK_BPCHAR:
		case QK_NAME:
			return convert_string(conv, kind, typid, typmod, iter, doc,
								  elemidx, result);

		case QK_BYTEA:
			{
				const uint8_t *data;
				uint32_t	len;
				bytea	   *b;

				if (btype == BSON_TYPE_BINARY)
				{
					bson_subtype_t subtype;

					bson_iter_binary(iter, &subtype, &len, &data);
				}
				else if (btype == BSON_TYPE_OID)
				{
					data = bson_iter_oid_unsafe(iter)->bytes;
					len = 12;
				}
				else
					return conv_fail(conv, iter, doc, elemidx, typid, typmod,
									 CF_TYPE, NULL);
				b = (bytea *) palloc(VARHDRSZ + len);
				SET_VARSIZE(b, VARHDRSZ + len);
				memcpy(VARDATA(b), data, len);
				*result = PointerGetDatum(b);
				return true;
			}

		case QK_UUID:
			{
				bson_subtype_t subtype;
				const uint8_t *data;
				uint32_t	len;
				pg_uuid_t  *u;

				if (btype != BSON_TYPE_BINARY)
					return conv_fail(conv, iter, doc, elemidx, typid, typmod,
									 CF_TYPE, NULL);
				bson_iter_binary(iter, &subtype, &len, &data);
				if ((subtype != BSON_SUBTYPE_UUID &&
					 subtype != BSON_SUBTYPE_UUID_DEPRECATED) || len != UUID_LEN)
					return conv_fail(conv, iter, doc, elemidx, typid, typmod, CF_VALUE,
									 "A uuid is read from 16 bytes of binary subtype 3 or 4.");
				u = (pg_uuid_t *) palloc(sizeof(pg_uuid_t));
				memcpy(u->data, data, UUID_LEN);
				*result = UUIDPGetDatum(u);
				return true;
			}

		case QK_TIMESTAMPTZ:
		case QK_TIMESTAMP:
			{
				int64		ts;
				bool		typeok;

				if (!iter_timestamp(iter, &ts, &typeok))
					return conv_fail(conv, iter, doc, elemidx, typid, typmod,
									 typeok ? CF_RANGE : CF_TYPE, NULL);
				if (typmod >= 0 && typmod < 3)
					AdjustTimestampForTypmod(&ts, typmod);
				*result = TimestampGetDatum(ts);
				return true;
			}

		case QK_DATE:
			{
				int64		days;

				if (btype == BSON_TYPE_DATE_TIME)
				{
					int64		ms = iter_date_ms(iter);

					/* floor division: dates before 1970 round down */
					days = ms / MS_PER_DAY;
					if (ms % MS_PER_DAY < 0)
						days--;
				}
				else if (btype == BSON_TYPE_TIMESTAMP)
				{
					uint32_t	t,
								i;

					bson_iter_timestamp(iter, &t, &i);
					days = (int64) t / SECS_PER_DAY;
				}
				else
					return conv_fail(conv, iter, doc, elemidx, typid, typmod,
									 CF_TYPE, NULL);
				days -= (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE);
				if (!IS_VALID_DATE(days))
					return conv_fail(conv, iter, doc, elemidx, typid, typmod,
									 CF_RANGE, NULL);
				*result = DateADTGetDatum((DateADT) days);
				return true;
			}

		case QK_JSON:
			{
				StringInfoData buf;

				initStringInfo(&buf);
				if (!json_append(&buf, iter, 0))
					return conv_fail(conv, iter, doc, elemidx, typid, typmod, CF_VALUE,
									 "It contains a string that is not valid UTF-8.");
				if (!conv->db_utf8)
				{
					const char *ps;
					int			plen;

					if (!utf8_to_db_encoding(buf.data, buf.len, &ps, &plen))
						return conv_fail(conv, iter, doc, elemidx, typid, typmod, CF_VALUE,
										 psprintf("The database encoding %s cannot represent all of its characters.",
												  GetDatabaseEncodingName()));
					*result = PointerGetDatum(cstring_to_text_with_len(ps, plen));
				}
				else
					*result = PointerGetDatum(cstring_to_text_with_len(buf.data, buf.len));
				pfree(buf.data);
				return true;
			}

		case QK_JSONB:
			{
				JsonbParseState *st = NULL;
				JsonbValue *res = NULL;

				if (!jsonb_push(&st, WJB_ELEM, iter, 0, &res))
					return conv_fail(conv, iter, doc, elemidx, typid, typmod, CF_VALUE,
									 "It contains a string that is not valid UTF-8, holds a NUL byte, or has characters the database encoding cannot represent.");
				*result = JsonbPGetDatum(JsonbValueToJsonb(res));
				return true;
			}

		case QK_TEXTIN:
			{
				uint32_t	len;
				const char *s;
				const char *ps;
				int			plen;

				if (btype != BSON_TYPE_UTF8 && btype != BSON_TYPE_SYMBOL)
					return conv_fail(conv, iter, doc, elemidx, typid, typmod,
									 CF_TYPE, NULL);
				s = iter_string(iter, &len);
				if (!string_to_server(conv->db_utf8, s, len, &ps, &plen))
					return conv_fail(conv, iter, doc, elemidx, typid, typmod, CF_VALUE,
									 string_problem(s, len));
				{
					ErrorContextCallback cb;
					ConvErrorContext c = {conv, doc, elemidx};

					cb.callback = conv_error_callback;
					cb.arg = &c;
					cb.previous = error_context_stack;
					error_context_stack = &cb;
					*result = InputFunctionCall(&conv->infunc, pnstrdup(ps, plen),
												conv->ioparam, typmod);
					error_context_stack = cb.previous;
				}
				return true;
			}
	}
	elog(ERROR, "unexpected conversion kind %d", kind);
	return false;
}

static bool
convert_array(QleafColumnConv *conv, const bson_iter_t *iter,
			  const bson_t *doc, Datum *result)
{
	bson_iter_t child;
	int			n = 0;
	int			cap = 16;
	Datum	   *values;
	bool	   *nulls;
	int			dims[1];
	int			lbs[1];

	if (bson_iter_type_unsafe(iter) != BSON_TYPE_ARRAY)
		return conv_fail(conv, iter, doc, -1, conv->typid, conv->typmod,
						 CF_TYPE, NULL);
	if (!bson_iter_recurse(iter, &child))
		return conv_fail(conv, iter, doc, -1, conv->typid, conv->typmod,
						 CF_VALUE, "The array is not valid BSON.");

	values = (Datum *) palloc(cap * sizeof(Datum));
	nulls = (bool *) palloc(cap * sizeof(bool));
	while (bson_iter_next(&child))
	{
		bson_type_t t = bson_iter_type(&child);

		if (n == cap)
		{
			cap *= 2;
			values = (Datum *) repalloc(values, cap * sizeof(Datum));
			nulls = (bool *) repalloc(nulls, cap * sizeof(bool));
		}
		if (t == BSON_TYPE_NULL || t == BSON_TYPE_UNDEFINED)
		{
			values[n] = (Datum) 0;
			nulls[n] = true;
		}
		else
		{
			if (!convert_value(conv, conv->elemkind, conv->elemtype,
							   conv->basetypmod, &child, doc, n, &values[n]))
				return false;	/* the whole array becomes NULL */
			nulls[n] = false;
		}
		if (OidIsValid(conv->elemdomain))
			checked_domain(conv, doc, n, values[n], nulls[n], conv->elemdomain,
						   &conv->elem_domain_extra);
		n++;
	}
	if (n == 0)
		*result = PointerGetDatum(construct_empty_array(conv->elemtype));
	else
	{
		dims[0] = n;
		lbs[0] = 1;
		*result = PointerGetDatum(construct_md_array(values, nulls, 1, dims, lbs,
													 conv->elemtype,
													 conv->elemlen,
													 conv->elembyval,
													 conv->elemalign));
	}
	pfree(values);
	pfree(nulls);
	return true;
}

/*
 * A UTF-8 string as text, when the database is UTF8 and the string valid
 * (else (Datum) 0, for the general path to explain).
 */
Datum
qleaf_text_from_utf8(QleafColumnConv *conv, const char *s, size_t len)
{
	if (likely(ascii_no_nul(s, len) ||
			   pg_verify_mbstr(PG_UTF8, s, (int) len, true)))
		return PointerGetDatum(conv_text(conv, s, len));
	return (Datum) 0;
}

/*
 * A finite decimal128 (16 bytes at value, as in BSON) of up to
 * FAST_NUMERIC_MAX with no positive exponent as numeric (else (Datum) 0,
 * for the general path).
 */
Datum
qleaf_numeric_from_d128(QleafColumnConv *conv, const uint8_t *value)
{
	bson_decimal128_t dec;
	uint64_t	w;
	D128Parts	p;

	/* as bson_iter_decimal128_unsafe reads it: low word first */
	memcpy(&w, value, sizeof(w));
	dec.low = BSON_UINT64_FROM_LE(w);
	memcpy(&w, value + 8, sizeof(w));
	dec.high = BSON_UINT64_FROM_LE(w);

	/*
	 * The usual case, as decode_decimal128 would find it: a finite value
	 * in the common encoding whose coefficient fits the low word.
	 */
	if (((dec.high >> 61) & 3) != 3 &&
		(dec.high & UINT64CONST(0x1FFFFFFFFFFFF)) == 0 &&
		dec.low <= (uint64) FAST_NUMERIC_MAX)
	{
		int			exp = (int) ((dec.high >> 49) & 0x3FFF) - 6176;

		if (exp <= 0)
			return NumericGetDatum(numeric_from_scaled(conv,
													   (dec.high >> 63) != 0,
													   dec.low, -exp));
		return (Datum) 0;
	}

	decode_decimal128(&dec, &p);
	if (p.cls == D128_FINITE &&
		p.coef <= (unsigned __int128) FAST_NUMERIC_MAX && p.exp <= 0)
		return NumericGetDatum(numeric_from_scaled(conv, p.negative,
												   (uint64) p.coef, -p.exp));
	return (Datum) 0;
}

/* Everything but the inline cases of qleaf_bson_to_datum. */
static pg_noinline Datum
bson_to_datum_general(QleafColumnConv *conv, const bson_iter_t *iter,
					  const bson_t *doc, bool *isnull)
{
	bson_type_t t = bson_iter_type_unsafe(iter);
	Datum		result = (Datum) 0;
	bool		ok;

	if (t == BSON_TYPE_NULL || t == BSON_TYPE_UNDEFINED)
		ok = false;
	else if (conv->kind == QK_ARRAY)
		ok = convert_array(conv, iter, doc, &result);
	else
		ok = convert_value(conv, conv->kind, conv->typid, conv->basetypmod,
						   iter, doc, -1, &result);
	*isnull = !ok;
	if (!ok)
		result = (Datum) 0;
	if (unlikely(OidIsValid(conv->domaintypid)))
		checked_domain(conv, doc, -1, result, *isnull, conv->domaintypid,
					   &conv->domain_extra);
	return result;
}

/*
 * The per-value entry point: the fast exact matches of qleaf_convert_fast,
 * else the general path.
 */
Datum
qleaf_bson_to_datum(QleafColumnConv *conv, const bson_iter_t *iter,
					const bson_t *doc, bool *isnull)
{
	bson_type_t t = bson_iter_type_unsafe(iter);
	const uint8_t *value;
	uint32_t	len = 0;
	Datum		result;

	if (t == BSON_TYPE_UTF8)
	{
		value = iter->raw + iter->d2;
		len = bson_iter_utf8_len_unsafe(iter);
	}
	else
		value = iter->raw + iter->d1;
	if (qleaf_convert_fast(conv, (uint8_t) t, value, len, &result))
	{
		*isnull = false;
		return result;
	}
	return bson_to_datum_general(conv, iter, doc, isnull);
}

/* ----------------------------------------------------------------
 *		JSON text rendering
 * ----------------------------------------------------------------
 */

/*
 * Is s valid UTF-8, NUL bytes allowed?  (JSON text can escape a NUL; the
 * PostgreSQL string types and jsonb cannot hold one.)
 */
static bool
utf8_valid_with_nul(const char *s, uint32_t len)
{
	while (len > 0)
	{
		const char *nul = memchr(s, '\0', len);
		uint32_t	seg = nul ? (uint32_t) (nul - s) : len;

		if (!pg_verify_mbstr(PG_UTF8, s, (int) seg, true))
			return false;
		if (nul == NULL)
			break;
		s += seg + 1;
		len -= seg + 1;
	}
	return true;
}

/* Append a JSON string; false if s is not valid UTF-8. */
static bool
json_append_string(StringInfo buf, const char *s, uint32_t len)
{
	if (!utf8_valid_with_nul(s, len))
		return false;
	appendStringInfoChar(buf, '"');
	for (uint32_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		switch (c)
		{
			case '"':
				appendStringInfoString(buf, "\\\"");
				break;
			case '\\':
				appendStringInfoString(buf, "\\\\");
				break;
			case '\b':
				appendStringInfoString(buf, "\\b");
				break;
			case '\f':
				appendStringInfoString(buf, "\\f");
				break;
			case '\n':
				appendStringInfoString(buf, "\\n");
				break;
			case '\r':
				appendStringInfoString(buf, "\\r");
				break;
			case '\t':
				appendStringInfoString(buf, "\\t");
				break;
			default:
				if (c < 0x20)
					appendStringInfo(buf, "\\u%04x", c);
				else
					appendStringInfoChar(buf, (char) c);
		}
	}
	appendStringInfoChar(buf, '"');
	return true;
}

/* Shortest round-trip text of a finite double, with ".0" if integral. */
static int
double_text(double d, char *out)
{
	int			len = double_to_shortest_decimal_buf(d, out);

	if (strpbrk(out, ".e") == NULL)
	{
		out[len++] = '.';
		out[len++] = '0';
		out[len] = '\0';
	}
	return len;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" for ms in years 1970-9999, else false. */
static bool
date_iso(int64 ms, char *out)
{
	int64		days,
				msofday;
	int			y,
				mo,
				d;
	int64		z,
				era,
				doe,
				yoe,
				doy,
				mp;

	/* 253402300800000 is 10000-01-01T00:00:00Z */
	if (ms < 0 || ms >= INT64CONST(253402300800000))
		return false;
	days = ms / MS_PER_DAY;
	msofday = ms % MS_PER_DAY;

	/* civil date from days since 1970-01-01 (proleptic Gregorian) */
	z = days + 719468;
	era = z / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = (int) (doy - (153 * mp + 2) / 5 + 1);
	mo = (int) (mp < 10 ? mp + 3 : mp - 9);
	y = (int) (yoe + era * 400 + (mo <= 2));

	sprintf(out, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
			y, mo, d,
			(int) (msofday / 3600000), (int) (msofday / 60000 % 60),
			(int) (msofday / 1000 % 60), (int) (msofday % 1000));
	return true;
}

static void
base64_append(StringInfo buf, const uint8_t *data, uint32_t len)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint32_t	i;

	enlargeStringInfo(buf, (len + 2) / 3 * 4 + 1);
	for (i = 0; i + 2 < len; i += 3)
	{
		uint32		v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];

		appendStringInfoChar(buf, b64[(v >> 18) & 63]);
		appendStringInfoChar(buf, b64[(v >> 12) & 63]);
		appendStringInfoChar(buf, b64[(v >> 6) & 63]);
		appendStringInfoChar(buf, b64[v & 63]);
	}
	if (i < len)
	{
		uint32		v = data[i] << 16;

		if (i + 1 < len)
			v |= data[i + 1] << 8;
		appendStringInfoChar(buf, b64[(v >> 18) & 63]);
		appendStringInfoChar(buf, b64[(v >> 12) & 63]);
		appendStringInfoChar(buf, i + 1 < len ? b64[(v >> 6) & 63] : '=');
		appendStringInfoChar(buf, '=');
	}
}

/* Regex options in alphabetical order, as Extended JSON wants them. */
static void
sorted_options(const char *opts, char *out)
{
	int			n = 0;

	for (const char *c = "ailmsux"; *c; c++)
		if (strchr(opts, *c))
			out[n++] = *c;
	/* keep anything unexpected, after the known flags */
	for (const char *c = opts; *c; c++)
		if (!strchr("ailmsux", *c) && n < 15)
			out[n++] = *c;
	out[n] = '\0';
}

static bool
json_append_container(StringInfo buf, const bson_iter_t *iter, bool is_array,
					  int depth)
{
	bson_iter_t child;
	bool		first = true;

	check_stack_depth();
	if (!bson_iter_recurse(iter, &child))
		return false;
	appendStringInfoChar(buf, is_array ? '[' : '{');
	while (bson_iter_next(&child))
	{
		if (!first)
			appendStringInfoString(buf, ", ");
		first = false;
		if (!is_array)
		{
			const char *key = bson_iter_key(&child);

			if (!json_append_string(buf, key, bson_iter_key_len(&child)))
				return false;
			appendStringInfoString(buf, ": ");
		}
		if (!json_append(buf, &child, depth + 1))
			return false;
	}
	appendStringInfoChar(buf, is_array ? ']' : '}');
	return true;
}

static bool
json_append(StringInfo buf, const bson_iter_t *iter, int depth)
{
	char		tmp[64];
	uint32_t	len;
	const char *s;

	switch (bson_iter_type_unsafe(iter))
	{
		case BSON_TYPE_DOUBLE:
			{
				double		d = bson_iter_double_unsafe(iter);

				if (isnan(d))
					appendStringInfoString(buf, "{\"$numberDouble\": \"NaN\"}");
				else if (isinf(d))
					appendStringInfoString(buf, d > 0 ?
										   "{\"$numberDouble\": \"Infinity\"}" :
										   "{\"$numberDouble\": \"-Infinity\"}");
				else
				{
					double_text(d, tmp);
					appendStringInfoString(buf, tmp);
				}
				return true;
			}
		case BSON_TYPE_UTF8:
			s = bson_iter_utf8(iter, &len);
			return json_append_string(buf, s, len);
		case BSON_TYPE_DOCUMENT:
			return json_append_container(buf, iter, false, depth);
		case BSON_TYPE_ARRAY:
			return json_append_container(buf, iter, true, depth);
		case BSON_TYPE_BINARY:
			{
				bson_subtype_t subtype;
				const uint8_t *data;

				bson_iter_binary(iter, &subtype, &len, &data);
				appendStringInfoString(buf, "{\"$binary\": {\"base64\": \"");
				base64_append(buf, data, len);
				appendStringInfo(buf, "\", \"subType\": \"%02x\"}}",
								 (unsigned int) subtype);
				return true;
			}
		case BSON_TYPE_UNDEFINED:
			appendStringInfoString(buf, "{\"$undefined\": true}");
			return true;
		case BSON_TYPE_OID:
			bson_oid_to_string(bson_iter_oid_unsafe(iter), tmp);
			appendStringInfo(buf, "{\"$oid\": \"%s\"}", tmp);
			return true;
		case BSON_TYPE_BOOL:
			appendStringInfoString(buf, bson_iter_bool_unsafe(iter) ? "true" : "false");
			return true;
		case BSON_TYPE_DATE_TIME:
			{
				int64		ms = iter_date_ms(iter);

				if (date_iso(ms, tmp))
					appendStringInfo(buf, "{\"$date\": \"%s\"}", tmp);
				else
					appendStringInfo(buf, "{\"$date\": {\"$numberLong\": \"" INT64_FORMAT "\"}}", ms);
				return true;
			}
		case BSON_TYPE_NULL:
			appendStringInfoString(buf, "null");
			return true;
		case BSON_TYPE_REGEX:
			{
				const char *opts;
				char		sorted[16];

				s = bson_iter_regex(iter, &opts);
				sorted_options(opts, sorted);
				appendStringInfoString(buf, "{\"$regularExpression\": {\"pattern\": ");
				if (!json_append_string(buf, s, strlen(s)))
					return false;
				appendStringInfo(buf, ", \"options\": \"%s\"}}", sorted);
				return true;
			}
		case BSON_TYPE_DBPOINTER:
			{
				const bson_oid_t *oid;

				bson_iter_dbpointer(iter, &len, &s, &oid);
				appendStringInfoString(buf, "{\"$dbPointer\": {\"$ref\": ");
				if (!json_append_string(buf, s, len))
					return false;
				bson_oid_to_string(oid, tmp);
				appendStringInfo(buf, ", \"$id\": {\"$oid\": \"%s\"}}}", tmp);
				return true;
			}
		case BSON_TYPE_CODE:
			s = bson_iter_code(iter, &len);
			appendStringInfoString(buf, "{\"$code\": ");
			if (!json_append_string(buf, s, len))
				return false;
			appendStringInfoChar(buf, '}');
			return true;
		case BSON_TYPE_SYMBOL:
			s = bson_iter_symbol(iter, &len);
			appendStringInfoString(buf, "{\"$symbol\": ");
			if (!json_append_string(buf, s, len))
				return false;
			appendStringInfoChar(buf, '}');
			return true;
		case BSON_TYPE_CODEWSCOPE:
			{
				uint32_t	scopelen;
				const uint8_t *scope;
				bson_t		sdoc;
				bson_iter_t sit;

				s = bson_iter_codewscope(iter, &len, &scopelen, &scope);
				appendStringInfoString(buf, "{\"$code\": ");
				if (!json_append_string(buf, s, len))
					return false;
				appendStringInfoString(buf, ", \"$scope\": ");
				if (!bson_init_static(&sdoc, scope, scopelen))
					return false;
				/* render the scope through a one-element wrapper iterator */
				appendStringInfoChar(buf, '{');
				if (bson_iter_init(&sit, &sdoc))
				{
					bool		first = true;

					while (bson_iter_next(&sit))
					{
						if (!first)
							appendStringInfoString(buf, ", ");
						first = false;
						if (!json_append_string(buf, bson_iter_key(&sit),
												bson_iter_key_len(&sit)))
							return false;
						appendStringInfoString(buf, ": ");
						if (!json_append(buf, &sit, depth + 1))
							return false;
					}
				}
				appendStringInfoString(buf, "}}");
				return true;
			}
		case BSON_TYPE_INT32:
			appendStringInfo(buf, "%d", bson_iter_int32_unsafe(iter));
			return true;
		case BSON_TYPE_TIMESTAMP:
			{
				uint32_t	t,
							i;

				bson_iter_timestamp(iter, &t, &i);
				appendStringInfo(buf, "{\"$timestamp\": {\"t\": %u, \"i\": %u}}", t, i);
				return true;
			}
		case BSON_TYPE_INT64:
			appendStringInfo(buf, INT64_FORMAT, (int64) bson_iter_int64_unsafe(iter));
			return true;
		case BSON_TYPE_DECIMAL128:
			{
				bson_decimal128_t dec;
				char		str[BSON_DECIMAL128_STRING];

				bson_iter_decimal128_unsafe(iter, &dec);
				bson_decimal128_to_string(&dec, str);
				appendStringInfo(buf, "{\"$numberDecimal\": \"%s\"}", str);
				return true;
			}
		case BSON_TYPE_MINKEY:
			appendStringInfoString(buf, "{\"$minKey\": 1}");
			return true;
		case BSON_TYPE_MAXKEY:
			appendStringInfoString(buf, "{\"$maxKey\": 1}");
			return true;
		case BSON_TYPE_EOD:
			break;
	}
	return false;
}

void
qleaf_append_json_value(StringInfo buf, const bson_iter_t *iter)
{
	if (!json_append(buf, iter, 0))
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("cannot render BSON %s as JSON",
						qleaf_bson_type_name(bson_iter_type_unsafe(iter))),
				 errdetail("It contains a string that is not valid UTF-8.")));
}

/* ----------------------------------------------------------------
 *		jsonb building
 * ----------------------------------------------------------------
 */

static inline JsonbValue *
jb_push_string(JsonbParseState **st, JsonbIteratorToken tok, char *s, int len)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = s;
	v.val.string.len = len;
	return pushJsonbValue(st, tok, &v);
}

static inline JsonbValue *
jb_push_numeric(JsonbParseState **st, JsonbIteratorToken tok, Numeric n)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = n;
	return pushJsonbValue(st, tok, &v);
}

static inline JsonbValue *
jb_push_bool(JsonbParseState **st, JsonbIteratorToken tok, bool b)
{
	JsonbValue	v;

	v.type = jbvBool;
	v.val.boolean = b;
	return pushJsonbValue(st, tok, &v);
}

static inline void
jb_key(JsonbParseState **st, const char *key)
{
	jb_push_string(st, WJB_KEY, (char *) key, strlen(key));
}

/* A server-encoded copy (or the original) of a UTF-8 string, or NULL. */
static char *
jb_string(const char *s, uint32_t len, int *outlen)
{
	const char *ps;

	if (!string_to_server(GetDatabaseEncoding() == PG_UTF8, s, len, &ps, outlen))
		return NULL;
	return (char *) ps;
}

/* Push {"key": <string>} as a complete one-member object. */
static void
jb_wrap_string(JsonbParseState **st, const char *key,
			   char *s, int len, JsonbValue **res)
{
	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	jb_key(st, key);
	jb_push_string(st, WJB_VALUE, s, len);
	*res = pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

/* A scalar value at the top level needs jsonb's raw-scalar array. */
static bool
is_container_in_json(const bson_iter_t *iter)
{
	switch (bson_iter_type_unsafe(iter))
	{
		case BSON_TYPE_DOUBLE:
			{
				double		d = bson_iter_double_unsafe(iter);

				return isnan(d) || isinf(d);
			}
		case BSON_TYPE_UTF8:
		case BSON_TYPE_BOOL:
		case BSON_TYPE_NULL:
		case BSON_TYPE_INT32:
		case BSON_TYPE_INT64:
			return false;
		default:
			return true;
	}
}

static bool
jsonb_push_container(JsonbParseState **st, const bson_iter_t *iter,
					 bool is_array, int depth, JsonbValue **res)
{
	bson_iter_t child;

	check_stack_depth();
	if (!bson_iter_recurse(iter, &child))
		return false;
	pushJsonbValue(st, is_array ? WJB_BEGIN_ARRAY : WJB_BEGIN_OBJECT, NULL);
	while (bson_iter_next(&child))
	{
		if (!is_array)
		{
			int			klen;
			char	   *key = jb_string(bson_iter_key(&child),
										bson_iter_key_len(&child), &klen);

			if (key == NULL)
				return false;
			jb_push_string(st, WJB_KEY, key, klen);
		}
		if (!jsonb_push(st, is_array ? WJB_ELEM : WJB_VALUE, &child,
						depth + 1, res))
			return false;
	}
	*res = pushJsonbValue(st, is_array ? WJB_END_ARRAY : WJB_END_OBJECT, NULL);
	return true;
}

/*
 * Push the value at iter as jsonb.  tok is WJB_VALUE inside an object and
 * WJB_ELEM inside an array; at the top level (*st NULL) a scalar is
 * wrapped in jsonb's raw-scalar array.  *res receives the final value.
 */
static bool
jsonb_push(JsonbParseState **st, JsonbIteratorToken tok,
		   const bson_iter_t *iter, int depth, JsonbValue **res)
{
	bson_type_t t = bson_iter_type_unsafe(iter);
	bool		top_scalar = (*st == NULL && !is_container_in_json(iter));
	uint32_t	len;
	const char *s;
	char	   *ps;
	int			plen;
	char		tmp[64];

	if (top_scalar)
	{
		JsonbValue	arr;

		arr.type = jbvArray;
		arr.val.array.rawScalar = true;
		arr.val.array.nElems = 1;
		arr.val.array.elems = NULL;
		pushJsonbValue(st, WJB_BEGIN_ARRAY, &arr);
		tok = WJB_ELEM;
	}

	switch (t)
	{
		case BSON_TYPE_DOUBLE:
			{
				double		d = bson_iter_double_unsafe(iter);

				if (isnan(d) || isinf(d))
				{
					const char *sv = isnan(d) ? "NaN" : (d > 0 ? "Infinity" : "-Infinity");

					jb_wrap_string(st, "$numberDouble", (char *) sv,
								   strlen(sv), res);
					break;
				}
				double_text(d, tmp);
				*res = jb_push_numeric(st, tok,
									   DatumGetNumeric(DirectFunctionCall3(numeric_in,
																		   CStringGetDatum(tmp),
																		   ObjectIdGetDatum(InvalidOid),
																		   Int32GetDatum(-1))));
				break;
			}
		case BSON_TYPE_UTF8:
			s = bson_iter_utf8(iter, &len);
			ps = jb_string(s, len, &plen);
			if (ps == NULL)
				return false;
			*res = jb_push_string(st, tok, ps, plen);
			break;
		case BSON_TYPE_DOCUMENT:
			if (!jsonb_push_container(st, iter, false, depth, res))
				return false;
			break;
		case BSON_TYPE_ARRAY:
			if (!jsonb_push_container(st, iter, true, depth, res))
				return false;
			break;
		case BSON_TYPE_BINARY:
			{
				bson_subtype_t subtype;
				const uint8_t *data;
				StringInfoData b;

				bson_iter_binary(iter, &subtype, &len, &data);
				initStringInfo(&b);
				base64_append(&b, data, len);
				pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
				jb_key(st, "$binary");
				pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
				jb_key(st, "base64");
				jb_push_string(st, WJB_VALUE, b.data, b.len);
				jb_key(st, "subType");
				jb_push_string(st, WJB_VALUE, psprintf("%02x", (unsigned int) subtype), 2);
				pushJsonbValue(st, WJB_END_OBJECT, NULL);
				*res = pushJsonbValue(st, WJB_END_OBJECT, NULL);
				break;
			}
		case BSON_TYPE_UNDEFINED:
			pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
			jb_key(st, "$undefined");
			jb_push_bool(st, WJB_VALUE, true);
			*res = pushJsonbValue(st, WJB_END_OBJECT, NULL);
			break;
		case BSON_TYPE_OID:
			ps = palloc(25);
			bson_oid_to_string(bson_iter_oid_unsafe(iter), ps);
			jb_wrap_string(st, "$oid", ps, 24, res);
			break;
		case BSON_TYPE_BOOL:
			*res = jb_push_bool(st, tok, bson_iter_bool_unsafe(iter));
			break;
		case BSON_TYPE_DATE_TIME:
			{
				int64		ms = iter_date_ms(iter);

				ps = palloc(32);
				if (date_iso(ms, ps))
					jb_wrap_string(st, "$date", ps, strlen(ps), res);
				else
				{
					snprintf(ps, 32, INT64_FORMAT, ms);
					pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
					jb_key(st, "$date");
					pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
					jb_key(st, "$numberLong");
					jb_push_string(st, WJB_VALUE, ps, strlen(ps));
					pushJsonbValue(st, WJB_END_OBJECT, NULL);
					*res = pushJsonbValue(st, WJB_END_OBJECT, NULL);
				}
				break;
			}
		case BSON_TYPE_NULL:
			{
				JsonbValue	v;

				v.type = jbvNull;
				*res = pushJsonbValue(st, tok, &v);
				break;
			}
		case BSON_TYPE_REGEX:
			{
				const char *opts;
				char	   *sorted = palloc(16);

				s = bson_iter_regex(iter, &opts);
				ps = jb_string(s, strlen(s), &plen);
				if (ps == NULL)
					return false;
				sorted_options(opts, sorted);
				pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
				jb_key(st, "$regularExpression");
				pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
				jb_key(st, "pattern");
				jb_push_string(st, WJB_VALUE, ps, plen);
				jb_key(st, "options");
				jb_push_string(st, WJB_VALUE, sorted, strlen(sorted));
				pushJsonbValue(st, WJB_END_OBJECT, NULL);
				*res = pushJsonbValue(st, WJB_END_OBJECT, NULL);
				break;
			}
		case BSON_TYPE_DBPOINTER:
			{
				const bson_oid_t *oid;
				char	   *hex = palloc(25);

				bson_iter_dbpointer(iter, &len, &s, &oid);
				ps = jb_string(s, len, &plen);
				if (ps == NULL)
					return false;
				bson_oid_to_string(oid, hex);
				pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
				jb_key(st, "$dbPointer");
				pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
				jb_key(st, "$ref");
				jb_push_string(st, WJB_VALUE, ps, plen);
				jb_key(st, "$id");
				jb_wrap_string(st, "$oid", hex, 24, res);
				pushJsonbValue(st, WJB_END_OBJECT, NULL);
				*res = pushJsonbValue(st, WJB_END_OBJECT, NULL);
				break;
			}
		case BSON_TYPE_CODE:
		case BSON_TYPE_SYMBOL:
			s = (t == BSON_TYPE_CODE) ? bson_iter_code(iter, &len)
				: bson_iter_symbol(iter, &len);
			ps = jb_string(s, len, &plen);
			if (ps == NULL)
				return false;
			jb_wrap_string(st, t == BSON_TYPE_CODE ? "$code" : "$symbol",
						   ps, plen, res);
			break;
		case BSON_TYPE_CODEWSCOPE:
			{
				uint32_t	scopelen;
				const uint8_t *scope;
				bson_t		sdoc;
				bson_iter_t sit;

				s = bson_iter_codewscope(iter, &len, &scopelen, &scope);
				ps = jb_string(s, len, &plen);
				if (ps == NULL || !bson_init_static(&sdoc, scope, scopelen) ||
					!bson_iter_init(&sit, &sdoc))
					return false;
				pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
				jb_key(st, "$code");
				jb_push_string(st, WJB_VALUE, ps, plen);
				jb_key(st, "$scope");
				pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
				while (bson_iter_next(&sit))
				{
					int			klen;
					char	   *key = jb_string(bson_iter_key(&sit),
												bson_iter_key_len(&sit), &klen);

					if (key == NULL)
						return false;
					jb_push_string(st, WJB_KEY, key, klen);
					if (!jsonb_push(st, WJB_VALUE, &sit, depth + 1, res))
						return false;
				}
				pushJsonbValue(st, WJB_END_OBJECT, NULL);
				*res = pushJsonbValue(st, WJB_END_OBJECT, NULL);
				break;
			}
		case BSON_TYPE_INT32:
			*res = jb_push_numeric(st, tok, int64_to_numeric(bson_iter_int32_unsafe(iter)));
			break;
		case BSON_TYPE_INT64:
			*res = jb_push_numeric(st, tok, int64_to_numeric(bson_iter_int64_unsafe(iter)));
			break;
		case BSON_TYPE_TIMESTAMP:
			{
				uint32_t	tt,
							ii;

				bson_iter_timestamp(iter, &tt, &ii);
				pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
				jb_key(st, "$timestamp");
				pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
				jb_key(st, "t");
				jb_push_numeric(st, WJB_VALUE, int64_to_numeric(tt));
				jb_key(st, "i");
				jb_push_numeric(st, WJB_VALUE, int64_to_numeric(ii));
				pushJsonbValue(st, WJB_END_OBJECT, NULL);
				*res = pushJsonbValue(st, WJB_END_OBJECT, NULL);
				break;
			}
		case BSON_TYPE_DECIMAL128:
			{
				bson_decimal128_t dec;

				ps = palloc(BSON_DECIMAL128_STRING);
				bson_iter_decimal128_unsafe(iter, &dec);
				bson_decimal128_to_string(&dec, ps);
				jb_wrap_string(st, "$numberDecimal", ps, strlen(ps), res);
				break;
			}
		case BSON_TYPE_MINKEY:
		case BSON_TYPE_MAXKEY:
			pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
			jb_key(st, t == BSON_TYPE_MINKEY ? "$minKey" : "$maxKey");
			jb_push_numeric(st, WJB_VALUE, int64_to_numeric(1));
			*res = pushJsonbValue(st, WJB_END_OBJECT, NULL);
			break;
		case BSON_TYPE_EOD:
			return false;
	}

	if (top_scalar)
		*res = pushJsonbValue(st, WJB_END_ARRAY, NULL);
	return true;
}

Datum
qleaf_bson_document_to_jsonb(const bson_t *doc)
{
	JsonbParseState *st = NULL;
	JsonbValue *res = NULL;
	bson_iter_t it;

	if (!bson_iter_init(&it, doc))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("invalid BSON document")));
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	while (bson_iter_next(&it))
	{
		int			klen;
		char	   *key = jb_string(bson_iter_key(&it), bson_iter_key_len(&it),
									&klen);

		if (key == NULL || (jb_push_string(&st, WJB_KEY, key, klen),
							!jsonb_push(&st, WJB_VALUE, &it, 1, &res)))
			ereport(ERROR,
					(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
					 errmsg("cannot convert BSON document to jsonb"),
					 errdetail("Field \"%s\" of the document with _id %s holds a string that is not valid UTF-8 or contains a NUL byte, which jsonb cannot hold.",
							   key ? key : "?", id_for_message(doc))));
	}
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return JsonbPGetDatum(JsonbValueToJsonb(res));
}

/*-------------------------------------------------------------------------
 *
 * bson_out.c
 *		  PostgreSQL Datum -> BSON conversion for qleaf_fdw's writes
 *
 * Design rules
 * ------------
 * - The inverse of convert.c: every value is written as the BSON type
 *   that reads back through the same column type as the same value.  A
 *   value BSON cannot hold exactly is an ERROR naming the column, never a
 *   silently different value.
 * - Scalars are appended straight from the Datum; only numeric (its
 *   digits), types without a mapping (their output function) and
 *   Extended JSON wrappers go through text.
 * - Field names MongoDB cannot store or that qleaf_fdw could not address
 *   (empty, starting with "$", containing ".") are refused here, before
 *   anything is sent.
 *
 * What each column type writes
 * ----------------------------
 *	boolean						bool
 *	smallint, integer			int32
 *	bigint						int64
 *	real, double precision		double (NaN and +-Infinity included)
 *	numeric						Decimal128, exactly: more than 34
 *								significant digits, or an exponent outside
 *								Decimal128's range, is an error (trailing
 *								zeros beyond 34 digits are dropped first).
 *								NaN and +-Infinity are Decimal128's.  With
 *								bson_type 'double': the nearest double.
 *	text, varchar, char, name	string (char(n) with its padding); with
 *								bson_type 'objectId' an ObjectId (24 hex
 *								digits, else an error).  A text _id column
 *								writes 24 hex digits as an ObjectId and
 *								anything else as a string, unless its
 *								bson_type is 'string'.
 *	bytea						binData subtype 0
 *	uuid						binData subtype 4
 *	date						date: midnight UTC of that day
 *	timestamp, timestamptz		date (milliseconds since 1970 UTC; a
 *								timestamp without time zone is taken as
 *								UTC).  A value with microseconds that are
 *								not whole milliseconds is an error (declare
 *								the column timestamptz(3) to have
 *								PostgreSQL round), and so is +-infinity.
 *	json, jsonb					objects, arrays, strings, numbers (an
 *								integral number without a decimal point is
 *								int32 when it fits, else int64, else
 *								double; any other number is a double),
 *								booleans, null; the Extended JSON wrappers
 *								of convert.c's rendering ({"$oid": ...},
 *								{"$date": ...}, {"$numberDecimal": ...},
 *								...) become their BSON types.
 *	T[]							array of T's values (NULL elements are
 *								null); multidimensional arrays are errors.
 *	domains						as their base type
 *	any other type				string, its output function's text
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/base64.h"
#include "datatype/timestamp.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/float.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "bson_out.h"

enum
{
	BK_BOOL = 1,
	BK_INT2,
	BK_INT4,
	BK_INT8,
	BK_FLOAT4,
	BK_FLOAT8,
	BK_NUMERIC,
	BK_TEXT,
	BK_NAME,
	BK_BYTEA,
	BK_UUID,
	BK_DATE,
	BK_TIMESTAMP,
	BK_TIMESTAMPTZ,
	BK_JSON,
	BK_JSONB,
	BK_OTHER,
	BK_ARRAY
};

/* Milliseconds from the Unix epoch to the PostgreSQL epoch. */
#define EPOCH_DIFF_MS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000)

/* Decimal128: 34 digits, exponents -6176 .. 6111 of the coefficient. */
#define D128_DIGITS		34
#define D128_EXP_MIN	(-6176)
#define D128_EXP_MAX	6111

/* Deepest JSON nesting written (MongoDB stores at most 100 levels). */
#define MAX_JSON_DEPTH	200

static void append_scalar(bson_t *doc, const char *key, QleafWriteConv *wc,
						  int kind, Oid typid, FmgrInfo *outfunc,
						  Datum value);
static void append_jsonb_value(bson_t *doc, const char *key,
							   QleafWriteConv *wc, JsonbValue *v, int depth);
static void append_jsonb_container(bson_t *doc, QleafWriteConv *wc,
								   JsonbContainer *c, int depth);

QleafBsonType
qleaf_parse_bson_type(const char *value)
{
	if (pg_strcasecmp(value, "objectId") == 0)
		return QLEAF_BT_OBJECTID;
	if (pg_strcasecmp(value, "string") == 0)
		return QLEAF_BT_STRING;
	if (pg_strcasecmp(value, "decimal") == 0)
		return QLEAF_BT_DECIMAL;
	if (pg_strcasecmp(value, "double") == 0)
		return QLEAF_BT_DOUBLE;
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
			 errmsg("invalid value for option \"bson_type\": \"%s\"", value),
			 errhint("Valid values are \"objectId\", \"string\", \"decimal\" and \"double\".")));
	return QLEAF_BT_AUTO;		/* keep compiler quiet */
}

static int
kind_for_type(Oid typid)
{
	switch (typid)
	{
		case BOOLOID:
			return BK_BOOL;
		case INT2OID:
			return BK_INT2;
		case INT4OID:
			return BK_INT4;
		case INT8OID:
			return BK_INT8;
		case FLOAT4OID:
			return BK_FLOAT4;
		case FLOAT8OID:
			return BK_FLOAT8;
		case NUMERICOID:
			return BK_NUMERIC;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
			return BK_TEXT;
		case NAMEOID:
			return BK_NAME;
		case BYTEAOID:
			return BK_BYTEA;
		case UUIDOID:
			return BK_UUID;
		case DATEOID:
			return BK_DATE;
		case TIMESTAMPOID:
			return BK_TIMESTAMP;
		case TIMESTAMPTZOID:
			return BK_TIMESTAMPTZ;
		case JSONOID:
			return BK_JSON;
		case JSONBOID:
			return BK_JSONB;
		default:
			return BK_OTHER;
	}
}

void
qleaf_init_write_conv(QleafWriteConv *wc, Oid typid, const char *colname,
					  const char *field, QleafBsonType bson_type)
{
	Oid			base = getBaseType(typid);
	Oid			elem = get_element_type(base);
	int			scalar_kind;

	memset(wc, 0, sizeof(*wc));
	wc->typid = typid;
	wc->colname = colname;
	wc->field = field;
	wc->bson_type = bson_type;
	wc->is_id = strcmp(field, "_id") == 0;
	wc->basetype = base;

	if (OidIsValid(elem) && get_typlen(base) == -1)
	{
		Oid			out;
		bool		isvarlena;

		wc->kind = BK_ARRAY;
		wc->elemtype = getBaseType(elem);
		wc->elemkind = kind_for_type(wc->elemtype);
		get_typlenbyvalalign(elem, &wc->elemlen, &wc->elembyval,
							 &wc->elemalign);
		getTypeOutputInfo(elem, &out, &isvarlena);
		fmgr_info(out, &wc->elem_outfunc);
		scalar_kind = wc->elemkind;
	}
	else
	{
		wc->kind = kind_for_type(base);
		if (wc->kind == BK_OTHER)
		{
			Oid			out;
			bool		isvarlena;

			getTypeOutputInfo(typid, &out, &isvarlena);
			fmgr_info(out, &wc->outfunc);
		}
		scalar_kind = wc->kind;
	}

	if (((bson_type == QLEAF_BT_OBJECTID || bson_type == QLEAF_BT_STRING) &&
		 scalar_kind != BK_TEXT && scalar_kind != BK_NAME) ||
		((bson_type == QLEAF_BT_DECIMAL || bson_type == QLEAF_BT_DOUBLE) &&
		 scalar_kind != BK_NUMERIC))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("option \"bson_type\" of column \"%s\" does not apply to type %s",
						colname, format_type_be(typid)),
				 errhint("\"objectId\" and \"string\" apply to text, varchar, char and name columns (and their arrays), \"decimal\" and \"double\" to numeric columns.")));
}

/* ----------------------------------------------------------------
 *		Errors
 * ----------------------------------------------------------------
 */

static void
write_error(QleafWriteConv *wc, const char *problem, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("cannot write the value of column \"%s\" to MongoDB field \"%s\"",
					wc->colname, wc->field),
			 errdetail("%s", problem),
			 hint ? errhint("%s", hint) : 0));
}

void
qleaf_check_field_name(const char *key, int len, const char *colname)
{
	const char *problem = NULL;

	if (len == 0)
		problem = "MongoDB field names cannot be empty.";
	else if (key[0] == '$')
		problem = "MongoDB field names cannot start with \"$\".";
	else if (memchr(key, '.', len) != NULL)
		problem = "Field names with \".\" cannot be addressed by field paths.";
	else if (memchr(key, '\0', len) != NULL)
		problem = "MongoDB field names cannot contain the NUL character.";
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid MongoDB field name \"%.*s\" in the value of column \"%s\"",
						Min(len, 100), key, colname),
				 errdetail("%s", problem),
				 errhint("Rename the key; Extended JSON wrappers such as {\"$oid\": \"...\"} are the only keys that may start with \"$\".")));
}

/* ----------------------------------------------------------------
 *		Strings
 * ----------------------------------------------------------------
 */

/*
 * A string of the database encoding as UTF-8 (BSON strings are UTF-8).
 * Returns s itself when no conversion is needed.
 */
static const char *
to_utf8(QleafWriteConv *wc, const char *s, int len, int *outlen)
{
	int			enc = GetDatabaseEncoding();
	char	   *conv;

	if (enc == PG_UTF8)
	{
		*outlen = len;
		return s;
	}
	if (enc == PG_SQL_ASCII)
	{
		if (!bson_utf8_validate(s, len, false))
			write_error(wc, "The value is not valid UTF-8, which BSON strings must be.",
						NULL);
		*outlen = len;
		return s;
	}
	conv = pg_server_to_any(s, len, PG_UTF8);
	if (conv == s)
		*outlen = len;
	else
		*outlen = strlen(conv);
	return conv;
}

static void
append_string(bson_t *doc, const char *key, QleafWriteConv *wc,
			  const char *s, int len)
{
	int			ulen;
	const char *u;

	/* an ObjectId written as its hex digits */
	if (wc->bson_type == QLEAF_BT_OBJECTID ||
		(wc->is_id && wc->bson_type == QLEAF_BT_AUTO))
	{
		if (len == 24 && bson_oid_is_valid(s, 24))
		{
			bson_oid_t	oid;
			char		hex[25];

			memcpy(hex, s, 24);
			hex[24] = '\0';
			bson_oid_init_from_string(&oid, hex);
			bson_append_oid(doc, key, -1, &oid);
			return;
		}
		if (wc->bson_type == QLEAF_BT_OBJECTID)
			write_error(wc, psprintf("\"%.*s\" is not an ObjectId: an ObjectId is written as 24 hexadecimal digits.",
									 Min(len, 100), s),
						NULL);
	}
	u = to_utf8(wc, s, len, &ulen);
	bson_append_utf8(doc, key, -1, u, ulen);
}

/* ----------------------------------------------------------------
 *		Numbers and times
 * ----------------------------------------------------------------
 */

/*
 * A numeric as a Decimal128, exactly.  NaN and +-Infinity map to
 * Decimal128's own; finite values are rebuilt from their digits as
 * coefficient and exponent so that their scale is kept (1.50 stays
 * 1.50).
 */
static void
append_decimal(bson_t *doc, const char *key, QleafWriteConv *wc, Numeric n)
{
	char	   *s = DatumGetCString(DirectFunctionCall1(numeric_out,
														NumericGetDatum(n)));
	bson_decimal128_t dec;
	StringInfoData digits;
	char	   *shown;
	bool		negative = false;
	bool		point = false;
	int			exp = 0;
	int			ndigits;
	const char *p;

	if (numeric_is_nan(n) || numeric_is_inf(n))
	{
		if (!bson_decimal128_from_string(s, &dec))
			elog(ERROR, "qleaf_fdw: Decimal128 rejected \"%s\"", s);
		bson_append_decimal128(doc, key, -1, &dec);
		return;
	}

	shown = strlen(s) > 60 ? psprintf("%.50s...", s) : s;
	initStringInfo(&digits);
	p = s;
	if (*p == '-')
	{
		negative = true;
		p++;
	}
	for (; *p; p++)
	{
		if (*p == '.')
			point = true;
		else
		{
			/* leading zeros are not significant */
			if (!(digits.len == 0 && *p == '0'))
				appendStringInfoChar(&digits, *p);
			if (point)
				exp--;
		}
	}
	if (digits.len == 0)
		appendStringInfoChar(&digits, '0');
	ndigits = digits.len;

	/* drop trailing zeros beyond what Decimal128 holds */
	while (ndigits > D128_DIGITS && digits.data[ndigits - 1] == '0')
	{
		ndigits--;
		exp++;
	}
	digits.data[ndigits] = '\0';
	if (ndigits > D128_DIGITS)
		write_error(wc,
					psprintf("The numeric value %s has %d significant digits; MongoDB's Decimal128 holds %d.",
							 shown, ndigits, D128_DIGITS),
					"Round the value, or write a double with the column option bson_type 'double'.");
	if (exp < D128_EXP_MIN || exp > D128_EXP_MAX)
		write_error(wc,
					psprintf("The numeric value %s is outside the range of MongoDB's Decimal128.",
							 shown),
					NULL);

	{
		char	   *text = psprintf("%s%sE%d", negative ? "-" : "",
									digits.data, exp);

		if (!bson_decimal128_from_string(text, &dec))
			write_error(wc,
						psprintf("The numeric value %s cannot be represented as a Decimal128.", shown),
						NULL);
		pfree(text);
	}
	bson_append_decimal128(doc, key, -1, &dec);
	pfree(digits.data);
	pfree(s);
}

static void
append_numeric(bson_t *doc, const char *key, QleafWriteConv *wc, Numeric n)
{
	if (wc->bson_type == QLEAF_BT_DOUBLE)
	{
		double		d = DatumGetFloat8(DirectFunctionCall1(numeric_float8,
														   NumericGetDatum(n)));

		bson_append_double(doc, key, -1, d);
	}
	else
		append_decimal(doc, key, wc, n);
}

/* Milliseconds since 1970 of a timestamp (µs since 2000), exactly. */
static int64
timestamp_ms(QleafWriteConv *wc, Timestamp ts)
{
	if (TIMESTAMP_NOT_FINITE(ts))
		write_error(wc, "BSON dates cannot be infinite.", NULL);
	if (ts % 1000 != 0)
		write_error(wc,
					psprintf("The value %s has microseconds; BSON dates hold milliseconds.",
							 DatumGetCString(DirectFunctionCall1(timestamptz_out,
																 TimestampTzGetDatum(ts)))),
					"Declare the column timestamptz(3) or timestamp(3), or round the value with date_trunc('milliseconds', ...).");
	return ts / 1000 + EPOCH_DIFF_MS;
}

/* ----------------------------------------------------------------
 *		Scalars and arrays
 * ----------------------------------------------------------------
 */

static void
append_scalar(bson_t *doc, const char *key, QleafWriteConv *wc, int kind,
			  Oid typid, FmgrInfo *outfunc, Datum value)
{
	switch (kind)
	{
		case BK_BOOL:
			bson_append_bool(doc, key, -1, DatumGetBool(value));
			break;
		case BK_INT2:
			bson_append_int32(doc, key, -1, DatumGetInt16(value));
			break;
		case BK_INT4:
			bson_append_int32(doc, key, -1, DatumGetInt32(value));
			break;
		case BK_INT8:
			bson_append_int64(doc, key, -1, DatumGetInt64(value));
			break;
		case BK_FLOAT4:
			bson_append_double(doc, key, -1, (double) DatumGetFloat4(value));
			break;
		case BK_FLOAT8:
			bson_append_double(doc, key, -1, DatumGetFloat8(value));
			break;
		case BK_NUMERIC:
			append_numeric(doc, key, wc, DatumGetNumeric(value));
			break;
		case BK_TEXT:
			{
				text	   *t = DatumGetTextPP(value);

				append_string(doc, key, wc, VARDATA_ANY(t),
							  VARSIZE_ANY_EXHDR(t));
				break;
			}
		case BK_NAME:
			{
				const char *s = NameStr(*DatumGetName(value));

				append_string(doc, key, wc, s, strlen(s));
				break;
			}
		case BK_BYTEA:
			{
				bytea	   *b = DatumGetByteaPP(value);

				bson_append_binary(doc, key, -1, BSON_SUBTYPE_BINARY,
								   (const uint8_t *) VARDATA_ANY(b),
								   VARSIZE_ANY_EXHDR(b));
				break;
			}
		case BK_UUID:
			bson_append_binary(doc, key, -1, BSON_SUBTYPE_UUID,
							   DatumGetUUIDP(value)->data, UUID_LEN);
			break;
		case BK_DATE:
			{
				DateADT		d = DatumGetDateADT(value);

				if (DATE_NOT_FINITE(d))
					write_error(wc, "BSON dates cannot be infinite.", NULL);
				bson_append_date_time(doc, key, -1,
									  (int64) d * SECS_PER_DAY * 1000 + EPOCH_DIFF_MS);
				break;
			}
		case BK_TIMESTAMP:
		case BK_TIMESTAMPTZ:
			bson_append_date_time(doc, key, -1,
								  timestamp_ms(wc, DatumGetTimestamp(value)));
			break;
		case BK_JSON:
			{
				char	   *s = TextDatumGetCString(value);
				Datum		jb = DirectFunctionCall1(jsonb_in, CStringGetDatum(s));
				JsonbValue	v;

				v.type = jbvBinary;
				v.val.binary.data = &DatumGetJsonbP(jb)->root;
				v.val.binary.len = 0;
				append_jsonb_value(doc, key, wc, &v, 0);
				break;
			}
		case BK_JSONB:
			{
				JsonbValue	v;

				v.type = jbvBinary;
				v.val.binary.data = &DatumGetJsonbP(value)->root;
				v.val.binary.len = 0;
				append_jsonb_value(doc, key, wc, &v, 0);
				break;
			}
		default:
			{
				char	   *s = OutputFunctionCall(outfunc, value);
				int			ulen;
				const char *u = to_utf8(wc, s, strlen(s), &ulen);

				bson_append_utf8(doc, key, -1, u, ulen);
				break;
			}
	}
}

static void
append_array(bson_t *doc, const char *key, QleafWriteConv *wc, Datum value)
{
	ArrayType  *arr = DatumGetArrayTypeP(value);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	bson_t		child;

	if (ARR_NDIM(arr) > 1)
		write_error(wc, "Multidimensional arrays cannot be written; BSON arrays have one dimension here.",
					NULL);
	deconstruct_array(arr, ARR_ELEMTYPE(arr), wc->elemlen, wc->elembyval,
					  wc->elemalign, &elems, &nulls, &n);
	bson_append_array_begin(doc, key, -1, &child);
	for (i = 0; i < n; i++)
	{
		char		buf[16];
		const char *k;

		bson_uint32_to_string(i, &k, buf, sizeof(buf));
		if (nulls[i])
			bson_append_null(&child, k, -1);
		else
			append_scalar(&child, k, wc, wc->elemkind, wc->elemtype,
						  &wc->elem_outfunc, elems[i]);
	}
	bson_append_array_end(doc, &child);
}

void
qleaf_append_datum(bson_t *doc, const char *key, QleafWriteConv *wc,
				   Datum value)
{
	if (wc->kind == BK_ARRAY)
		append_array(doc, key, wc, value);
	else
		append_scalar(doc, key, wc, wc->kind, wc->basetype, &wc->outfunc,
					  value);
}

/* ----------------------------------------------------------------
 *		JSON
 * ----------------------------------------------------------------
 */

static void
json_error(QleafWriteConv *wc, const char *problem)
{
	write_error(wc, problem,
				"Extended JSON values look like {\"$oid\": \"<24 hex digits>\"}, {\"$date\": \"1970-01-01T00:00:00.000Z\"}, {\"$numberDecimal\": \"1.5\"}.");
}

/* The string value under key in an object container, or NULL. */
static char *
member_string(JsonbContainer *c, const char *key)
{
	JsonbValue *v = getKeyJsonValueFromContainer(c, key, strlen(key), NULL);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* The object container under key in an object container, or NULL. */
static JsonbContainer *
member_object(JsonbContainer *c, const char *key)
{
	JsonbValue *v = getKeyJsonValueFromContainer(c, key, strlen(key), NULL);

	if (v == NULL || v->type != jbvBinary ||
		!JsonContainerIsObject(v->val.binary.data))
		return NULL;
	return v->val.binary.data;
}

/* An integral JSON number (or its string) under key, within [lo, hi]. */
static bool
member_int(JsonbContainer *c, const char *key, int64 lo, int64 hi,
		   int64 *out)
{
	JsonbValue *v = getKeyJsonValueFromContainer(c, key, strlen(key), NULL);
	char	   *s;
	char	   *end;

	if (v == NULL)
		return false;
	if (v->type == jbvNumeric)
		s = DatumGetCString(DirectFunctionCall1(numeric_out,
												NumericGetDatum(v->val.numeric)));
	else if (v->type == jbvString)
		s = pnstrdup(v->val.string.val, v->val.string.len);
	else
		return false;
	errno = 0;
	*out = strtoi64(s, &end, 10);
	return errno == 0 && end != s && *end == '\0' && *out >= lo && *out <= hi;
}

/* The milliseconds of an Extended JSON $date value. */
static int64
ejson_date(QleafWriteConv *wc, JsonbContainer *c)
{
	JsonbValue *v = getKeyJsonValueFromContainer(c, "$date", 5, NULL);
	int64		ms;

	if (v != NULL && v->type == jbvString)
	{
		char	   *s = pnstrdup(v->val.string.val, v->val.string.len);
		return timestamp_ms(wc,
							DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
																	CStringGetDatum(s),
																	ObjectIdGetDatum(InvalidOid),
																	Int32GetDatum(-1))));
	}
	if (v != NULL && v->type == jbvBinary &&
		JsonContainerIsObject(v->val.binary.data) &&
		member_int(v->val.binary.data, "$numberLong", PG_INT64_MIN,
				   PG_INT64_MAX, &ms))
		return ms;
	if (v != NULL && v->type == jbvNumeric &&
		member_int(c, "$date", PG_INT64_MIN, PG_INT64_MAX, &ms))
		return ms;
	json_error(wc, "A $date must be an ISO 8601 string or {\"$numberLong\": \"<milliseconds>\"}.");
	return 0;
}

/*
 * Append an Extended JSON wrapper (an object whose keys start with "$")
 * as its BSON type; an object that is no known wrapper is an error.
 */
static void
append_ejson(bson_t *doc, const char *key, QleafWriteConv *wc,
			 JsonbContainer *c, const char *first, int nkeys)
{
	char	   *s;
	JsonbContainer *o;
	int64		a,
				b;

	if (nkeys == 1 && strcmp(first, "$oid") == 0)
	{
		bson_oid_t	oid;

		s = member_string(c, "$oid");
		if (s == NULL || strlen(s) != 24 || !bson_oid_is_valid(s, 24))
			json_error(wc, "An $oid must be a string of 24 hexadecimal digits.");
		bson_oid_init_from_string(&oid, s);
		bson_append_oid(doc, key, -1, &oid);
	}
	else if (nkeys == 1 && strcmp(first, "$date") == 0)
		bson_append_date_time(doc, key, -1, ejson_date(wc, c));
	else if (nkeys == 1 && strcmp(first, "$numberDecimal") == 0)
	{
		bson_decimal128_t dec;

		s = member_string(c, "$numberDecimal");
		if (s == NULL || !bson_decimal128_from_string(s, &dec))
			json_error(wc, "A $numberDecimal must be a string holding a Decimal128 value.");
		bson_append_decimal128(doc, key, -1, &dec);
	}
	else if (nkeys == 1 && strcmp(first, "$numberDouble") == 0)
	{
		double		d;
		char	   *end;

		s = member_string(c, "$numberDouble");
		if (s == NULL)
			json_error(wc, "A $numberDouble must be a string.");
		if (strcmp(s, "NaN") == 0)
			d = get_float8_nan();
		else if (strcmp(s, "Infinity") == 0)
			d = get_float8_infinity();
		else if (strcmp(s, "-Infinity") == 0)
			d = -get_float8_infinity();
		else
		{
			errno = 0;
			d = strtod(s, &end);
			if (end == s || *end != '\0' || isinf(d))
				json_error(wc, "A $numberDouble must be a number, \"NaN\", \"Infinity\" or \"-Infinity\".");
		}
		bson_append_double(doc, key, -1, d);
	}
	else if (nkeys == 1 && strcmp(first, "$numberLong") == 0)
	{
		if (!member_int(c, "$numberLong", PG_INT64_MIN, PG_INT64_MAX, &a))
			json_error(wc, "A $numberLong must be a string holding a 64-bit integer.");
		bson_append_int64(doc, key, -1, a);
	}
	else if (nkeys == 1 && strcmp(first, "$numberInt") == 0)
	{
		if (!member_int(c, "$numberInt", PG_INT32_MIN, PG_INT32_MAX, &a))
			json_error(wc, "A $numberInt must be a string holding a 32-bit integer.");
		bson_append_int32(doc, key, -1, (int32) a);
	}
	else if (nkeys == 1 && strcmp(first, "$binary") == 0)
	{
		char	   *b64;
		char	   *st;
		char	   *end;
		long		subtype;
		char	   *data;
		int			len;

		o = member_object(c, "$binary");
		b64 = o ? member_string(o, "base64") : NULL;
		st = o ? member_string(o, "subType") : NULL;
		if (b64 == NULL || st == NULL)
			json_error(wc, "A $binary must be {\"base64\": \"...\", \"subType\": \"<hex>\"}.");
		subtype = strtol(st, &end, 16);
		if (end == st || *end != '\0' || strlen(st) > 2 || subtype < 0)
			json_error(wc, "A $binary's subType must be one or two hexadecimal digits.");
		data = palloc(pg_b64_dec_len(strlen(b64)) + 1);
		len = pg_b64_decode(b64, strlen(b64), data, pg_b64_dec_len(strlen(b64)));
		if (len < 0)
			json_error(wc, "A $binary's base64 is not valid base64.");
		bson_append_binary(doc, key, -1, (bson_subtype_t) subtype,
						   (const uint8_t *) data, len);
	}
	else if (nkeys == 1 && strcmp(first, "$regularExpression") == 0)
	{
		char	   *pattern;
		char	   *options;

		o = member_object(c, "$regularExpression");
		pattern = o ? member_string(o, "pattern") : NULL;
		options = o ? member_string(o, "options") : NULL;
		if (pattern == NULL || options == NULL)
			json_error(wc, "A $regularExpression must be {\"pattern\": \"...\", \"options\": \"...\"}.");
		bson_append_regex(doc, key, -1, pattern, options);
	}
	else if (nkeys == 1 && strcmp(first, "$timestamp") == 0)
	{
		o = member_object(c, "$timestamp");
		if (o == NULL || !member_int(o, "t", 0, PG_UINT32_MAX, &a) ||
			!member_int(o, "i", 0, PG_UINT32_MAX, &b))
			json_error(wc, "A $timestamp must be {\"t\": <seconds>, \"i\": <increment>}.");
		bson_append_timestamp(doc, key, -1, (uint32) a, (uint32) b);
	}
	else if (nkeys == 1 && strcmp(first, "$minKey") == 0)
		bson_append_minkey(doc, key, -1);
	else if (nkeys == 1 && strcmp(first, "$maxKey") == 0)
		bson_append_maxkey(doc, key, -1);
	else if (nkeys == 1 && strcmp(first, "$undefined") == 0)
		bson_append_undefined(doc, key, -1);
	else if (nkeys == 1 && strcmp(first, "$symbol") == 0)
	{
		s = member_string(c, "$symbol");
		if (s == NULL)
			json_error(wc, "A $symbol must be a string.");
		bson_append_symbol(doc, key, -1, s, strlen(s));
	}
	else if (strcmp(first, "$code") == 0 && (nkeys == 1 || nkeys == 2))
	{
		s = member_string(c, "$code");
		if (s == NULL)
			json_error(wc, "A $code must be a string.");
		if (nkeys == 1)
			bson_append_code(doc, key, -1, s);
		else
		{
			bson_t	   *scope;
			JsonbValue *sv = getKeyJsonValueFromContainer(c, "$scope", 6, NULL);

			if (sv == NULL || sv->type != jbvBinary ||
				!JsonContainerIsObject(sv->val.binary.data))
				json_error(wc, "A $code's $scope must be an object.");
			scope = bson_new();
			PG_TRY();
			{
				append_jsonb_container(scope, wc, sv->val.binary.data, 1);
			}
			PG_CATCH();
			{
				bson_destroy(scope);
				PG_RE_THROW();
			}
			PG_END_TRY();
			bson_append_code_with_scope(doc, key, -1, s, scope);
			bson_destroy(scope);
		}
	}
	else if (nkeys == 1 && strcmp(first, "$dbPointer") == 0)
	{
		char	   *ref;
		JsonbContainer *id;
		char	   *hex;
		bson_oid_t	oid;

		o = member_object(c, "$dbPointer");
		ref = o ? member_string(o, "$ref") : NULL;
		id = o ? member_object(o, "$id") : NULL;
		hex = id ? member_string(id, "$oid") : NULL;
		if (ref == NULL || hex == NULL || strlen(hex) != 24 ||
			!bson_oid_is_valid(hex, 24))
			json_error(wc, "A $dbPointer must be {\"$ref\": \"...\", \"$id\": {\"$oid\": \"...\"}}.");
		bson_oid_init_from_string(&oid, hex);
		bson_append_dbpointer(doc, key, -1, ref, &oid);
	}
	else if ((strcmp(first, "$ref") == 0 || strcmp(first, "$id") == 0 ||
			  strcmp(first, "$db") == 0) &&
			 (nkeys == 2 || nkeys == 3) &&
			 getKeyJsonValueFromContainer(c, "$ref", 4, NULL) != NULL &&
			 getKeyJsonValueFromContainer(c, "$id", 3, NULL) != NULL &&
			 (nkeys == 2 || getKeyJsonValueFromContainer(c, "$db", 3, NULL) != NULL))
	{
		/* a DBRef: a document whose keys MongoDB allows to start with "$" */
		JsonbIterator *it = JsonbIteratorInit(c);
		JsonbValue	v;
		JsonbIteratorToken tok;
		char	   *k = NULL;
		bson_t		child;

		bson_append_document_begin(doc, key, -1, &child);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
				k = pnstrdup(v.val.string.val, v.val.string.len);
			else if (tok == WJB_VALUE)
				append_jsonb_value(&child, k, wc, &v, 1);
		}
		bson_append_document_end(doc, &child);
	}
	else
		qleaf_check_field_name(first, strlen(first), wc->colname);
}

/* Append the members or elements of a container to doc. */
static void
append_jsonb_container(bson_t *doc, QleafWriteConv *wc, JsonbContainer *c,
					   int depth)
{
	JsonbIterator *it = JsonbIteratorInit(c);
	JsonbValue	v;
	JsonbIteratorToken tok;
	uint32		index = 0;
	char	   *key = NULL;

	check_stack_depth();
	if (depth > MAX_JSON_DEPTH)
		write_error(wc, "The JSON value is nested too deeply for MongoDB.", NULL);

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			qleaf_check_field_name(v.val.string.val, v.val.string.len,
								   wc->colname);
			{
				int			ulen;
				const char *u = to_utf8(wc, v.val.string.val,
										v.val.string.len, &ulen);

				key = pnstrdup(u, ulen);
			}
		}
		else if (tok == WJB_VALUE)
			append_jsonb_value(doc, key, wc, &v, depth + 1);
		else if (tok == WJB_ELEM)
		{
			char		buf[16];
			const char *k;

			bson_uint32_to_string(index++, &k, buf, sizeof(buf));
			append_jsonb_value(doc, k, wc, &v, depth + 1);
		}
	}
}

static void
append_json_number(bson_t *doc, const char *key, QleafWriteConv *wc,
				   Numeric n)
{
	char	   *s = DatumGetCString(DirectFunctionCall1(numeric_out,
														NumericGetDatum(n)));
	char	   *end;
	double		d;

	if (strpbrk(s, ".eE") == NULL)
	{
		int64		i;

		errno = 0;
		i = strtoi64(s, &end, 10);
		if (errno == 0 && *end == '\0')
		{
			if (i >= PG_INT32_MIN && i <= PG_INT32_MAX)
				bson_append_int32(doc, key, -1, (int32) i);
			else
				bson_append_int64(doc, key, -1, i);
			return;
		}
	}
	d = strtod(s, &end);
	if (isinf(d))
		write_error(wc, psprintf("The JSON number %.50s%s is out of range for a double.",
								 s, strlen(s) > 50 ? "..." : ""),
					"Write it as {\"$numberDecimal\": \"...\"}.");
	bson_append_double(doc, key, -1, d);
}

static void
append_jsonb_value(bson_t *doc, const char *key, QleafWriteConv *wc,
				   JsonbValue *v, int depth)
{
	switch (v->type)
	{
		case jbvNull:
			bson_append_null(doc, key, -1);
			break;
		case jbvBool:
			bson_append_bool(doc, key, -1, v->val.boolean);
			break;
		case jbvNumeric:
			append_json_number(doc, key, wc, v->val.numeric);
			break;
		case jbvString:
			{
				int			ulen;
				const char *u = to_utf8(wc, v->val.string.val,
										v->val.string.len, &ulen);

				bson_append_utf8(doc, key, -1, u, ulen);
				break;
			}
		case jbvBinary:
			{
				JsonbContainer *c = v->val.binary.data;
				bson_t		child;

				if (JsonContainerIsScalar(c))
				{
					JsonbValue	sv;

					if (!JsonbExtractScalar(c, &sv))
						elog(ERROR, "qleaf_fdw: invalid jsonb scalar");
					append_jsonb_value(doc, key, wc, &sv, depth);
				}
				else if (JsonContainerIsArray(c))
				{
					bson_append_array_begin(doc, key, -1, &child);
					append_jsonb_container(&child, wc, c, depth);
					bson_append_array_end(doc, &child);
				}
				else
				{
					/* an Extended JSON wrapper? its keys start with "$" */
					JsonbIterator *it = JsonbIteratorInit(c);
					JsonbValue	kv;
					JsonbIteratorToken tok;
					char	   *dollar = NULL;
					int			nkeys = 0;

					while ((tok = JsonbIteratorNext(&it, &kv, true)) != WJB_DONE)
					{
						if (tok != WJB_KEY)
							continue;
						nkeys++;
						if (dollar == NULL && kv.val.string.len > 0 &&
							kv.val.string.val[0] == '$')
							dollar = pnstrdup(kv.val.string.val, kv.val.string.len);
					}
					if (dollar != NULL)
						append_ejson(doc, key, wc, c, dollar, nkeys);
					else
					{
						bson_append_document_begin(doc, key, -1, &child);
						append_jsonb_container(&child, wc, c, depth);
						bson_append_document_end(doc, &child);
					}
				}
				break;
			}
		default:
			elog(ERROR, "qleaf_fdw: unexpected jsonb value type %d", v->type);
	}
}

bson_t *
qleaf_json_object_to_bson(QleafWriteConv *wc, Datum value)
{
	Jsonb	   *jb;
	bson_t	   *doc;

	if (wc->kind == BK_JSON)
		jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
												CStringGetDatum(TextDatumGetCString(value))));
	else
		jb = DatumGetJsonbP(value);
	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("the whole-document column \"%s\" must hold a JSON object",
						wc->colname),
				 errdetail("A MongoDB document is an object; the value is %s.",
						   JB_ROOT_IS_ARRAY(jb) ? "an array" : "a scalar")));
	doc = bson_new();
	PG_TRY();
	{
		append_jsonb_container(doc, wc, &jb->root, 0);
	}
	PG_CATCH();
	{
		bson_destroy(doc);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return doc;
}

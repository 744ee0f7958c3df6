/*-------------------------------------------------------------------------
 *
 * shippable.c
 *		  what a $match may evaluate: column types, operators, collations,
 *		  LIKE patterns
 *
 * Design rules of this file:
 * - A column type is shippable exactly when every BSON value that
 *   converts to it compares in MongoDB as the converted value compares in
 *   PostgreSQL (see convert.c for what converts to what).  float8 ships
 *   as a prefilter only: NaN is above every number in PostgreSQL and
 *   below in MongoDB, and a Decimal128 converted to a double is rounded
 *   (deparse.c widens the bounds).  float4 rounds doubles too and does
 *   not ship.  numeric(p,s) rounds values, so only unconstrained numeric
 *   ships.
 * - An operator ships only when it is a built-in btree comparison of the
 *   column's type family (or its negator, for <>).  Anything user-defined
 *   stays local.
 * - Text: equality and LIKE are byte-wise for deterministic collations,
 *   as MongoDB's string comparison is; ordering only under "C"/"POSIX".
 * - Every refusal comes with a reason, shown by EXPLAIN VERBOSE.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "qleaf_fdw.h"

#include "access/transam.h"
#include "access/stratnum.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "nodes/primnodes.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/pg_locale.h"

/*
 * The kind of value a column of type typid holds, or QLEAF_VK_NONE with
 * *reason set.
 */
QleafValueKind
qleaf_value_kind(Oid typid, int32 typmod, const char **reason)
{
	switch (typid)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			return QLEAF_VK_INT;
		case NUMERICOID:
			if (typmod >= 0)
			{
				*reason = "numeric with a precision rounds values MongoDB compares unrounded";
				return QLEAF_VK_NONE;
			}
			return QLEAF_VK_NUMERIC;
		case VARCHAROID:
			if (typmod >= 0)
			{
				*reason = "varchar(n) shortens values that MongoDB compares in full";
				return QLEAF_VK_NONE;
			}
			return QLEAF_VK_TEXT;
		case TEXTOID:
			return QLEAF_VK_TEXT;
		case BOOLOID:
			return QLEAF_VK_BOOL;
		case TIMESTAMPTZOID:
		case TIMESTAMPOID:
			return QLEAF_VK_TIMESTAMP;
		case JSONBOID:
			return QLEAF_VK_JSONB;
		case FLOAT8OID:
			return QLEAF_VK_FLOAT8;
		case FLOAT4OID:
			*reason = "real rounds the values it reads, which MongoDB compares unrounded";
			return QLEAF_VK_NONE;
		default:
			*reason = psprintf("no pushdown for type %s", format_type_be(typid));
			return QLEAF_VK_NONE;
	}
}

/*
 * May a value of type valtype be compared with a column of kind kind (of
 * type coltype)?
 */
bool
qleaf_value_type_ok(QleafValueKind kind, Oid coltype, Oid valtype)
{
	switch (kind)
	{
		case QLEAF_VK_INT:
			return valtype == INT2OID || valtype == INT4OID ||
				valtype == INT8OID;
		case QLEAF_VK_NUMERIC:
			return valtype == NUMERICOID;
		case QLEAF_VK_TEXT:
			return valtype == TEXTOID || valtype == VARCHAROID;
		case QLEAF_VK_BOOL:
			return valtype == BOOLOID;
		case QLEAF_VK_FLOAT8:
			return valtype == FLOAT8OID;
		case QLEAF_VK_TIMESTAMP:
			/* no time zone conversions between the two timestamp types */
			return valtype == coltype;
		default:
			return false;
	}
}

/*
 * The comparison opno makes between a column of kind kind and a value of
 * type valtype (column on the left): a btree strategy number
 * (BTLessStrategyNumber ... BTGreaterStrategyNumber), ROWCOMPARE_NE for
 * <>, or 0 when opno is no built-in comparison of that type family.
 */
int
qleaf_comparison_strategy(Oid opno, QleafValueKind kind, Oid coltype,
						  Oid valtype)
{
	List	   *interps;
	ListCell   *lc;

	if (opno >= FirstNormalObjectId)
		return 0;
	if (!qleaf_value_type_ok(kind, coltype, valtype))
		return 0;

	interps = get_op_btree_interpretation(opno);
	foreach(lc, interps)
	{
		OpBtreeInterpretation *i = (OpBtreeInterpretation *) lfirst(lc);
		Oid			left = i->oplefttype;
		Oid			right = i->oprighttype;
		bool		ok;

		if (kind == QLEAF_VK_TEXT)
			ok = (left == TEXTOID && right == TEXTOID);
		else if (kind == QLEAF_VK_INT)
			ok = (left == INT2OID || left == INT4OID || left == INT8OID) &&
				(right == INT2OID || right == INT4OID || right == INT8OID);
		else
			ok = (left == coltype && right == valtype);
		if (ok && i->strategy >= BTLessStrategyNumber &&
			i->strategy <= ROWCOMPARE_NE)
			return i->strategy;
	}
	return 0;
}

/*
 * May text be compared under collation collid?  Equality (ordering false)
 * needs a deterministic collation, ordering needs "C" or "POSIX", where
 * PostgreSQL compares the bytes of UTF-8 strings as MongoDB does.
 */
bool
qleaf_collation_ok(Oid collid, bool ordering, const char **reason)
{
	if (!OidIsValid(collid))
		return true;
	if (ordering)
	{
		if (!lc_collate_is_c(collid))
		{
			*reason = psprintf("text ordering under collation \"%s\" is not MongoDB's byte order",
							   get_collation_name(collid));
			return false;
		}
		if (GetDatabaseEncoding() != PG_UTF8 &&
			GetDatabaseEncoding() != PG_SQL_ASCII)
		{
			*reason = "text ordering in a database encoding other than UTF8";
			return false;
		}
		return true;
	}
	if (!get_collation_isdeterministic(collid))
	{
		*reason = psprintf("collation \"%s\" is nondeterministic",
						   get_collation_name(collid));
		return false;
	}
	return true;
}

/*
 * Is funcid a LIKE or ILIKE (negated or not) on text?
 */
bool
qleaf_like_function(Oid funcid, bool *negated, bool *icase)
{
	switch (funcid)
	{
		case F_TEXTLIKE:
			*negated = false;
			*icase = false;
			return true;
		case F_TEXTNLIKE:
			*negated = true;
			*icase = false;
			return true;
		case F_TEXTICLIKE:
			*negated = false;
			*icase = true;
			return true;
		case F_TEXTICNLIKE:
			*negated = true;
			*icase = true;
			return true;
		default:
			return false;
	}
}

static void
append_regex_literal(StringInfo re, const char *p, int len)
{
	if (len == 1 && strchr("\\^$.|?*+()[]{}/-#", *p) != NULL)
		appendStringInfoChar(re, '\\');
	appendBinaryStringInfo(re, p, len);
}

/*
 * Translate a LIKE pattern (backslash escapes, as after like_escape()) to
 * a regular expression that MongoDB (PCRE) and PostgreSQL read alike:
 * anchored at both ends, "%" as ".*" and "_" as "." (the caller adds the
 * "s" option so that "." matches newlines), every other character
 * literal.  The end anchor is "(?![\s\S])", which is the very end of the
 * string; "$" would also match before a final newline.
 *
 * For ILIKE (icase) the pattern must be ASCII.  Which characters match
 * a letter without regard to case depends on the locale in PostgreSQL,
 * and MongoDB's "i" option folds Unicode cases (U+212A KELVIN SIGN
 * matches "k"), so the regex is either wide or narrow:
 *	- wide (for ILIKE, narrow false): the caller adds the "i" option, and
 *	  "i" and "k" also match U+0130 and U+212A, which some locales
 *	  lower-case to them: the regex matches at least what ILIKE matches;
 *	- narrow (for NOT ILIKE): a letter matches its ASCII upper and lower
 *	  case only, no option: the regex matches at most what ILIKE matches,
 *	  so that its negation matches at least what NOT ILIKE matches.
 * Either way the condition is rechecked.
 *
 * *hex_possible is set when the pattern could match the 24 hexadecimal
 * digits of an ObjectId converted to text (a text column shows ObjectIds
 * so, but a $regex never matches an ObjectId).
 *
 * Returns NULL with *reason set for a pattern PostgreSQL would reject or
 * that cannot be translated.
 */
char *
qleaf_like_regex(const char *pattern, int len, bool icase, bool narrow,
				 bool *hex_possible, const char **reason)
{
	StringInfoData re;
	int			start = 0;
	int			end = len;
	int			i;

	*hex_possible = true;
	initStringInfo(&re);

	/* an ObjectId's text has 24 characters */
	{
		int			fixed = 0;
		bool		any = false;

		for (i = 0; i < len; i++)
		{
			if (pattern[i] == '%')
				any = true;
			else
			{
				if (pattern[i] == '\\' && i + 1 < len)
					i++;
				if ((pattern[i] & 0xC0) != 0x80)
					fixed++;
			}
		}
		if (any ? fixed > 24 : fixed != 24)
			*hex_possible = false;
	}

	/* leading and trailing "%" only drop the anchors */
	while (start < end && pattern[start] == '%')
		start++;
	if (start == 0)
		appendStringInfoChar(&re, '^');

	for (i = start; i < end;)
	{
		unsigned char c = (unsigned char) pattern[i];
		int			clen;

		if (c == '%')
		{
			int			j = i;

			while (j < end && pattern[j] == '%')
				j++;
			if (j == end)
			{
				/* trailing "%": no end anchor */
				return re.data;
			}
			appendStringInfoString(&re, "[\\s\\S]*");
			i = j;
			continue;
		}
		if (c == '_')
		{
			appendStringInfoString(&re, "[\\s\\S]");
			i++;
			continue;
		}
		if (c == '\\')
		{
			i++;
			if (i >= end)
			{
				*reason = "LIKE pattern ends with an escape character";
				return NULL;
			}
			c = (unsigned char) pattern[i];
		}
		if (c == '\0')
		{
			*reason = "LIKE pattern holds a NUL character";
			return NULL;
		}
		clen = pg_utf_mblen((const unsigned char *) pattern + i);
		if (clen > 1 || c >= 0x80)
		{
			if (icase)
			{
				*reason = "ILIKE pattern with non-ASCII characters: case folding differs";
				return NULL;
			}
			*hex_possible = false;
			if (i + clen > end)
			{
				*reason = "LIKE pattern is not valid UTF-8";
				return NULL;
			}
			appendBinaryStringInfo(&re, pattern + i, clen);
			i += clen;
			continue;
		}
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			  (icase && c >= 'A' && c <= 'F')))
			*hex_possible = false;
		if (icase && narrow && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
			appendStringInfo(&re, "[%c%c]", pg_ascii_tolower(c), pg_ascii_toupper(c));
		else if (icase && (c == 'i' || c == 'I'))
			appendStringInfoString(&re, "[i\xc4\xb0]");
		else if (icase && (c == 'k' || c == 'K'))
			appendStringInfoString(&re, "[k\xe2\x84\xaa]");
		else
		{
			char		ch = (char) c;

			append_regex_literal(&re, &ch, 1);
		}
		i++;
	}
	appendStringInfoString(&re, "(?![\\s\\S])");
	return re.data;
}

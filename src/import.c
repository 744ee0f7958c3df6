/*-------------------------------------------------------------------------
 *
 * import.c
 *		  IMPORT FOREIGN SCHEMA: foreign tables from a MongoDB database
 *
 * IMPORT FOREIGN SCHEMA <database> FROM SERVER s INTO local_schema makes
 * one foreign table per collection of the database (listCollections:
 * plain collections only; views, time series and system.* collections
 * are left out), named after the collection.  Columns come from a
 * $sample of the collection's documents (option sample_size, 1000 by
 * default), read in _id order so that columns appear in the order their
 * fields are first met:
 *
 * - _id is always the first column (text when the sample has none);
 * - a nested document is flattened into one column per field, named
 *   parent_child with the option field 'parent.child', down to the
 *   option depth (2 by default); a document at that depth is one jsonb
 *   column, and so is a field that holds documents and other values;
 * - a column's type is that of its non-null values: int32 integer, int64
 *   (with int32) bigint, with double double precision, Decimal128 (with
 *   any number) numeric, string (and ObjectId) text, ObjectId text, bool
 *   boolean, date (and Timestamp) timestamptz, binary bytea, UUID uuid,
 *   an array whose elements are all of one such kind that type's array;
 *   anything else, and any mix of kinds, jsonb, which reads every value.
 *   With the option on_conversion_error 'null' a mix takes the type of
 *   the kind most values have instead, the table gets that option too,
 *   and the other values read as NULL;
 * - a field met only as null or in no sampled document is jsonb;
 * - fields whose names cannot be a field path (empty, starting with $,
 *   holding a dot) are left out;
 * - column names are unique: a name met twice gets _2, _3, ...; names
 *   longer than PostgreSQL's limit are cut, the field option keeping the
 *   whole path.
 *
 * With the option changes 'true' each collection also gets its changes
 * table, <collection>_changes, with the standard columns.  LIMIT TO and
 * EXCEPT name the tables as they are created, the changes tables too;
 * only the collections whose table is imported are sampled.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "qleaf_fdw.h"

#include "commands/defrem.h"
#include "foreign/fdwapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/varlena.h"

#define DEFAULT_SAMPLE_SIZE		1000
#define DEFAULT_DEPTH			2

/* What a sampled value is, as far as choosing a column type goes. */
typedef enum ValueKind
{
	K_NULL,						/* null, undefined */
	K_INT32,
	K_INT64,
	K_DOUBLE,
	K_DECIMAL,
	K_STRING,
	K_OID,
	K_BOOL,
	K_DATE,
	K_TIMESTAMP,
	K_BINARY,
	K_UUID,
	K_DOCUMENT,
	K_ARRAY,
	K_OTHER,					/* regex, code, MinKey, ... */
	NUM_KINDS
} ValueKind;

/* Kinds a column type reads without loss, grouped. */
typedef enum KindFamily
{
	F_NONE,
	F_NUMBER,
	F_TEXT,
	F_BOOL,
	F_TIME,
	F_BINARY,
	F_DOCUMENT,
	F_ARRAY,
	F_OTHER
} KindFamily;

/* One field path met in the sample. */
typedef struct FieldInfo
{
	char	   *path;			/* dotted path from the document's top */
	int			depth;			/* 1 for top-level fields */
	struct FieldInfo *parent;	/* enclosing document's field, or NULL */
	double		counts[NUM_KINDS];	/* values seen, by kind */
	double		elements[NUM_KINDS];	/* array elements seen, by kind */
	bool		expanded;		/* its documents became columns */
	bool		covered;		/* it, or a parent, is one column */
} FieldInfo;

typedef struct ImportOptions
{
	int			sample_size;
	int			depth;
	bool		changes;
	bool		null_on_error;
} ImportOptions;

typedef struct Sample
{
	List	   *fields;			/* FieldInfo, in the order first met */
	int			depth;			/* documents deeper than this are not walked */
	int			documents;
} Sample;

static const char *const import_options[] = {
	"sample_size", "depth", "changes", "on_conversion_error", NULL
};

static void parse_import_options(List *options, ImportOptions *opts);
static List *list_collections(QleafRemote *r, const char *database);
static void sample_collection(QleafRemote *r, const char *database,
							  const char *collection, int size, int depth,
							  Sample *sample);
static char *table_sql(ForeignServer *server, const char *database,
					   bool database_option, const char *collection,
					   const char *tablename, Sample *sample,
					   const ImportOptions *opts);
static char *changes_sql(ForeignServer *server, const char *database,
						 bool database_option, const char *collection,
						 const char *tablename);

static int
parse_int_option(DefElem *def, int min, int max)
{
	const char *value = defGetString(def);
	char	   *end;
	long		n;

	errno = 0;
	n = strtol(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || n < min || n > max)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for IMPORT FOREIGN SCHEMA option \"%s\": \"%s\"",
						def->defname, value),
				 errdetail("The value must be an integer between %d and %d.",
						   min, max)));
	return (int) n;
}

static void
parse_import_options(List *options, ImportOptions *opts)
{
	ListCell   *lc;

	opts->sample_size = DEFAULT_SAMPLE_SIZE;
	opts->depth = DEFAULT_DEPTH;
	opts->changes = false;
	opts->null_on_error = false;

	foreach(lc, options)
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		if (strcmp(def->defname, "sample_size") == 0)
			opts->sample_size = parse_int_option(def, 1, INT_MAX);
		else if (strcmp(def->defname, "depth") == 0)
			opts->depth = parse_int_option(def, 1, 100);
		else if (strcmp(def->defname, "changes") == 0)
			opts->changes = defGetBoolean(def);
		else if (strcmp(def->defname, "on_conversion_error") == 0)
		{
			const char *value = defGetString(def);

			if (pg_strcasecmp(value, "null") == 0)
				opts->null_on_error = true;
			else if (pg_strcasecmp(value, "error") == 0)
				opts->null_on_error = false;
			else
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("invalid value for IMPORT FOREIGN SCHEMA option \"on_conversion_error\": \"%s\"",
								value),
						 errhint("Valid values are \"error\" and \"null\".")));
		}
		else
		{
			const char *closest = NULL;
			int			best = INT_MAX;
			int			max_d = Max(2, (int) strlen(def->defname) / 2);
			int			i;

			for (i = 0; import_options[i] != NULL; i++)
			{
				int			d = varstr_levenshtein_less_equal(def->defname,
															  strlen(def->defname),
															  import_options[i],
															  strlen(import_options[i]),
															  1, 1, 1, max_d + 1, true);

				if (d <= max_d && d < best)
				{
					best = d;
					closest = import_options[i];
				}
			}
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid IMPORT FOREIGN SCHEMA option \"%s\"", def->defname),
					 closest != NULL ?
					 errhint("Perhaps you meant the option \"%s\".", closest) :
					 errhint("Valid options are sample_size, depth, changes and on_conversion_error.")));
		}
	}
}

/* A collection name as a table name: cut to PostgreSQL's identifier limit. */
static char *
table_name(const char *name)
{
	int			len = strlen(name);

	if (len >= NAMEDATALEN)
		len = pg_mbcliplen(name, len, NAMEDATALEN - 1);
	return pnstrdup(name, len);
}

/*
 * Create one foreign table per collection of the database (and a changes
 * table per collection with changes 'true').
 */
List *
qleaf_import_foreign_schema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	ForeignServer *server = GetForeignServer(serverOid);
	UserMapping *user = GetUserMapping(GetUserId(), serverOid);
	const char *database = stmt->remote_schema;
	ImportOptions opts;
	QleafRemote *r;
	List	   *collections;
	List	   *commands = NIL;
	ListCell   *lc;
	bool		database_option;
	const char *server_db = NULL;

	parse_import_options(stmt->options, &opts);

	/*
	 * Tables name the database only when it is not the one the server
	 * gives them anyway.
	 */
	foreach(lc, server->options)
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		if (strcmp(def->defname, "database") == 0)
			server_db = defGetString(def);
	}
	database_option = server_db == NULL || strcmp(server_db, database) != 0;

	r = qleaf_remote_open(server, user, database, NULL);
	collections = list_collections(r, database);
	if (collections == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
				 errmsg("MongoDB database \"%s\" on server \"%s\" has no collections",
						database, server->servername),
				 errdetail("Only collections are imported: views, time series collections and system collections are not."),
				 errhint("Check the database name: MongoDB database names are case sensitive.")));

	foreach(lc, collections)
	{
		const char *collection = strVal(lfirst(lc));
		char	   *tablename = table_name(collection);
		char	   *changes_name = NULL;
		bool		want_table;
		bool		want_changes = false;

		CHECK_FOR_INTERRUPTS();
		want_table = IsImportableForeignTable(tablename, stmt);
		if (opts.changes)
		{
			changes_name = table_name(psprintf("%s_changes", collection));
			want_changes = IsImportableForeignTable(changes_name, stmt);
		}

		if (want_table)
		{
			Sample		sample;
			QleafRemote *cr;

			cr = qleaf_remote_open(server, user, database, collection);
			sample_collection(cr, database, collection, opts.sample_size,
							  opts.depth, &sample);
			qleaf_remote_close(cr);
			commands = lappend(commands,
							   table_sql(server, database, database_option,
										 collection, tablename, &sample,
										 &opts));
		}
		if (want_changes)
			commands = lappend(commands,
							   changes_sql(server, database, database_option,
										   collection, changes_name));
	}
	qleaf_remote_close(r);
	return commands;
}

static int
compare_names(const ListCell *a, const ListCell *b)
{
	return strcmp(strVal(lfirst(a)), strVal(lfirst(b)));
}

/* The database's plain collections, system.* left out, sorted by name. */
static List *
list_collections(QleafRemote *r, const char *database)
{
	bson_t	   *opts;
	const bson_t *doc;
	List	   *names = NIL;
	char	   *what = psprintf("while listing the collections of database \"%s\"",
								database);

	/*
	 * authorizedCollections: a MongoDB user without listCollections on the
	 * database gets the collections it has privileges on, not an error
	 */
	opts = BCON_NEW("filter", "{", "type", BCON_UTF8("collection"), "}",
					"nameOnly", BCON_BOOL(true),
					"authorizedCollections", BCON_BOOL(true));
	qleaf_remote_set_cursor(r,
							mongoc_database_find_collections_with_opts(qleaf_remote_database(r),
																	   opts));
	bson_destroy(opts);
	while ((doc = qleaf_remote_next(r, ERROR, what, NULL)) != NULL)
	{
		bson_iter_t it;

		if (bson_iter_init_find(&it, doc, "name") && BSON_ITER_HOLDS_UTF8(&it))
		{
			const char *name = bson_iter_utf8(&it, NULL);

			if (strncmp(name, "system.", 7) != 0)
				names = lappend(names, makeString(pstrdup(name)));
		}
	}
	qleaf_remote_set_cursor(r, NULL);
	list_sort(names, compare_names);
	return names;
}

static ValueKind
value_kind(const bson_iter_t *it)
{
	switch (bson_iter_type(it))
	{
		case BSON_TYPE_NULL:
		case BSON_TYPE_UNDEFINED:
			return K_NULL;
		case BSON_TYPE_INT32:
			return K_INT32;
		case BSON_TYPE_INT64:
			return K_INT64;
		case BSON_TYPE_DOUBLE:
			return K_DOUBLE;
		case BSON_TYPE_DECIMAL128:
			return K_DECIMAL;
		case BSON_TYPE_UTF8:
		case BSON_TYPE_SYMBOL:
			return K_STRING;
		case BSON_TYPE_OID:
			return K_OID;
		case BSON_TYPE_BOOL:
			return K_BOOL;
		case BSON_TYPE_DATE_TIME:
			return K_DATE;
		case BSON_TYPE_TIMESTAMP:
			return K_TIMESTAMP;
		case BSON_TYPE_BINARY:
			{
				bson_subtype_t subtype;
				uint32_t	len;
				const uint8_t *data;

				bson_iter_binary(it, &subtype, &len, &data);
				if ((subtype == BSON_SUBTYPE_UUID ||
					 subtype == BSON_SUBTYPE_UUID_DEPRECATED) && len == 16)
					return K_UUID;
				return K_BINARY;
			}
		case BSON_TYPE_DOCUMENT:
			return K_DOCUMENT;
		case BSON_TYPE_ARRAY:
			return K_ARRAY;
		default:
			return K_OTHER;
	}
}

/* Field names a field option cannot express are left out. */
static bool
mappable_key(const char *key)
{
	return key[0] != '\0' && key[0] != '$' && strchr(key, '.') == NULL;
}

static FieldInfo *
get_field(Sample *sample, FieldInfo *parent, const char *key, int depth)
{
	char	   *path = parent != NULL ? psprintf("%s.%s", parent->path, key) :
		pstrdup(key);
	ListCell   *lc;
	FieldInfo  *fi;

	foreach(lc, sample->fields)
	{
		fi = (FieldInfo *) lfirst(lc);
		if (strcmp(fi->path, path) == 0)
		{
			pfree(path);
			return fi;
		}
	}
	fi = palloc0(sizeof(FieldInfo));
	fi->path = path;
	fi->depth = depth;
	fi->parent = parent;
	sample->fields = lappend(sample->fields, fi);
	return fi;
}

/* Count the kinds of the values of one document (or subdocument). */
static void
walk_document(Sample *sample, bson_iter_t *it, FieldInfo *parent, int depth)
{
	while (bson_iter_next(it))
	{
		const char *key = bson_iter_key(it);
		FieldInfo  *fi;
		ValueKind	kind;

		if (!mappable_key(key))
			continue;
		fi = get_field(sample, parent, key, depth);
		kind = value_kind(it);
		fi->counts[kind]++;
		if (kind == K_DOCUMENT && depth < sample->depth)
		{
			bson_iter_t sub;

			if (bson_iter_recurse(it, &sub))
				walk_document(sample, &sub, fi, depth + 1);
		}
		else if (kind == K_ARRAY)
		{
			bson_iter_t sub;

			if (bson_iter_recurse(it, &sub))
				while (bson_iter_next(&sub))
					fi->elements[value_kind(&sub)]++;
		}
	}
}

/*
 * $sample the collection, in _id order (so that the fields' first
 * appearances, hence the columns, keep one order when the sample is the
 * whole collection), and count what each field holds.
 */
static void
sample_collection(QleafRemote *r, const char *database,
				  const char *collection, int size, int depth,
				  Sample *sample)
{
	bson_t	   *pipeline;
	bson_t	   *opts;
	const bson_t *doc;
	char	   *what = psprintf("while sampling collection \"%s.%s\"",
								database, collection);

	memset(sample, 0, sizeof(*sample));
	sample->depth = depth;
	pipeline = BCON_NEW("0", "{", "$sample", "{", "size", BCON_INT32(size), "}", "}",
						"1", "{", "$sort", "{", "_id", BCON_INT32(1), "}", "}");
	opts = BCON_NEW("collation", "{", "locale", BCON_UTF8("simple"), "}");
	qleaf_remote_set_cursor(r, mongoc_collection_aggregate(qleaf_remote_collection(r),
														   MONGOC_QUERY_NONE,
														   pipeline, opts, NULL));
	bson_destroy(pipeline);
	bson_destroy(opts);
	while ((doc = qleaf_remote_next(r, ERROR, what, NULL)) != NULL)
	{
		bson_iter_t it;

		CHECK_FOR_INTERRUPTS();
		if (bson_iter_init(&it, doc))
			walk_document(sample, &it, NULL, 1);
		sample->documents++;
	}
	qleaf_remote_set_cursor(r, NULL);
}

static KindFamily
kind_family(ValueKind k)
{
	switch (k)
	{
		case K_INT32:
		case K_INT64:
		case K_DOUBLE:
		case K_DECIMAL:
			return F_NUMBER;
		case K_STRING:
		case K_OID:
			return F_TEXT;
		case K_BOOL:
			return F_BOOL;
		case K_DATE:
		case K_TIMESTAMP:
			return F_TIME;
		case K_BINARY:
		case K_UUID:
			return F_BINARY;
		case K_DOCUMENT:
			return F_DOCUMENT;
		case K_ARRAY:
			return F_ARRAY;
		case K_OTHER:
			return F_OTHER;
		default:
			return F_NONE;
	}
}

/*
 * The scalar type that reads every non-null value counted in counts (of
 * one family), or NULL.
 */
static const char *
family_type(const double *counts, KindFamily family)
{
	switch (family)
	{
		case F_NUMBER:
			if (counts[K_DECIMAL] > 0)
				return "numeric";
			if (counts[K_DOUBLE] > 0)
				return "double precision";
			if (counts[K_INT64] > 0)
				return "bigint";
			return "integer";
		case F_TEXT:
			return "text";
		case F_BOOL:
			return "boolean";
		case F_TIME:
			return "timestamp with time zone";
		case F_BINARY:
			return counts[K_BINARY] > 0 ? "bytea" : "uuid";
		default:
			return NULL;
	}
}

/*
 * The family of the non-null values counted: the only one, or with
 * majority the one most values have (ties: the first in KindFamily
 * order); F_NONE when there are none, F_OTHER for a mix without majority.
 */
static KindFamily
values_family(const double *counts, bool majority)
{
	double		per_family[F_OTHER + 1] = {0};
	int			families = 0;
	KindFamily	best = F_NONE;
	int			k;

	for (k = 0; k < NUM_KINDS; k++)
		if (k != K_NULL && counts[k] > 0)
		{
			KindFamily	f = kind_family((ValueKind) k);

			if (per_family[f] == 0)
				families++;
			per_family[f] += counts[k];
		}
	if (families == 0)
		return F_NONE;
	for (k = F_NUMBER; k <= F_OTHER; k++)
		if (per_family[k] > 0 && (best == F_NONE || per_family[k] > per_family[best]))
			best = (KindFamily) k;
	if (families > 1 && !majority)
		return F_OTHER;
	return best;
}

/* The column type of a field's values. */
static const char *
column_type(FieldInfo *fi, bool majority)
{
	KindFamily	f = values_family(fi->counts, majority);

	if (f == F_ARRAY)
	{
		KindFamily	ef = values_family(fi->elements, false);
		const char *t = family_type(fi->elements, ef);

		return t != NULL ? psprintf("%s[]", t) : "jsonb";
	}
	if (f == F_NUMBER || f == F_TEXT || f == F_BOOL || f == F_TIME ||
		f == F_BINARY)
	{
		/* only the majority family's kinds decide its type */
		double		counts[NUM_KINDS];
		int			k;

		for (k = 0; k < NUM_KINDS; k++)
			counts[k] = kind_family((ValueKind) k) == f ? fi->counts[k] : 0;
		return family_type(counts, f);
	}
	return "jsonb";
}

/* A column name not used yet: the path with _ for dots, cut, suffixed. */
static char *
unique_column_name(List **used, const char *path)
{
	char	   *base = pstrdup(path);
	char	   *p;
	char	   *name;
	int			n = 1;

	for (p = base; *p; p++)
		if (*p == '.')
			*p = '_';
	for (;;)
	{
		ListCell   *lc;
		char		suffix[16];
		int			len = strlen(base);
		bool		taken = false;

		suffix[0] = '\0';
		if (n > 1)
			snprintf(suffix, sizeof(suffix), "_%d", n);
		if (len + strlen(suffix) >= NAMEDATALEN)
			len = pg_mbcliplen(base, len, NAMEDATALEN - 1 - strlen(suffix));
		name = psprintf("%.*s%s", len, base, suffix);
		foreach(lc, *used)
			if (strcmp(strVal(lfirst(lc)), name) == 0)
				taken = true;
		if (!taken)
			break;
		n++;
	}
	*used = lappend(*used, makeString(name));
	return name;
}

static void
append_column(StringInfo buf, List **used, const char *path,
			  const char *type)
{
	char	   *name = unique_column_name(used, path);

	appendStringInfo(buf, ",\n  %s %s", quote_identifier(name), type);
	if (strcmp(name, path) != 0)
		appendStringInfo(buf, " OPTIONS (field %s)", quote_literal_cstr(path));
}

static void
append_table_options(StringInfo buf, ForeignServer *server,
					 const char *database, bool database_option,
					 const char *collection)
{
	appendStringInfo(buf, "\n) SERVER %s OPTIONS (collection %s",
					 quote_identifier(server->servername),
					 quote_literal_cstr(collection));
	if (database_option)
		appendStringInfo(buf, ", database %s", quote_literal_cstr(database));
}

static char *
table_sql(ForeignServer *server, const char *database, bool database_option,
		  const char *collection, const char *tablename, Sample *sample,
		  const ImportOptions *opts)
{
	StringInfoData buf;
	List	   *used = NIL;
	ListCell   *lc;
	FieldInfo  *id = NULL;

	initStringInfo(&buf);
	appendStringInfo(&buf, "CREATE FOREIGN TABLE %s (",
					 quote_identifier(tablename));

	foreach(lc, sample->fields)
	{
		FieldInfo  *fi = (FieldInfo *) lfirst(lc);

		if (fi->parent == NULL && strcmp(fi->path, "_id") == 0)
			id = fi;
	}
	used = lappend(used, makeString("_id"));
	appendStringInfo(&buf, "\n  _id %s",
					 id != NULL && values_family(id->counts, false) != F_NONE ?
					 column_type(id, opts->null_on_error) : "text");

	foreach(lc, sample->fields)
	{
		FieldInfo  *fi = (FieldInfo *) lfirst(lc);
		double		nonnull;
		int			k;

		if (fi == id)
			continue;
		if (fi->parent != NULL && (fi->parent->covered || !fi->parent->expanded))
		{
			fi->covered = true;
			continue;
		}
		nonnull = 0;
		for (k = K_NULL + 1; k < NUM_KINDS; k++)
			nonnull += fi->counts[k];

		/*
		 * A field that holds documents (and nulls) below the depth limit
		 * is its fields; one that also holds other values is one jsonb
		 * column.
		 */
		if (fi->counts[K_DOCUMENT] > 0 && fi->depth < opts->depth)
		{
			bool		has_children = false;
			ListCell   *lc2;

			foreach(lc2, sample->fields)
				if (((FieldInfo *) lfirst(lc2))->parent == fi)
					has_children = true;
			if (fi->counts[K_DOCUMENT] == nonnull && has_children)
			{
				fi->expanded = true;
				continue;
			}
			fi->covered = true;
			append_column(&buf, &used, fi->path, "jsonb");
			continue;
		}
		append_column(&buf, &used, fi->path,
					  column_type(fi, opts->null_on_error));
	}

	append_table_options(&buf, server, database, database_option, collection);
	if (opts->null_on_error)
		appendStringInfoString(&buf, ", on_conversion_error 'null'");
	appendStringInfoString(&buf, ")");
	return buf.data;
}

static char *
changes_sql(ForeignServer *server, const char *database, bool database_option,
			const char *collection, const char *tablename)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "CREATE FOREIGN TABLE %s (\n"
					 "  resume_token text COLLATE \"C\",\n"
					 "  operation_type text,\n"
					 "  cluster_time timestamp with time zone,\n"
					 "  cluster_timestamp bigint,\n"
					 "  wall_time timestamp with time zone,\n"
					 "  document_key jsonb,\n"
					 "  full_document jsonb,\n"
					 "  updated_fields jsonb,\n"
					 "  removed_fields jsonb,\n"
					 "  txn_number bigint,\n"
					 "  lsid jsonb",
					 quote_identifier(tablename));
	append_table_options(&buf, server, database, database_option, collection);
	appendStringInfoString(&buf, ", changes 'true')");
	return buf.data;
}

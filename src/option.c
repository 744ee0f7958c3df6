/*-------------------------------------------------------------------------
 *
 * option.c
 *		  option validation and lookup for qleaf_fdw
 *
 * Every option is checked when it is set (CREATE/ALTER SERVER, USER
 * MAPPING, FOREIGN TABLE, column OPTIONS), so that a scan never meets a
 * value it cannot use.  Unknown names get the closest valid name as a
 * hint.  Credentials belong in user mappings only: a server URI carrying
 * a password is refused.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>
#include <math.h>

#include "qleaf_fdw.h"
#include "bson_out.h"

#include "access/reloptions.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "catalog/pg_attribute.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/varlena.h"

PG_FUNCTION_INFO_V1(qleaf_fdw_validator);

typedef struct QleafOption
{
	const char *keyword;
	Oid			optcontext;		/* catalog the option may appear in */
} QleafOption;

static const QleafOption valid_options[] = {
	/* servers */
	{"uri", ForeignServerRelationId},
	{"database", ForeignServerRelationId},
	{"batch_size", ForeignServerRelationId},
	{"fdw_startup_cost", ForeignServerRelationId},
	{"fdw_tuple_cost", ForeignServerRelationId},
	{"transactions", ForeignServerRelationId},
	/* user mappings */
	{"username", UserMappingRelationId},
	{"password", UserMappingRelationId},
	{"auth_source", UserMappingRelationId},
	{"auth_mechanism", UserMappingRelationId},
	{"password_required", UserMappingRelationId},
	/* foreign tables */
	{"collection", ForeignTableRelationId},
	{"database", ForeignTableRelationId},
	{"batch_size", ForeignTableRelationId},
	{"on_conversion_error", ForeignTableRelationId},
	{"fdw_startup_cost", ForeignTableRelationId},
	{"fdw_tuple_cost", ForeignTableRelationId},
	{"changes", ForeignTableRelationId},
	{"full_document", ForeignTableRelationId},
	{"full_document_before_change", ForeignTableRelationId},
	{"start_lookback", ForeignTableRelationId},
	{"transactions", ForeignTableRelationId},
	/* columns */
	{"field", AttributeRelationId},
	{"on_conversion_error", AttributeRelationId},
	{"bson_type", AttributeRelationId},
	{NULL, InvalidOid}
};

/* authentication mechanisms libmongoc knows, as MongoDB spells them */
static const char *const auth_mechanisms[] = {
	"SCRAM-SHA-1", "SCRAM-SHA-256", "MONGODB-X509", "MONGODB-AWS",
	"GSSAPI", "PLAIN", NULL
};

static bool is_valid_option(const char *keyword, Oid context);
static void report_invalid_option(const char *keyword, Oid context);
static void validate_uri(const char *value);
static void validate_name(const char *option, const char *value);
static int	validate_batch_size(const char *value);
static bool parse_on_conversion_error(const char *value);
static double validate_cost(const char *option, const char *value);
static const char *field_path_problem(const char *path);

/*
 * Validate the options given to a FOREIGN DATA WRAPPER, SERVER, USER
 * MAPPING or FOREIGN TABLE object that uses qleaf_fdw.
 */
Datum
qleaf_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	ListCell   *cell;

	foreach(cell, options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);
		const char *name = def->defname;

		if (!is_valid_option(name, catalog))
			report_invalid_option(name, catalog);

		if (strcmp(name, "uri") == 0)
			validate_uri(defGetString(def));
		else if (strcmp(name, "database") == 0 ||
				 strcmp(name, "collection") == 0 ||
				 strcmp(name, "username") == 0 ||
				 strcmp(name, "auth_source") == 0)
			validate_name(name, defGetString(def));
		else if (strcmp(name, "batch_size") == 0)
			(void) validate_batch_size(defGetString(def));
		else if (strcmp(name, "on_conversion_error") == 0)
			(void) parse_on_conversion_error(defGetString(def));
		else if (strcmp(name, "fdw_startup_cost") == 0 ||
				 strcmp(name, "fdw_tuple_cost") == 0)
			(void) validate_cost(name, defGetString(def));
		else if (strcmp(name, "changes") == 0 ||
				 strcmp(name, "transactions") == 0)
			(void) defGetBoolean(def);
		else if (strcmp(name, "bson_type") == 0)
			(void) qleaf_parse_bson_type(defGetString(def));
		else if (strcmp(name, "auth_mechanism") == 0)
		{
			const char *value = defGetString(def);
			int			i;

			for (i = 0; auth_mechanisms[i] != NULL; i++)
				if (strcmp(value, auth_mechanisms[i]) == 0)
					break;
			if (auth_mechanisms[i] == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("invalid value for option \"auth_mechanism\": \"%s\"",
								value),
						 errhint("Valid values are SCRAM-SHA-1, SCRAM-SHA-256, MONGODB-X509, MONGODB-AWS, GSSAPI and PLAIN.")));
		}
		else if (strcmp(name, "password_required") == 0)
		{
			bool		required = defGetBoolean(def);

			/*
			 * Without a password, whoever may use the mapping reaches
			 * MongoDB with the database host's network position and
			 * whatever trust MongoDB grants that host.  Only a superuser
			 * may allow that, as in postgres_fdw.
			 */
			if (!required && !superuser())
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("only a superuser can set option \"password_required\" to false"),
						 errdetail("A user mapping without a password would let its user reach MongoDB with the database server's network access.")));
		}
		else if (strcmp(name, "field") == 0)
		{
			const char *value = defGetString(def);
			const char *problem = field_path_problem(value);

			if (problem != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("invalid value for option \"field\": \"%s\"", value),
						 errdetail("%s", problem),
						 errhint("Use a dotted path such as \"address.city\", or \"%s\" for the whole document.",
								 QLEAF_ROOT_FIELD)));
		}
	}

	/* changes tables: option values, and none on ordinary tables */
	if (catalog == ForeignTableRelationId)
		qleaf_changes_validate_options(options);

	PG_RETURN_VOID();
}

static bool
is_valid_option(const char *keyword, Oid context)
{
	const QleafOption *opt;

	for (opt = valid_options; opt->keyword != NULL; opt++)
	{
		if (opt->optcontext == context && strcmp(opt->keyword, keyword) == 0)
			return true;
	}
	return false;
}

/*
 * Raise the error for an unknown option, hinting at the closest valid
 * name for this kind of object, else listing the valid ones.
 */
static void
report_invalid_option(const char *keyword, Oid context)
{
	const QleafOption *opt;
	const char *closest = NULL;
	int			closest_distance = INT_MAX;
	int			max_distance;
	StringInfoData valid;

	initStringInfo(&valid);
	max_distance = Max(2, (int) strlen(keyword) / 2);

	for (opt = valid_options; opt->keyword != NULL; opt++)
	{
		int			d;

		if (opt->optcontext != context)
			continue;
		if (valid.len > 0)
			appendStringInfoString(&valid, ", ");
		appendStringInfoString(&valid, opt->keyword);

		d = varstr_levenshtein_less_equal(keyword, strlen(keyword),
										  opt->keyword, strlen(opt->keyword),
										  1, 1, 1, max_distance + 1, true);
		if (d <= max_distance && d < closest_distance)
		{
			closest = opt->keyword;
			closest_distance = d;
		}
	}

	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
			 errmsg("invalid option \"%s\"", keyword),
			 closest != NULL ?
			 errhint("Perhaps you meant the option \"%s\".", closest) :
			 valid.len > 0 ?
			 errhint("Valid options in this context are: %s.", valid.data) :
			 errhint("There are no valid options in this context.")));
}

/*
 * A server URI must parse as a MongoDB connection string and must not
 * carry a password.  Any form libmongoc accepts is fine: several hosts,
 * replicaSet, mongodb+srv, tls and timeout options, readPreference.
 */
static void
validate_uri(const char *value)
{
	mongoc_uri_t *uri;
	bson_error_t error;
	bool		has_password;

	uri = mongoc_uri_new_with_error(value, &error);
	if (uri == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid MongoDB connection string in option \"uri\""),
				 errdetail("%s", error.message),
				 errhint("A connection string looks like \"mongodb://host1,host2/?replicaSet=rs0\" or \"mongodb+srv://cluster.example.com/\".")));
	has_password = mongoc_uri_get_password(uri) != NULL;
	mongoc_uri_destroy(uri);

	/* do not echo the value: it holds the password */
	if (has_password)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("the connection string in option \"uri\" must not contain a password"),
				 errdetail("Server options are visible to every user who can see the server."),
				 errhint("Remove the credentials from the URI and put them in a user mapping: CREATE USER MAPPING ... OPTIONS (username '...', password '...').")));
}

static void
validate_name(const char *option, const char *value)
{
	if (value[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("option \"%s\" must not be empty", option)));

	/*
	 * MongoDB refuses collection names with "$".  Database names are left
	 * to the server, whose error names the rule broken.
	 */
	if (strcmp(option, "collection") == 0 && strchr(value, '$') != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid MongoDB collection name \"%s\"", value),
				 errdetail("A collection name cannot contain the character $.")));
}

static int
validate_batch_size(const char *value)
{
	char	   *end;
	long		n;

	errno = 0;
	n = strtol(value, &end, 10);
	while (*end == ' ')
		end++;
	if (errno != 0 || end == value || *end != '\0' || n < 1 || n > INT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"batch_size\": \"%s\"", value),
				 errdetail("The batch size must be an integer between 1 and %d.",
						   INT_MAX)));
	return (int) n;
}

/* a cost option: a finite number, 0 or more */
static double
validate_cost(const char *option, const char *value)
{
	double		d;

	if (!parse_real(value, &d, 0, NULL) || isnan(d) || isinf(d) || d < 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"", option, value),
				 errdetail("A cost must be a number, 0 or more.")));
	return d;
}

/* true for 'null', false for 'error' */
static bool
parse_on_conversion_error(const char *value)
{
	if (pg_strcasecmp(value, "error") == 0)
		return false;
	if (pg_strcasecmp(value, "null") == 0)
		return true;
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
			 errmsg("invalid value for option \"on_conversion_error\": \"%s\"",
					value),
			 errhint("Valid values are \"error\" and \"null\".")));
	return false;				/* keep compiler quiet */
}

/*
 * Why a string cannot be used as a field path, or NULL if it can.  Paths
 * become "$<path>" expressions in the pipeline, so no part may be empty
 * or start with "$" (MongoDB would read it as a variable or operator).
 */
static const char *
field_path_problem(const char *path)
{
	const char *p = path;

	if (qleaf_is_root_field(path))
		return NULL;
	if (*path == '\0')
		return "A field path must not be empty.";
	for (;;)
	{
		const char *dot = strchr(p, '.');

		if (dot == p || *p == '\0')
			return "No part of a field path may be empty.";
		if (*p == '$')
			return "No part of a field path may start with \"$\".";
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	return NULL;
}

bool
qleaf_is_root_field(const char *field)
{
	return strcmp(field, QLEAF_ROOT_FIELD) == 0;
}

/*
 * Find the database a URI names in its path, if any.  Returns NULL if
 * there is no URI, or it names none.
 */
static char *
uri_database(ForeignServer *server)
{
	ListCell   *lc;

	foreach(lc, server->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "uri") == 0)
		{
			mongoc_uri_t *uri;
			const char *db;
			char		name[128];	/* MongoDB database names are < 64 bytes */

			uri = mongoc_uri_new_with_error(defGetString(def), NULL);
			if (uri == NULL)
				return NULL;
			db = mongoc_uri_get_database(uri);
			name[0] = '\0';
			if (db != NULL)
				strlcpy(name, db, sizeof(name));
			mongoc_uri_destroy(uri);
			return name[0] != '\0' ? pstrdup(name) : NULL;
		}
	}
	return NULL;
}

/*
 * Merge the options of a foreign table with its server's.  The database
 * comes from the table, else the server, else the server URI's path.
 */
void
qleaf_get_table_options(ForeignTable *table, ForeignServer *server,
						QleafTableOptions *opts)
{
	ListCell   *lc;

	memset(opts, 0, sizeof(*opts));
	opts->fdw_startup_cost = QLEAF_DEFAULT_STARTUP_COST;
	opts->fdw_tuple_cost = QLEAF_DEFAULT_TUPLE_COST;

	foreach(lc, server->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "database") == 0)
			opts->database = defGetString(def);
		else if (strcmp(def->defname, "batch_size") == 0)
			opts->batch_size = validate_batch_size(defGetString(def));
		else if (strcmp(def->defname, "fdw_startup_cost") == 0)
			opts->fdw_startup_cost = validate_cost(def->defname, defGetString(def));
		else if (strcmp(def->defname, "fdw_tuple_cost") == 0)
			opts->fdw_tuple_cost = validate_cost(def->defname, defGetString(def));
	}

	foreach(lc, table->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "database") == 0)
			opts->database = defGetString(def);
		else if (strcmp(def->defname, "collection") == 0)
			opts->collection = defGetString(def);
		else if (strcmp(def->defname, "batch_size") == 0)
			opts->batch_size = validate_batch_size(defGetString(def));
		else if (strcmp(def->defname, "on_conversion_error") == 0)
			opts->null_on_error = parse_on_conversion_error(defGetString(def));
		else if (strcmp(def->defname, "fdw_startup_cost") == 0)
			opts->fdw_startup_cost = validate_cost(def->defname, defGetString(def));
		else if (strcmp(def->defname, "fdw_tuple_cost") == 0)
			opts->fdw_tuple_cost = validate_cost(def->defname, defGetString(def));
	}

	if (opts->collection == NULL)
		opts->collection = get_rel_name(table->relid);
	if (opts->database == NULL)
		opts->database = uri_database(server);
	if (opts->database == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("no MongoDB database given for foreign table \"%s\"",
						get_rel_name(table->relid)),
				 errhint("Set option \"database\" on the foreign table or on server \"%s\".",
						 server->servername)));
}

/*
 * The field path a column maps to (its "field" option, else its name),
 * and whether a value that does not fit becomes NULL (the column's
 * on_conversion_error, else the value passed in *null_on_error).
 */
char *
qleaf_get_column_field(Oid relid, AttrNumber attnum, const char *colname,
					   bool *null_on_error)
{
	List	   *options = GetForeignColumnOptions(relid, attnum);
	char	   *field = NULL;
	ListCell   *lc;
	const char *problem;

	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "field") == 0)
			field = defGetString(def);
		else if (strcmp(def->defname, "on_conversion_error") == 0)
			*null_on_error = parse_on_conversion_error(defGetString(def));
	}
	if (field != NULL)
		return field;

	/* a standard column of a changes table maps its event field */
	field = qleaf_changes_column_field(relid, colname);
	if (field != NULL)
		return field;

	problem = field_path_problem(colname);
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("column name \"%s\" of foreign table \"%s\" cannot be used as a field path",
						colname, get_rel_name(relid)),
				 errdetail("%s", problem),
				 errhint("Map the column to a field with the column option \"field\".")));
	return pstrdup(colname);
}

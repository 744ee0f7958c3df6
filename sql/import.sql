--
-- IMPORT FOREIGN SCHEMA: one foreign table per collection, columns
-- inferred from a $sample of its documents.
--
\! /usr/bin/python3 test/fixtures/load.py import
\getenv uri QLEAF_MONGODB_URI

CREATE SERVER import_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_import');
CREATE USER MAPPING FOR CURRENT_USER SERVER import_srv;

-- what was created: columns with their types and options, table options
CREATE FUNCTION imported(schema_name name)
RETURNS TABLE (tab name, col name, type text, options text)
LANGUAGE sql AS $$
  SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
         array_to_string(a.attfdwoptions, ', ')
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
  WHERE c.relnamespace = schema_name::regnamespace AND a.attnum > 0
  ORDER BY c.relname, a.attnum
$$;
CREATE FUNCTION imported_tables(schema_name name)
RETURNS TABLE (tab name, options text)
LANGUAGE sql AS $$
  SELECT c.relname, array_to_string(t.ftoptions, ', ')
  FROM pg_class c JOIN pg_foreign_table t ON t.ftrelid = c.oid
  WHERE c.relnamespace = schema_name::regnamespace
  ORDER BY c.relname
$$;

CREATE SCHEMA imp;
IMPORT FOREIGN SCHEMA qleaf_regress_import FROM SERVER import_srv INTO imp;
SELECT * FROM imported_tables('imp');
SELECT * FROM imported('imp');

-- the tables read the data
SELECT * FROM imp.kinds ORDER BY _id;
SELECT * FROM imp.nested ORDER BY _id;
SELECT * FROM imp.names ORDER BY _id;
SELECT * FROM imp.majority ORDER BY _id;
SELECT * FROM imp.empty;

-- LIMIT TO and EXCEPT
CREATE SCHEMA lim;
IMPORT FOREIGN SCHEMA qleaf_regress_import LIMIT TO (kinds, empty, nosuch)
  FROM SERVER import_srv INTO lim;
SELECT * FROM imported_tables('lim');
CREATE SCHEMA exc;
IMPORT FOREIGN SCHEMA qleaf_regress_import EXCEPT (kinds, nested, names)
  FROM SERVER import_srv INTO exc;
SELECT * FROM imported_tables('exc');

-- depth: 1 keeps every document whole, 3 goes one level further
CREATE SCHEMA d1;
IMPORT FOREIGN SCHEMA qleaf_regress_import LIMIT TO (nested)
  FROM SERVER import_srv INTO d1 OPTIONS (depth '1');
SELECT * FROM imported('d1');
CREATE SCHEMA d3;
IMPORT FOREIGN SCHEMA qleaf_regress_import LIMIT TO (nested)
  FROM SERVER import_srv INTO d3 OPTIONS (depth '3');
SELECT * FROM imported('d3');
SELECT * FROM d3.nested ORDER BY _id;

-- on_conversion_error 'null': a mix takes the majority's type, and the
-- other values read as NULL
CREATE SCHEMA maj;
IMPORT FOREIGN SCHEMA qleaf_regress_import LIMIT TO (majority, kinds)
  FROM SERVER import_srv INTO maj OPTIONS (on_conversion_error 'null');
SELECT * FROM imported_tables('maj');
SELECT * FROM imported('maj') WHERE col IN ('_id', 'v', 'sid', 'mixed', 'mixarr');
SELECT * FROM maj.majority ORDER BY _id;
SELECT _id, sid, mixed FROM maj.kinds ORDER BY _id;

-- changes tables, named in LIMIT TO like any table; a server without a
-- database gets the database as a table option
CREATE SERVER import_nodb FOREIGN DATA WRAPPER qleaf_fdw OPTIONS (uri :'uri');
CREATE USER MAPPING FOR CURRENT_USER SERVER import_nodb;
CREATE SCHEMA chg;
IMPORT FOREIGN SCHEMA qleaf_regress_import
  LIMIT TO (majority, majority_changes, empty_changes)
  FROM SERVER import_nodb INTO chg OPTIONS (changes 'true', sample_size '5');
SELECT * FROM imported_tables('chg');
SELECT * FROM imported('chg') WHERE tab = 'majority_changes';
SELECT count(*) FROM chg.majority;
SELECT count(*) FROM chg.majority_changes WHERE cluster_time > now() + interval '1 hour';
EXPLAIN (COSTS OFF) SELECT * FROM chg.majority_changes;

-- errors
IMPORT FOREIGN SCHEMA qleaf_regress_import FROM SERVER import_srv INTO imp
  OPTIONS (sample_sise '10');
IMPORT FOREIGN SCHEMA qleaf_regress_import FROM SERVER import_srv INTO imp
  OPTIONS (bogus '10');
IMPORT FOREIGN SCHEMA qleaf_regress_import FROM SERVER import_srv INTO imp
  OPTIONS (sample_size '0');
IMPORT FOREIGN SCHEMA qleaf_regress_import FROM SERVER import_srv INTO imp
  OPTIONS (depth 'deep');
IMPORT FOREIGN SCHEMA qleaf_regress_import FROM SERVER import_srv INTO imp
  OPTIONS (changes 'maybe');
IMPORT FOREIGN SCHEMA qleaf_regress_import FROM SERVER import_srv INTO imp
  OPTIONS (on_conversion_error 'skip');
IMPORT FOREIGN SCHEMA qleaf_regress_no_such_db FROM SERVER import_srv INTO imp;
-- tables that exist already
IMPORT FOREIGN SCHEMA qleaf_regress_import LIMIT TO (empty)
  FROM SERVER import_srv INTO imp;

SET client_min_messages = warning;
DROP SCHEMA imp, lim, exc, d1, d3, maj, chg CASCADE;
RESET client_min_messages;
DROP FUNCTION imported(name), imported_tables(name);
DROP USER MAPPING FOR CURRENT_USER SERVER import_srv;
DROP USER MAPPING FOR CURRENT_USER SERVER import_nodb;
DROP SERVER import_srv, import_nodb;

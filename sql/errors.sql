--
-- Errors while scanning: from the server at the first or a later batch,
-- from conversion mid-scan, and from mappings the planner refuses.  An
-- error is always an ERROR, never fewer rows, and many of them in one
-- session leak nothing.
--
\! /usr/bin/python3 test/fixtures/load.py errors
\getenv uri QLEAF_MONGODB_URI
-- the scans here read every document (sql/pushdown_agg.sql tests the
-- errors of aggregates MongoDB computes)
SET qleaf_fdw.enable_aggregate_pushdown = off;

CREATE SERVER errors_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_errors');
CREATE USER MAPPING FOR CURRENT_USER SERVER errors_srv;
CREATE FOREIGN TABLE numbers (_id int, n int) SERVER errors_srv
  OPTIONS (batch_size '10');
CREATE FOREIGN TABLE bad (_id int, n int) SERVER errors_srv
  OPTIONS (batch_size '10');
SELECT count(*), sum(n) FROM numbers;

-- the server fails the aggregate itself
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["aggregate"], "errorCode": 2}}'
SELECT count(*) FROM numbers;
SELECT count(*) FROM numbers;

-- the server fails the first getMore, after 10 rows arrived
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["getMore"], "errorCode": 2}}'
SELECT count(*) FROM numbers;
SELECT count(*) FROM numbers;

-- the server fails the second getMore, after 20 rows arrived
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": {"skip": 1}, "data": {"failCommands": ["getMore"], "errorCode": 2}}'
SELECT count(*) FROM numbers;
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": "off"}'
SELECT count(*) FROM numbers;

-- rows already sent to the client do not make a failed scan succeed
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["getMore"], "errorCode": 2}}'
BEGIN;
DECLARE c CURSOR FOR SELECT n FROM numbers;
FETCH 10 FROM c;
FETCH 10 FROM c;
ROLLBACK;
SELECT count(*) FROM numbers;

-- a value that does not fit its column, in the second batch
SELECT n FROM bad;
SELECT count(*) FROM bad;
-- unless the column or the table turns such values into NULL
ALTER FOREIGN TABLE bad ALTER COLUMN n OPTIONS (ADD on_conversion_error 'null');
SELECT count(*), count(n), sum(n) FROM bad;
ALTER FOREIGN TABLE bad ALTER COLUMN n OPTIONS (DROP on_conversion_error);
ALTER FOREIGN TABLE bad OPTIONS (ADD on_conversion_error 'null');
SELECT count(*), count(n), sum(n) FROM bad;
-- the column's option wins over the table's
ALTER FOREIGN TABLE bad ALTER COLUMN n OPTIONS (ADD on_conversion_error 'error');
SELECT count(*), count(n), sum(n) FROM bad;
ALTER FOREIGN TABLE bad ALTER COLUMN n OPTIONS (DROP on_conversion_error);
ALTER FOREIGN TABLE bad OPTIONS (DROP on_conversion_error);

-- errors mid-scan, many times in one session: each one frees its cursor
-- and releases its connection
CREATE FUNCTION scan_failures(query text, times int, expected text)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  failures int := 0;
BEGIN
  FOR i IN 1..times LOOP
    BEGIN
      EXECUTE query;
    EXCEPTION WHEN OTHERS THEN
      IF SQLERRM NOT LIKE expected THEN
        RAISE;
      END IF;
      failures := failures + 1;
    END;
  END LOOP;
  RETURN failures;
END
$$;
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": "alwaysOn", "data": {"failCommands": ["getMore"], "errorCode": 2}}'
SELECT scan_failures('SELECT count(*) FROM numbers', 200,
                     'MongoDB server "errors_srv" returned an error');
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": "off"}'
SELECT scan_failures('SELECT sum(n) FROM bad', 200,
                     'cannot convert BSON string to integer%');
-- no scan state is left behind, the connection is not in use, and scans work
SELECT count(*) FROM pg_backend_memory_contexts
WHERE name IN ('qleaf_fdw scan', 'qleaf_fdw count');
SELECT qleaf_fdw_disconnect('errors_srv');
SELECT count(*), sum(n) FROM numbers;

-- mappings the planner refuses
CREATE FOREIGN TABLE wrong_root (_id int, doc text OPTIONS (field '$$ROOT'))
  SERVER errors_srv OPTIONS (collection 'numbers');
-- a column the query does not read is not checked
SELECT sum(_id) FROM wrong_root;
SELECT doc FROM wrong_root;
CREATE FOREIGN TABLE wrong_name (_id int, "$n" int)
  SERVER errors_srv OPTIONS (collection 'numbers');
SELECT "$n" FROM wrong_name;
CREATE FOREIGN TABLE wrong_name2 (_id int, "a..b" int)
  SERVER errors_srv OPTIONS (collection 'numbers');
SELECT "a..b" FROM wrong_name2;
ALTER FOREIGN TABLE wrong_name2 ALTER COLUMN "a..b" OPTIONS (ADD field 'n');
SELECT sum("a..b") FROM wrong_name2;
-- a column of a type no BSON value maps to
CREATE FOREIGN TABLE wrong_type (_id int, n point)
  SERVER errors_srv OPTIONS (collection 'numbers');
SELECT n FROM wrong_type;

DROP FUNCTION scan_failures(text, int, text);
DROP SERVER errors_srv CASCADE;

--
-- Costs and ANALYZE: document counts from the server, selectivity from
-- PostgreSQL's statistics once ANALYZE has sampled the collection with
-- $sample, the cost options, and the plans they lead to.  Plans show
-- their row estimates only (costs depend on the cost model's constants).
--
\! /usr/bin/python3 test/fixtures/load.py costs
\getenv uri QLEAF_MONGODB_URI

CREATE SERVER costs_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_costs');
CREATE USER MAPPING FOR CURRENT_USER SERVER costs_srv;
CREATE FOREIGN TABLE events (
  _id int, kind text, n int, "user" int, tag int, note text
) SERVER costs_srv;
CREATE FOREIGN TABLE tiny (_id int, v int) SERVER costs_srv;

CREATE FUNCTION plan_rows(query text, with_pipeline boolean DEFAULT false)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (VERBOSE ' || with_pipeline || ') ' || query LOOP
    RETURN NEXT regexp_replace(line,
      '\(cost=[0-9.]+\.\.[0-9.]+ rows=([0-9]+) width=[0-9]+\)', '(rows=\1)');
  END LOOP;
END
$$;

-- the options: numbers, 0 or more, on servers and tables
ALTER SERVER costs_srv OPTIONS (ADD fdw_startup_cost '-1');
ALTER SERVER costs_srv OPTIONS (ADD fdw_tuple_cost 'cheap');
ALTER FOREIGN TABLE tiny OPTIONS (ADD fdw_startup_cost 'NaN');
ALTER FOREIGN TABLE tiny OPTIONS (ADD fdw_tuple_cost 'Infinity');
ALTER FOREIGN TABLE tiny OPTIONS (ADD fdw_tupel_cost '1');
ALTER FOREIGN TABLE tiny ALTER COLUMN v OPTIONS (ADD fdw_tuple_cost '1');
ALTER FOREIGN TABLE tiny OPTIONS (ADD fdw_startup_cost '0', fdw_tuple_cost '0.5');
ALTER FOREIGN TABLE tiny OPTIONS (DROP fdw_startup_cost, DROP fdw_tuple_cost);

-- never analyzed: the count is the server's, selectivities are defaults
SELECT reltuples FROM pg_class WHERE relname = 'events';
SELECT * FROM plan_rows('SELECT * FROM events');
SELECT * FROM plan_rows('SELECT * FROM tiny');
SELECT * FROM plan_rows($$SELECT * FROM events WHERE kind = 'rare'$$);
SELECT * FROM plan_rows('SELECT * FROM events WHERE n < 10');

-- collStats failing (a user without the privilege, a view): the
-- count comes from estimatedDocumentCount instead
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["collStats"], "errorCode": 13, "appName": "qleaf_fdw"}}'
SELECT * FROM plan_rows('SELECT * FROM events');
\! test/mongo-cmd --print '{"configureFailPoint": "failCommand", "mode": "off"}' | /usr/bin/python3 -c 'import json, sys; print("collStats failed %d time(s)" % json.load(sys.stdin)["count"])'

-- once per collection per planning: a self-join asks once (every command
-- fails here, and is counted)
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": {"times": 100}, "data": {"failCommands": ["collStats", "listIndexes"], "errorCode": 13, "appName": "qleaf_fdw"}}'
SELECT count(*) > 0 AS planned
FROM plan_rows('SELECT a._id FROM events a JOIN events b ON a.n = b."user"');
\! test/mongo-cmd --print '{"configureFailPoint": "failCommand", "mode": "off"}' | /usr/bin/python3 -c 'import json, sys; print("collStats and listIndexes failed %d time(s)" % json.load(sys.stdin)["count"])'

-- ANALYZE with a sample smaller than the collection: $sample picks 300
-- documents, the total is the server's count
SET default_statistics_target = 1;
ANALYZE VERBOSE events;
RESET default_statistics_target;
SELECT reltuples FROM pg_class WHERE relname = 'events';

-- a sample as large as the collection reads all of it, and the
-- statistics are exact
ANALYZE VERBOSE tiny;
ANALYZE events;
SELECT reltuples FROM pg_class WHERE relname IN ('events', 'tiny') ORDER BY relname;
SELECT attname, n_distinct, null_frac FROM pg_stats
WHERE tablename = 'events' AND attname IN ('_id', 'kind', 'n', 'user')
ORDER BY attname;
SELECT array(SELECT v FROM unnest(most_common_vals::text::text[]) v ORDER BY v)
FROM pg_stats WHERE tablename = 'events' AND attname = 'kind';

-- estimates from the statistics
SELECT * FROM plan_rows($$SELECT * FROM events WHERE kind = 'rare'$$);
SELECT * FROM plan_rows('SELECT * FROM events WHERE n < 10');
SELECT * FROM plan_rows('SELECT * FROM events WHERE "user" = 7');
SELECT * FROM plan_rows('SELECT * FROM events WHERE _id BETWEEN 101 AND 300');
SELECT * FROM plan_rows('SELECT * FROM tiny WHERE v > 35');
-- a condition kept local is estimated as well
SELECT * FROM plan_rows($$SELECT * FROM events WHERE kind = 'rare' AND note ~ '0$'$$);

-- a few outer rows: a nested loop runs the pipeline once per row, on an
-- indexed field, and receives only the matching documents
CREATE TABLE picks (u int);
INSERT INTO picks VALUES (7), (8), (9);
CREATE TABLE many (u int);
INSERT INTO many SELECT g % 500 FROM generate_series(1, 5000) g;
ANALYZE picks, many;
SELECT * FROM plan_rows('SELECT e._id FROM picks p JOIN events e ON e."user" = p.u', true);
SELECT count(*) FROM picks p JOIN events e ON e."user" = p.u;
-- the same without pushdown: no parameterized path, one full scan
SET qleaf_fdw.enable_pushdown = off;
SELECT * FROM plan_rows('SELECT e._id FROM picks p JOIN events e ON e."user" = p.u');
RESET qleaf_fdw.enable_pushdown;
-- many outer rows: one scan of the collection and a hash join
SELECT * FROM plan_rows('SELECT e._id FROM many m JOIN events e ON e."user" = m.u');
SELECT count(*) FROM many m JOIN events e ON e."user" = m.u;
-- round trips made dear: the single scan wins even for three rows
ALTER FOREIGN TABLE events OPTIONS (ADD fdw_startup_cost '10000', batch_size '20000');
SELECT * FROM plan_rows('SELECT e._id FROM picks p JOIN events e ON e."user" = p.u');
SELECT count(*) FROM picks p JOIN events e ON e."user" = p.u;
ALTER FOREIGN TABLE events OPTIONS (DROP fdw_startup_cost, DROP batch_size);

-- a changes table has no contents to sample
CREATE FOREIGN TABLE events_changes (operation_type text)
  SERVER costs_srv OPTIONS (changes 'true', collection 'events');
ANALYZE events_changes;

DROP FOREIGN TABLE events, tiny, events_changes;
DROP TABLE picks, many;
DROP FUNCTION plan_rows(text, boolean);
DROP USER MAPPING FOR CURRENT_USER SERVER costs_srv;
DROP SERVER costs_srv;

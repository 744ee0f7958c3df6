--
-- Statements of README.md and docs/ that no other test file checks: the
-- upgrade path, every setting with its default, the cost options'
-- defaults, the streams' SQL surface (function defaults, tables, views,
-- privileges) and a Troubleshooting message.
--
\getenv uri QLEAF_MONGODB_URI

-- install.md, Upgrading: 0.1 is the only version, there is no update path
-- yet, and only a superuser may create the extension
SELECT name, version, installed, superuser, trusted, relocatable
FROM pg_available_extension_versions WHERE name = 'qleaf_fdw';
SELECT count(*) AS update_paths FROM pg_extension_update_paths('qleaf_fdw')
WHERE path IS NOT NULL;
ALTER EXTENSION qleaf_fdw UPDATE;
ALTER EXTENSION qleaf_fdw UPDATE TO '0.2';

-- README Settings and Streams settings: every qleaf_fdw setting, its
-- default, and which need a restart (postmaster)
SELECT name, boot_val, unit, context FROM pg_settings
WHERE name LIKE 'qleaf_fdw.%' ORDER BY name;

-- Options: fdw_startup_cost and fdw_tuple_cost default to 100 and 0.01: a
-- table without them costs what a table with those values costs, and
-- other values change the cost
\! /usr/bin/python3 test/fixtures/load.py options
CREATE SERVER claims_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_options');
CREATE USER MAPPING FOR CURRENT_USER SERVER claims_srv;
CREATE FOREIGN TABLE widgets_default (_id int, name text)
  SERVER claims_srv OPTIONS (collection 'widgets');
CREATE FOREIGN TABLE widgets_explicit (_id int, name text)
  SERVER claims_srv OPTIONS (collection 'widgets', fdw_startup_cost '100',
                             fdw_tuple_cost '0.01');
CREATE FOREIGN TABLE widgets_other (_id int, name text)
  SERVER claims_srv OPTIONS (collection 'widgets', fdw_startup_cost '7',
                             fdw_tuple_cost '3');
CREATE FUNCTION plan_costs(tbl text, OUT startup float8, OUT total float8)
LANGUAGE plpgsql AS $$
DECLARE
  plan json;
BEGIN
  EXECUTE format('EXPLAIN (FORMAT JSON) SELECT * FROM %I', tbl) INTO plan;
  startup := plan->0->'Plan'->>'Startup Cost';
  total := plan->0->'Plan'->>'Total Cost';
END
$$;
SELECT d = e AS defaults_are_100_and_001, d <> o AS other_values_differ
FROM plan_costs('widgets_default') d, plan_costs('widgets_explicit') e,
     plan_costs('widgets_other') o;
SELECT * FROM widgets_default ORDER BY _id;

-- Options and settings, batch_size: INSERT sends 1000 rows per insert
-- command by default; reads with qleaf_fdw.batch_size 0 let MongoDB choose
-- (101 documents, then the rest of 2,500 small ones in one getMore); the
-- server's batch_size applies to its tables, a table's overrides it
CREATE FOREIGN TABLE claims_rows (_id int, n int) SERVER claims_srv
  OPTIONS (database 'qleaf_regress_docs', collection 'claims_rows');
CREATE FUNCTION explain_counts(query text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
  ln text;
BEGIN
  FOR ln IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || query LOOP
    IF ln ~ '(Batch Size|MongoDB Commands|Documents Written|Documents Received|Batches):' THEN
      RETURN NEXT ln;
    END IF;
  END LOOP;
END
$$;
SELECT explain_counts('INSERT INTO claims_rows SELECT i, i FROM generate_series(1, 2500) i');
SELECT explain_counts('SELECT * FROM claims_rows');
ALTER SERVER claims_srv OPTIONS (ADD batch_size '500');
SELECT explain_counts('SELECT * FROM claims_rows');
ALTER FOREIGN TABLE claims_rows OPTIONS (ADD batch_size '1000');
SELECT explain_counts('SELECT * FROM claims_rows');
ALTER SERVER claims_srv OPTIONS (DROP batch_size);
SELECT count(*), sum(n) FROM claims_rows;
DELETE FROM claims_rows;
DROP FUNCTION explain_counts;

-- Pushdown: conditions on real (it rounds the doubles it reads) and on
-- numeric(p,s) (it rounds values) stay local, and so does a user-defined
-- operator (its function is PL/pgSQL, so that the planner cannot inline
-- it), each with its reason
CREATE FOREIGN TABLE widgets_sizes (
  _id int,
  size_real real OPTIONS (field 'spec.size'),
  size_num numeric(4,1) OPTIONS (field 'spec.size')
) SERVER claims_srv OPTIONS (collection 'widgets');
CREATE FUNCTION claims_same(int, int) RETURNS boolean
  LANGUAGE plpgsql IMMUTABLE AS 'BEGIN RETURN $1 = $2; END';
CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = claims_same);
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM widgets_sizes WHERE size_real = 3;
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM widgets_sizes WHERE size_num = 3;
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM widgets_sizes WHERE _id === 2;
SELECT _id FROM widgets_sizes WHERE size_real = 3;
SELECT _id FROM widgets_sizes WHERE size_num = 5;
SELECT _id FROM widgets_sizes WHERE _id === 2;
DROP OPERATOR === (int, int);
DROP FUNCTION claims_same;

-- Options, uri: a URI without connectTimeoutMS and serverSelectionTimeoutMS
-- gives up on a server that accepts connections but never answers after
-- about 5 seconds (libmongoc's own defaults are 10 s and 30 s)
\set silent_port `/usr/bin/python3 test/silent_server.py 30`
\set silent_uri 'mongodb://127.0.0.1:' :silent_port '/'
CREATE SERVER claims_silent FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'silent_uri', database 'qleaf_regress_options');
CREATE USER MAPPING FOR CURRENT_USER SERVER claims_silent;
CREATE FOREIGN TABLE silent_widgets (_id int)
  SERVER claims_silent OPTIONS (collection 'widgets');
DO $$
DECLARE
  t0 timestamptz := clock_timestamp();
BEGIN
  PERFORM * FROM silent_widgets;
  RAISE NOTICE 'the silent server answered';
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'SQLSTATE %, after 4 to 9.5 seconds: %', SQLSTATE,
    clock_timestamp() - t0 BETWEEN interval '4 s' AND interval '9.5 s';
END
$$;

-- Troubleshooting: a server without "uri" is refused at the first query
CREATE SERVER claims_nouri FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (database 'qleaf_regress_options');
CREATE USER MAPPING FOR CURRENT_USER SERVER claims_nouri;
CREATE FOREIGN TABLE nouri (_id int) SERVER claims_nouri;
SELECT * FROM nouri;

-- Streams: defined in qleaf_fdw.database only (this is another database)
SELECT current_setting('qleaf_fdw.database') <> current_database() AS elsewhere;
\set VERBOSITY terse
SELECT qleaf.create_stream('claims', server => 'claims_srv');
\set VERBOSITY default

-- Streams: the defaults of create_stream's options, and reset_stream's
-- arguments
SELECT regexp_split_to_table(pg_get_function_arguments('qleaf.create_stream'::regproc),
                             ', ') AS create_stream;
SELECT regexp_split_to_table(pg_get_function_arguments('qleaf.reset_stream'::regproc),
                             ', ') AS reset_stream;

-- Event tables: the columns, types and indexes of qleaf.event_store, the
-- dead letters' columns, and stream_status's columns
\d qleaf.event_store
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 'qleaf.dead_letter'::regclass AND attnum > 0 ORDER BY attnum;
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 'qleaf.stream_status'::regclass AND attnum > 0 ORDER BY attnum;

-- docs/streams.md, the alert query: test/seed_stream_health.sql's view over
-- rows made up as stream_status would show them, one per health (and one
-- healthy stream at each threshold, which raises nothing)
CREATE TABLE claims_status AS SELECT * FROM qleaf.stream_status WITH NO DATA;
\! sed 's/qleaf\.stream_status/claims_status/' test/seed_stream_health.sql > results/docs_claims_health.sql
\set ECHO none
\i results/docs_claims_health.sql
\set ECHO all
INSERT INTO claims_status (stream, state, last_event_cluster_time, lag, events_total,
                           errors_total, restarts, last_error)
VALUES ('s_down', 'failed', now(), '1 s', 1, 0, 0, 'permission denied'),
       ('s_lost', 'history_lost', now(), '1 s', 1, 0, 0, NULL),
       ('s_stopped', 'stopped', now(), '1 s', 1, 0, 0, NULL),
       ('s_paused', 'paused', now(), '1 s', 1, 0, 0, NULL),
       ('s_blocked', 'waiting_for_listeners', now() - interval '10 minutes', '10 minutes', 1, 0, 0, NULL),
       ('s_noslot', 'waiting_for_slot', NULL, NULL, 0, 0, 0, NULL),
       ('s_never', 'running', NULL, NULL, 0, 0, 0, NULL),
       ('s_stalled', 'running', now() - interval '10 minutes', '10 minutes', 1, 0, 0, NULL),
       ('s_errors', 'running', now(), '1 s', 1, 6, 0, NULL),
       ('s_unstable', 'running', now(), '1 s', 1, 0, 4, NULL),
       ('s_healthy', 'running', now(), '5 minutes', 1, 5, 3, NULL);
SELECT stream, state, health_status, severity, message FROM stream_health_alerts;
DROP VIEW stream_health_alerts;
DROP TABLE claims_status;

-- Privileges: everyone may read the stream definitions, states and
-- status; qleaf.event_store and qleaf.dead_letter grant nothing to PUBLIC
CREATE ROLE claims_nobody;
SELECT c.relname,
       has_table_privilege('claims_nobody', c.oid, 'SELECT') AS can_select,
       has_table_privilege('claims_nobody', c.oid, 'INSERT, UPDATE, DELETE') AS can_write
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'qleaf' AND c.relkind IN ('r', 'v')
ORDER BY c.relname;
DROP ROLE claims_nobody;

SET client_min_messages = warning;
DROP SERVER claims_srv, claims_nouri, claims_silent CASCADE;
RESET client_min_messages;
DROP FUNCTION plan_costs;

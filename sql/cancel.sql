--
-- Cancel while MongoDB does not answer: statement_timeout ends a query
-- whose getMore or aggregate the server holds for 10 s (failCommand with
-- blockConnection), as a cancel and well before the server answers; the
-- next query works.
--
-- The elapsed time is only compared with the 10 s block (under 5 s): a
-- check that the wait was cut short, not a speed measurement.
--
\! /usr/bin/python3 test/fixtures/load.py connection
\getenv uri QLEAF_MONGODB_URI

CREATE SERVER cancel_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_connection');
CREATE USER MAPPING FOR CURRENT_USER SERVER cancel_srv;
CREATE FOREIGN TABLE items (_id int, name text, qty int)
  SERVER cancel_srv OPTIONS (collection 'items');

-- five documents per batch: reading the 20 items takes getMore round trips
SET qleaf_fdw.batch_size = 5;
SELECT count(*) FROM (SELECT name FROM items OFFSET 0) s;

-- a getMore held by the server
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["getMore"], "blockConnection": true, "blockTimeMS": 10000, "appName": "qleaf_fdw"}}'
SELECT clock_timestamp() AS t0 \gset
SET statement_timeout = '1s';
SELECT count(*) FROM (SELECT name FROM items OFFSET 0) s;
RESET statement_timeout;
SELECT clock_timestamp() - :'t0'::timestamptz < interval '5 s' AS cut_short;

-- the client whose read was cut is dropped from the cache (libmongoc may
-- have put the server in its reconnect cooldown); the next query opens a
-- new one and works
SELECT server_name, valid FROM qleaf_fdw_get_connections();
SELECT count(*) FROM (SELECT name FROM items OFFSET 0) s;
SELECT server_name, valid FROM qleaf_fdw_get_connections();

-- an aggregate held by the server
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["aggregate"], "blockConnection": true, "blockTimeMS": 10000, "appName": "qleaf_fdw"}}'
SELECT clock_timestamp() AS t0 \gset
SET statement_timeout = '1s';
SELECT count(*) FROM (SELECT name FROM items OFFSET 0) s;
RESET statement_timeout;
SELECT clock_timestamp() - :'t0'::timestamptz < interval '5 s' AS cut_short;
SELECT count(*) FROM (SELECT name FROM items OFFSET 0) s;

-- a cancel inside a transaction aborts it like any other error; the
-- connection serves the next transaction
BEGIN;
SELECT count(*) FROM (SELECT name FROM items OFFSET 0) s;
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["getMore"], "blockConnection": true, "blockTimeMS": 10000, "appName": "qleaf_fdw"}}'
SET LOCAL statement_timeout = '1s';
SELECT count(*) FROM (SELECT name FROM items OFFSET 0) s;
SELECT 1;
ROLLBACK;
SELECT count(*) FROM (SELECT name FROM items OFFSET 0) s;

-- closing a connection does not wait long for a server that holds its
-- replies: the endSessions sent on close gets one short try
SELECT count(*) FROM (SELECT name FROM items OFFSET 0) s;
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["endSessions"], "blockConnection": true, "blockTimeMS": 10000, "appName": "qleaf_fdw"}}'
SELECT clock_timestamp() AS t0 \gset
SELECT qleaf_fdw_disconnect('cancel_srv');
SELECT clock_timestamp() - :'t0'::timestamptz < interval '5 s' AS closed_promptly;
SELECT count(*) FROM (SELECT name FROM items OFFSET 0) s;

\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": "off"}'
SET client_min_messages = warning;
DROP SERVER cancel_srv CASCADE;
RESET client_min_messages;

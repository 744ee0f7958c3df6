--
-- Changes tables: change streams as rows.  Start positions, the pushed
-- $match, pre-images, every operation type, database streams, invalidate,
-- errors, incremental pulls.  Every read starts after a point taken in
-- this file, so output never depends on earlier runs or on the clock.
-- test/fixtures/changes.py write prints the server's time (the start
-- point, in cluster_timestamp's form), then runs the writes after it.
--
\! /usr/bin/python3 test/fixtures/load.py changes
\getenv uri QLEAF_MONGODB_URI

CREATE SERVER changes_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_changes');
CREATE USER MAPPING FOR CURRENT_USER SERVER changes_srv;

-- every standard column, and fields of the documents
CREATE FOREIGN TABLE inventory_changes (
  resume_token      text,
  operation_type    text,
  database          text,
  collection        text,
  document_key      jsonb,
  full_document     jsonb,
  full_document_before_change jsonb,
  updated_fields    jsonb,
  removed_fields    text[],
  truncated_arrays  jsonb,
  cluster_time      timestamptz,
  cluster_timestamp bigint,
  wall_time         timestamptz,
  txn_number        bigint,
  lsid              jsonb,
  sku               text OPTIONS (field 'documentKey._id'),
  stock             int OPTIONS (field 'fullDocument.stockLevel'),
  stock_before      int OPTIONS (field 'fullDocumentBeforeChange.stockLevel')
) SERVER changes_srv
  OPTIONS (changes 'true', collection 'inventory',
           full_document 'updateLookup',
           full_document_before_change 'whenAvailable');

-- the same stream without pre-images, and with fullDocument as the server sends it
CREATE FOREIGN TABLE inventory_plain (
  operation_type text, sku text OPTIONS (field 'documentKey._id'),
  full_document jsonb, full_document_before_change jsonb,
  cluster_timestamp bigint
) SERVER changes_srv OPTIONS (changes 'true', collection 'inventory');

-- options
CREATE FOREIGN TABLE bad1 (x int) SERVER changes_srv
  OPTIONS (changes 'true', full_document 'always');
CREATE FOREIGN TABLE bad2 (x int) SERVER changes_srv
  OPTIONS (changes 'true', full_document_before_change 'on');
CREATE FOREIGN TABLE bad3 (x int) SERVER changes_srv
  OPTIONS (changes 'true', start_lookback 'soon');
CREATE FOREIGN TABLE bad4 (x int) SERVER changes_srv
  OPTIONS (changes 'true', start_lookback '-1 hour');
CREATE FOREIGN TABLE bad5 (x int) SERVER changes_srv
  OPTIONS (collection 'inventory', full_document 'updateLookup');
CREATE FOREIGN TABLE bad6 (x int) SERVER changes_srv
  OPTIONS (changes 'maybe');
CREATE FOREIGN TABLE bad7 (x int) SERVER changes_srv
  OPTIONS (changes 'true', full_documents 'default');

-- one event of each kind on documents
\set start `/usr/bin/python3 test/fixtures/changes.py write '{"update": "inventory", "updates": [{"q": {"_id": "SKU-1"}, "u": {"$set": {"stockLevel": 0}}}]}' '{"update": "inventory", "updates": [{"q": {"_id": "SKU-2"}, "u": {"$inc": {"stockLevel": 10}, "$unset": {"name": 1}}}]}' '{"insert": "inventory", "documents": [{"_id": "SKU-9", "name": "tray", "stockLevel": 1, "reorderLevel": 2}]}' '{"update": "inventory", "updates": [{"q": {"_id": "SKU-4"}, "u": {"name": "spoon", "stockLevel": 25, "reorderLevel": 20}}]}' '{"delete": "inventory", "deletes": [{"q": {"_id": "SKU-3"}, "limit": 1}]}'`

SELECT operation_type, database, collection, document_key, sku, stock,
       stock_before, updated_fields, removed_fields, truncated_arrays,
       full_document_before_change IS NOT NULL AS has_pre, txn_number, lsid
FROM inventory_changes WHERE cluster_timestamp > :start;

SELECT operation_type, full_document FROM inventory_changes
WHERE cluster_timestamp > :start AND operation_type IN ('insert', 'replace');

-- the columns of the cluster time agree, tokens grow in event order, the
-- wall time is a time of this century
SELECT count(*) AS events,
       bool_and(cluster_time = to_timestamp(cluster_timestamp >> 32)) AS same_time,
       bool_and(cluster_timestamp > :start) AS after_start,
       bool_and(wall_time > '2020-01-01') AS wall_time_ok,
       bool_and(length(resume_token) > 0) AS tokens
FROM inventory_changes WHERE cluster_timestamp > :start;
SELECT bool_and(tok_order = ts_order) AS tokens_sort_in_event_order
FROM (SELECT row_number() OVER (ORDER BY resume_token COLLATE "C") AS tok_order,
             row_number() OVER (ORDER BY cluster_timestamp) AS ts_order
      FROM inventory_changes WHERE cluster_timestamp > :start) s;

-- pre-images off: no document before the change; fullDocument 'default':
-- updates carry none, inserts and replaces do
SELECT operation_type, sku, full_document IS NOT NULL AS has_doc,
       full_document_before_change IS NOT NULL AS has_pre
FROM inventory_plain WHERE cluster_timestamp > :start;

--
-- start positions
--
-- cluster_timestamp >= the third event's: from that event on
SELECT cluster_timestamp AS third_ts, resume_token AS third_token
FROM inventory_changes WHERE cluster_timestamp > :start
ORDER BY cluster_timestamp OFFSET 2 LIMIT 1 \gset
SELECT operation_type, sku FROM inventory_changes
WHERE cluster_timestamp >= :third_ts;
-- resume_token >: the events after the third
SELECT operation_type, sku FROM inventory_changes
WHERE resume_token > :'third_token';
-- resume_token >=: from the third on
SELECT operation_type, sku FROM inventory_changes
WHERE resume_token >= :'third_token';
-- cluster_time: the start is rounded down to the second, the condition
-- keeps the result exact
SELECT count(*) = (SELECT count(*) FROM inventory_changes
                   WHERE cluster_timestamp >= (:third_ts::bigint >> 32) << 32)
       AS same_count
FROM inventory_changes WHERE cluster_time >= to_timestamp(:third_ts::bigint >> 32);
SELECT count(*) FROM inventory_changes
WHERE cluster_time > to_timestamp(:third_ts::bigint >> 32) + interval '1 day';
-- the start value from a subquery, evaluated when the scan starts
CREATE TABLE marks (token text, ts bigint);
INSERT INTO marks VALUES (:'third_token', :third_ts);
SELECT operation_type, sku FROM inventory_changes
WHERE resume_token > (SELECT token FROM marks);
SELECT operation_type, sku FROM inventory_changes
WHERE cluster_timestamp > (SELECT ts FROM marks);
EXPLAIN (VERBOSE, COSTS OFF)
SELECT sku FROM inventory_changes WHERE resume_token > (SELECT token FROM marks);
EXPLAIN (VERBOSE, COSTS OFF)
SELECT sku FROM inventory_changes
WHERE cluster_time >= now() - interval '1 hour';
EXPLAIN (VERBOSE, COSTS OFF)
SELECT sku FROM inventory_changes
WHERE cluster_time >= '2024-05-01 10:00:00.5+00' AND resume_token >= '8266320F80000000012B0229296E04';
EXPLAIN (VERBOSE, COSTS OFF)
SELECT sku FROM inventory_changes WHERE resume_token > '8266320F80000000012B0229296E04';
-- a NULL start reads nothing, as the comparison is never true
SELECT count(*) FROM inventory_changes
WHERE resume_token > (SELECT token FROM marks WHERE false);
-- a malformed token: the server's error (its wording is the server's)
\set VERBOSITY terse
SELECT count(*) FROM inventory_changes WHERE resume_token > 'zz';
\set VERBOSITY default
SELECT count(*) FROM inventory_changes WHERE resume_token >= 'zz';
-- LIMIT ends the scan early
SELECT operation_type, sku FROM inventory_changes
WHERE cluster_timestamp > :start LIMIT 2;

-- a nested loop: every outer row reruns the stream, its value in $match
CREATE TABLE skus (k text);
INSERT INTO skus VALUES ('SKU-1'), ('SKU-9'), ('SKU-7');
SELECT s.k, c.operation_type
FROM skus s,
     LATERAL (SELECT operation_type FROM inventory_changes
              WHERE cluster_timestamp > :start AND sku = s.k) c
ORDER BY 1;
DROP TABLE skus;

-- the default start: start_lookback before the server's time.  The
-- collection is emptied, never dropped, by the fixture: a drop in the
-- window would end the stream there.
\! test/mongo-cmd --db qleaf_regress_changes_log '{"insert": "log", "documents": [{"_id": "L"}]}'
CREATE FOREIGN TABLE log_recent (
  operation_type text, id text OPTIONS (field 'documentKey._id'),
  cluster_timestamp bigint
) SERVER changes_srv OPTIONS (changes 'true', database 'qleaf_regress_changes_log',
                              collection 'log', start_lookback '10 minutes');
CREATE FOREIGN TABLE log_from_now (operation_type text)
  SERVER changes_srv OPTIONS (changes 'true', database 'qleaf_regress_changes_log',
                              collection 'log', start_lookback '0');
SELECT operation_type, id FROM log_recent ORDER BY cluster_timestamp DESC LIMIT 1;
SELECT count(*) >= 1 AS has_the_insert FROM log_recent
WHERE operation_type = 'insert' AND id = 'L';
SELECT count(*) FROM log_from_now;
EXPLAIN (VERBOSE, COSTS OFF) SELECT operation_type FROM log_recent;

--
-- what goes into $match
--
EXPLAIN (VERBOSE, COSTS OFF)
SELECT operation_type, sku FROM inventory_changes
WHERE cluster_timestamp > 7000000000000000000
  AND operation_type IN ('update', 'replace') AND stock < 5;
SELECT operation_type, sku, stock FROM inventory_changes
WHERE cluster_timestamp > :start
  AND operation_type IN ('update', 'replace') AND stock < 5;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT operation_type FROM inventory_changes
WHERE resume_token > 'A' AND operation_type <> 'delete'
  AND full_document->>'name' = 'tray';
SELECT operation_type, sku FROM inventory_changes
WHERE cluster_timestamp > :start AND operation_type <> 'delete'
  AND full_document->>'name' = 'tray';
-- the document before the change, compared in $match
SELECT operation_type, sku, stock_before FROM inventory_changes
WHERE cluster_timestamp > :start AND stock_before >= 10;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT sku FROM inventory_changes
WHERE cluster_timestamp > 7000000000000000000 AND stock_before >= 10;
-- the default start, and conditions PostgreSQL checks
EXPLAIN (VERBOSE, COSTS OFF)
SELECT operation_type FROM inventory_changes
WHERE cluster_time < now() AND document_key::text LIKE '%1%';
-- with pushdown off, only the start position reaches MongoDB
SET qleaf_fdw.enable_pushdown = off;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT sku FROM inventory_changes
WHERE cluster_timestamp > 7000000000000000000 AND operation_type = 'insert';
SELECT sku FROM inventory_changes
WHERE cluster_timestamp > :start AND operation_type = 'insert';
RESET qleaf_fdw.enable_pushdown;

-- a fetched path into the documents keeps the projection, whose
-- traversal of arrays is MongoDB's; event fields are read from the events
CREATE FOREIGN TABLE order_items (
  operation_type text, cluster_timestamp bigint,
  skus text[] OPTIONS (field 'fullDocument.items.sku')
) SERVER changes_srv OPTIONS (changes 'true', collection 'orders');
\set start `/usr/bin/python3 test/fixtures/changes.py write '{"insert": "orders", "documents": [{"_id": "I1", "items": [{"sku": "a"}, {"sku": "b"}]}]}'`
SELECT operation_type, skus FROM order_items WHERE cluster_timestamp > :start;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT skus FROM order_items WHERE cluster_timestamp > 7000000000000000000;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT operation_type FROM order_items WHERE cluster_timestamp > 7000000000000000000;

--
-- transactions: lsid and txnNumber, one cluster time
--
CREATE FOREIGN TABLE orders_changes (
  resume_token text COLLATE "C", operation_type text, document_key jsonb,
  full_document jsonb, cluster_timestamp bigint, cluster_time timestamptz,
  txn_number bigint, lsid jsonb,
  status text OPTIONS (field 'fullDocument.status')
) SERVER changes_srv OPTIONS (changes 'true', collection 'orders');
\set start `/usr/bin/python3 test/fixtures/changes.py now`
\! /usr/bin/python3 test/fixtures/changes.py txn
SELECT operation_type, document_key, txn_number IS NOT NULL AS has_txn,
       lsid ? 'id' AS has_lsid
FROM orders_changes WHERE cluster_timestamp > :start;
SELECT count(DISTINCT cluster_timestamp) AS cluster_times,
       count(DISTINCT resume_token) AS tokens
FROM orders_changes WHERE cluster_timestamp > :start;

--
-- incremental pull in plain SQL
--
CREATE TABLE order_events AS
  SELECT * FROM orders_changes WHERE cluster_timestamp > :start;
\! test/mongo-cmd --db qleaf_regress_changes '{"insert": "orders", "documents": [{"_id": "A1", "status": "created"}]}'
\! test/mongo-cmd --db qleaf_regress_changes '{"update": "orders", "updates": [{"q": {"_id": "A1"}, "u": {"$set": {"status": "paid"}}}]}'
INSERT INTO order_events
  SELECT * FROM orders_changes
  WHERE resume_token > (SELECT max(resume_token) FROM order_events);
-- nothing new: nothing pulled
INSERT INTO order_events
  SELECT * FROM orders_changes
  WHERE resume_token > (SELECT max(resume_token) FROM order_events);
\! test/mongo-cmd --db qleaf_regress_changes '{"delete": "orders", "deletes": [{"q": {"_id": "A1"}, "limit": 1}]}'
INSERT INTO order_events
  SELECT * FROM orders_changes
  WHERE resume_token > (SELECT max(resume_token) FROM order_events);
SELECT operation_type, document_key, status FROM order_events
ORDER BY resume_token;
SELECT count(*) = count(DISTINCT resume_token) AS no_duplicates FROM order_events;

--
-- the stream of the whole database, and invalidate
--
CREATE FOREIGN TABLE db_changes (
  operation_type text, database text, collection text, document_key jsonb,
  cluster_timestamp bigint,
  to_coll text OPTIONS (field 'to.coll')
) SERVER changes_srv OPTIONS (changes 'true');
CREATE FOREIGN TABLE scratch_changes (
  operation_type text, document_key jsonb, cluster_timestamp bigint
) SERVER changes_srv OPTIONS (changes 'true', collection 'scratch');
\set start `/usr/bin/python3 test/fixtures/changes.py write '{"insert": "scratch", "documents": [{"_id": 1}, {"_id": 2}]}' '{"insert": "orders", "documents": [{"_id": "B1", "status": "created"}]}' '{"drop": "scratch"}' '{"insert": "scratch", "documents": [{"_id": 3}]}'`
-- a collection's stream ends at the drop: invalidate is the last row
SELECT operation_type, document_key FROM scratch_changes
WHERE cluster_timestamp > :start;
-- a shipped $match lets the invalidate through only to end the scan
SELECT operation_type, document_key FROM scratch_changes
WHERE cluster_timestamp > :start AND operation_type = 'insert';
-- the database's stream sees every collection and goes on after the drop
SELECT operation_type, database, collection, document_key FROM db_changes
WHERE cluster_timestamp > :start;
-- a namespace condition goes into $match
SELECT operation_type, collection, document_key FROM db_changes
WHERE cluster_timestamp > :start AND collection = 'orders';
EXPLAIN (VERBOSE, COSTS OFF)
SELECT operation_type FROM db_changes
WHERE cluster_timestamp > 7000000000000000000 AND collection = 'orders'
  AND database = 'qleaf_regress_changes';
-- rename: the event names the new collection
\set start `/usr/bin/python3 test/fixtures/changes.py now`
\! test/mongo-cmd '{"renameCollection": "qleaf_regress_changes.scratch", "to": "qleaf_regress_changes.scratch2"}'
SELECT operation_type, collection, to_coll FROM db_changes
WHERE cluster_timestamp > :start;

--
-- errors
--
-- the start point is gone from the server's history
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["aggregate"], "errorCode": 286, "appName": "qleaf_fdw"}}'
SELECT count(*) FROM inventory_changes WHERE cluster_timestamp > :start;
-- a server without change streams (a standalone mongod)
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["aggregate"], "errorCode": 40573, "appName": "qleaf_fdw"}}'
SELECT count(*) FROM inventory_changes WHERE cluster_timestamp > :start;
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": "off"}'
-- pre-images required where the collection keeps none
CREATE FOREIGN TABLE orders_required (operation_type text, cluster_timestamp bigint)
  SERVER changes_srv OPTIONS (changes 'true', collection 'orders',
                              full_document_before_change 'required');
\set start `/usr/bin/python3 test/fixtures/changes.py write '{"delete": "orders", "deletes": [{"q": {"_id": "B1"}, "limit": 1}]}'`
\set VERBOSITY terse
SELECT count(*) FROM orders_required WHERE cluster_timestamp > :start;
\set VERBOSITY default
-- a getMore held by the server: statement_timeout cuts the wait
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["getMore"], "blockConnection": true, "blockTimeMS": 10000, "appName": "qleaf_fdw"}}'
SELECT clock_timestamp() AS t0 \gset
SET statement_timeout = '1s';
SELECT count(*) FROM inventory_changes WHERE cluster_timestamp > :start;
RESET statement_timeout;
SELECT clock_timestamp() - :'t0'::timestamptz < interval '5 s' AS cut_short;
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": "off"}'
-- and the next scan works
SELECT count(*) FROM inventory_changes WHERE cluster_timestamp > :start;
-- ANALYZE has nothing to sample
ANALYZE inventory_changes;

DROP TABLE marks, order_events;
DROP SERVER changes_srv CASCADE;

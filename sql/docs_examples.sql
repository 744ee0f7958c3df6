--
-- The SQL examples of README.md and docs/ run as written.  test/docs_sql.py
-- prints each ```sql block marked <!-- runnable --> (with the test's
-- MongoDB in place of the reader's, see its header); each runs in a fresh
-- database, and what it did is checked after it.  Every other ```sql block
-- must say why it is not run (<!-- not run: ... -->).
--
\! /usr/bin/python3 test/fixtures/load.py docs
\getenv uri QLEAF_MONGODB_URI
\set VERBOSITY terse
SELECT current_database() AS regress_db \gset

-- every ```sql block is marked: nothing printed here
\! /usr/bin/python3 test/docs_sql.py --unmarked README.md docs/*.md
-- the runnable blocks, per file (each is run below)
\! /usr/bin/python3 test/docs_sql.py --count README.md
\! /usr/bin/python3 test/docs_sql.py --count docs/install.md
\! /usr/bin/python3 test/docs_sql.py --count docs/changes.md
\! /usr/bin/python3 test/docs_sql.py --count docs/security.md

--
-- README.md
--
CREATE DATABASE qleaf_docs_readme;
\c qleaf_docs_readme
\set VERBOSITY terse
-- Install from source: the extension is created, then dropped again for the
-- Quick start, which creates it itself
\! /usr/bin/python3 test/docs_sql.py README.md 1 > results/docs_block.sql
\i results/docs_block.sql
SELECT extname, extversion FROM pg_extension WHERE extname = 'qleaf_fdw';
DROP EXTENSION qleaf_fdw CASCADE;

-- Quick start: three of the four orders were created within the last day
\! /usr/bin/python3 test/docs_sql.py README.md 2 > results/docs_block.sql
\i results/docs_block.sql
SELECT _id, customer_id, status, total, city, jsonb_array_length(items) AS items
FROM orders ORDER BY _id;
SELECT doc->'_id' AS id, doc->'total' AS total FROM order_documents
WHERE doc->>'status' = 'pending';

-- Changes tables: the incremental pull.  The first pull copies the events
-- after :start, each later pull the events after the last one copied.
\set start `/usr/bin/python3 test/fixtures/changes.py now`
\! test/mongo-cmd --db qleaf_regress_docs '{"insert": "orders", "documents": [{"_id": 5, "status": "pending"}, {"_id": 6, "status": "pending"}]}'
\! /usr/bin/python3 test/docs_sql.py README.md 3 > results/docs_block.sql
\i results/docs_block.sql
SELECT operation_type, document_key, status FROM order_events ORDER BY resume_token;
\! test/mongo-cmd --db qleaf_regress_docs '{"update": "orders", "updates": [{"q": {"_id": 5}, "u": {"$set": {"status": "paid"}}}]}'
\! /usr/bin/python3 test/docs_sql.py README.md 4 > results/docs_block.sql
\i results/docs_block.sql
-- run again with nothing new, it copies nothing
\i results/docs_block.sql
SELECT operation_type, document_key, status FROM order_events ORDER BY resume_token;
SELECT count(DISTINCT resume_token) = count(*) AS none_twice FROM order_events;

-- Streams: the health check (no stream is defined in this database)
\! /usr/bin/python3 test/docs_sql.py README.md 5 > results/docs_block.sql
\i results/docs_block.sql

-- Projections: the read model kept by a trigger on qleaf.event_store, fed
-- here the rows a stream "inventory" would store
\! /usr/bin/python3 test/docs_sql.py README.md 6 > results/docs_block.sql
\i results/docs_block.sql
INSERT INTO qleaf.event_store (stream, resume_token, operation_type, document_key,
                               full_document, cluster_time)
VALUES ('inventory', '01', 'insert', '{"_id": "sku-1"}',
        '{"_id": "sku-1", "stockLevel": 12}', '2026-05-01 10:00:00+00'),
       ('inventory', '02', 'insert', '{"_id": "sku-2"}',
        '{"_id": "sku-2", "stockLevel": 3}', '2026-05-01 10:00:01+00'),
       ('inventory', '03', 'update', '{"_id": "sku-1"}',
        '{"_id": "sku-1", "stockLevel": 9}', '2026-05-01 10:00:02+00'),
       ('other', '04', 'insert', '{"_id": "sku-9"}',
        '{"_id": "sku-9", "stockLevel": 1}', '2026-05-01 10:00:03+00');
SELECT * FROM stock ORDER BY sku;
INSERT INTO qleaf.event_store (stream, resume_token, operation_type, document_key,
                               cluster_time)
VALUES ('inventory', '05', 'delete', '{"_id": "sku-2"}', '2026-05-01 10:00:04+00');
SELECT * FROM stock ORDER BY sku;

\c :regress_db
DROP DATABASE qleaf_docs_readme;

--
-- docs/: each page's blocks in a database of their own
--
CREATE DATABASE qleaf_docs_pages;
\c qleaf_docs_pages
\set VERBOSITY terse
-- install.md
\! /usr/bin/python3 test/docs_sql.py docs/install.md 1 > results/docs_block.sql
\i results/docs_block.sql
SELECT fdwname, fdwhandler::regproc, fdwvalidator::regproc FROM pg_foreign_data_wrapper;

-- changes.md, on the server "shop" of the Quick start
CREATE SERVER shop FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_docs');
CREATE USER MAPPING FOR CURRENT_USER SERVER shop;
\! /usr/bin/python3 test/docs_sql.py docs/changes.md 1 > results/docs_block.sql
\i results/docs_block.sql
\set start `/usr/bin/python3 test/fixtures/changes.py now`
\! test/mongo-cmd --db qleaf_regress_docs '{"update": "inventory", "updates": [{"q": {"_id": "sku-1"}, "u": {"$inc": {"stockLevel": -3}}}]}'
SELECT operation_type, document_key, full_document_before_change->'stockLevel' AS before,
       updated_fields, stock
FROM inventory_changes WHERE cluster_timestamp > :start;

-- security.md: a mapping with credentials for another role, then a server
-- with TLS options in its URI
CREATE ROLE app_reader;
\! /usr/bin/python3 test/docs_sql.py docs/security.md 1 > results/docs_block.sql
\i results/docs_block.sql
SELECT usename, umoptions FROM pg_user_mappings WHERE usename = 'app_reader';
DROP SERVER shop CASCADE;
\! /usr/bin/python3 test/docs_sql.py docs/security.md 2 > results/docs_block.sql
\i results/docs_block.sql
SELECT srvname, srvoptions FROM pg_foreign_server;

-- scenarios.md's shell examples: --setup makes a fresh database with a
-- 12-product catalog, --plan prints the writes without making them, and
-- the same seed and anchor on the same state plan the same writes
\! /usr/bin/python3 test/traffic.py --setup --db qleaf_regress_docs_traffic --events 50 --quiet
CREATE SERVER traffic FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_docs_traffic');
CREATE USER MAPPING FOR CURRENT_USER SERVER traffic;
CREATE FOREIGN TABLE traffic_inventory (_id text) SERVER traffic
  OPTIONS (collection 'inventory');
CREATE FOREIGN TABLE traffic_activities (_id text) SERVER traffic
  OPTIONS (collection 'user_activities');
SELECT count(*) AS products FROM traffic_inventory;
SELECT count(*) > 0 AS activities_written FROM traffic_activities \gset
\echo :activities_written
SELECT count(*) AS activities FROM traffic_activities \gset
\! /usr/bin/python3 test/traffic.py --plan --db qleaf_regress_docs_traffic --seed 3 --events 20 --anchor 2026-05-01T10:00:00Z > results/docs_plan1.jsonl
\! /usr/bin/python3 test/traffic.py --plan --db qleaf_regress_docs_traffic --seed 3 --events 20 --anchor 2026-05-01T10:00:00Z > results/docs_plan2.jsonl
\! wc -l < results/docs_plan1.jsonl
\! cmp results/docs_plan1.jsonl results/docs_plan2.jsonl && echo same plan
SELECT count(*) = :activities AS plan_wrote_nothing FROM traffic_activities;
\! test/mongo-cmd --db qleaf_regress_docs_traffic '{"dropDatabase": 1}'

\c :regress_db
DROP DATABASE qleaf_docs_pages;
DROP ROLE app_reader;

--
-- MongoDB views: IMPORT FOREIGN SCHEMA leaves them out; a foreign table
-- defined by hand over a view reads the view's result, WHERE pushed down
-- on top of the view's pipeline, and writing to it fails as MongoDB says.
--
\! /usr/bin/python3 test/fixtures/load.py import_views
\getenv uri QLEAF_MONGODB_URI

CREATE SERVER views_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_import_views');
CREATE USER MAPPING FOR CURRENT_USER SERVER views_srv;

-- only the collection orders is imported: paid_orders, big_paid and ghost
-- are views
CREATE SCHEMA impv;
IMPORT FOREIGN SCHEMA qleaf_regress_import_views FROM SERVER views_srv INTO impv;
SELECT c.relname, array_to_string(t.ftoptions, ', ') AS options
FROM pg_class c JOIN pg_foreign_table t ON t.ftrelid = c.oid
WHERE c.relnamespace = 'impv'::regnamespace ORDER BY 1;
-- naming a view in LIMIT TO imports nothing for it
IMPORT FOREIGN SCHEMA qleaf_regress_import_views LIMIT TO (paid_orders)
  FROM SERVER views_srv INTO impv;
SELECT count(*) FROM pg_class WHERE relnamespace = 'impv'::regnamespace;
SELECT * FROM impv.orders ORDER BY _id;

-- a foreign table over a view, by hand
CREATE FOREIGN TABLE paid_orders (
  _id   int,
  cust  text,
  total int,
  big   boolean
) SERVER views_srv OPTIONS (collection 'paid_orders');
SELECT * FROM paid_orders ORDER BY _id;
-- WHERE is pushed down; MongoDB runs it after the view's pipeline
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id, total FROM paid_orders WHERE cust = 'bob';
SELECT _id, total FROM paid_orders WHERE cust = 'bob';
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM paid_orders WHERE big AND total < 35;
SELECT _id FROM paid_orders WHERE big AND total < 35 ORDER BY _id;
-- the view dropped status: a condition on it matches nothing
CREATE FOREIGN TABLE paid_orders_status (
  _id    int,
  status text
) SERVER views_srv OPTIONS (collection 'paid_orders');
SELECT count(*) FROM paid_orders_status WHERE status = 'paid';
SELECT count(*) FROM paid_orders;

-- a view on a view, and a view on a missing collection (empty)
CREATE FOREIGN TABLE big_paid (_id int, total int)
  SERVER views_srv OPTIONS (collection 'big_paid');
SELECT * FROM big_paid ORDER BY _id;
CREATE FOREIGN TABLE ghost (_id int)
  SERVER views_srv OPTIONS (collection 'ghost');
SELECT count(*) FROM ghost;

-- writes: MongoDB refuses them (166 CommandNotSupportedOnView)
INSERT INTO paid_orders (_id, cust, total) VALUES (9, 'dan', 1);
UPDATE paid_orders SET total = 0 WHERE _id = 1;
DELETE FROM paid_orders WHERE _id = 1;
SELECT _id, total, status FROM impv.orders ORDER BY _id;

DROP SCHEMA impv CASCADE;
DROP SERVER views_srv CASCADE;

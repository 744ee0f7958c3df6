--
-- Writes: INSERT (with and without _id, batches), COPY FROM, UPDATE
-- ($set / $unset, nested fields, the whole document), DELETE, RETURNING,
-- and the errors MongoDB or qleaf_fdw raise for them.
--
\! /usr/bin/python3 test/fixtures/load.py writes
\getenv uri QLEAF_MONGODB_URI

CREATE SERVER writes_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_writes');
CREATE USER MAPPING FOR CURRENT_USER SERVER writes_srv;

CREATE FOREIGN TABLE items (
  _id   text,
  sku   text,
  qty   int,
  price numeric,
  city  text OPTIONS (field 'warehouse.city'),
  bin   text OPTIONS (field 'warehouse.bin'),
  doc   jsonb OPTIONS (field '$$ROOT')
) SERVER writes_srv OPTIONS (batch_size '3');

-- a given _id is kept; without one, an ObjectId comes back through RETURNING
INSERT INTO items (_id, sku, qty) VALUES ('a1', 'apple', 5) RETURNING _id, sku, qty;
INSERT INTO items (sku, qty, price) VALUES ('pear', 7, 1.50)
  RETURNING _id ~ '^[0-9a-f]{24}$' AS objectid, sku, qty, price;
SELECT jsonb_typeof(doc->'_id') AS id_json_type, doc->'_id' ? '$oid' AS is_oid
FROM items WHERE sku = 'pear';

-- nested fields build their documents; NULL columns are left out
INSERT INTO items (_id, sku, qty, city, bin) VALUES ('a2', 'fig', 1, 'Lyon', 'B7')
  RETURNING doc;
INSERT INTO items (_id, sku) VALUES ('a3', 'kiwi') RETURNING doc;

-- the whole-document column gives the fields no column maps
INSERT INTO items (_id, doc, qty)
  VALUES ('a4', '{"sku": "plum", "qty": 99, "tags": ["x", "y"], "warehouse": {"bin": "C1"}}', 3)
  RETURNING sku, qty, city, bin, doc;

-- batches: one insert command per 3 rows
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
INSERT INTO items (sku, qty) SELECT 'gen' || i, i FROM generate_series(1, 7) i;
SELECT count(*) FROM items WHERE sku LIKE 'gen%';

-- COPY FROM goes in the same batches
COPY items (_id, sku, qty, city) FROM stdin;
c1	copy1	1	Oslo
c2	copy2	2	\N
c3	copy3	3	Bergen
c4	copy4	4	Oslo
\.
SELECT _id, sku, qty, city FROM items WHERE _id LIKE 'c%' ORDER BY _id;

-- UPDATE: $set of the columns set, $unset of those set to NULL
UPDATE items SET qty = qty + 1, city = 'Nice' WHERE _id = 'a1' RETURNING _id, qty, city, doc;
UPDATE items SET bin = NULL WHERE _id = 'a2' RETURNING doc;
UPDATE items SET city = NULL, bin = NULL WHERE _id = 'a2' RETURNING doc;
UPDATE items SET price = 2.25 WHERE sku = 'pear' RETURNING sku, price;
-- many rows, count right
UPDATE items SET qty = 0 WHERE sku LIKE 'gen%';
SELECT sum(qty) FROM items WHERE sku LIKE 'gen%';
-- no row
UPDATE items SET qty = 1 WHERE _id = 'none';
-- a row the join finds twice is updated once, as in a heap table
UPDATE items SET qty = qty + 1 FROM (VALUES (1), (2)) v(x) WHERE _id = 'a1' RETURNING _id, qty;

-- the whole document replaced (the _id stays)
UPDATE items SET doc = '{"sku": "kiwi2", "note": "replaced"}' WHERE _id = 'a3'
  RETURNING _id, sku, qty, doc;

-- _id cannot change; setting it to itself is allowed
UPDATE items SET _id = 'zz' WHERE _id = 'a1';
UPDATE items SET _id = _id WHERE _id = 'a1' RETURNING _id, qty;

-- DELETE by _id, RETURNING the deleted row
DELETE FROM items WHERE _id = 'c2' RETURNING _id, sku, qty;
DELETE FROM items WHERE sku LIKE 'gen%';
DELETE FROM items WHERE _id = 'none';
SELECT CASE WHEN _id ~ '^[0-9a-f]{24}$' THEN '(an ObjectId)' ELSE _id END AS _id, sku
FROM items ORDER BY sku;

-- duplicate keys: unique_violation with the key
INSERT INTO items (_id, sku) VALUES ('a1', 'other');
INSERT INTO items (_id, sku) VALUES ('a9', 'apple');
UPDATE items SET sku = 'apple' WHERE _id = 'a2';
DO $$
BEGIN
  INSERT INTO items (_id, sku) VALUES ('a1', 'other2');
EXCEPTION WHEN unique_violation THEN
  RAISE NOTICE 'unique_violation: %', SQLERRM;
END $$;

-- field names MongoDB cannot store
INSERT INTO items (_id, doc) VALUES ('e1', '{"$bad": 1}');
INSERT INTO items (_id, doc) VALUES ('e2', '{"": 1}');
INSERT INTO items (_id, doc) VALUES ('e3', '{"a": {"b.c": 1}}');
INSERT INTO items (_id, doc) VALUES ('e4', '[1, 2]');
-- two columns writing the same field
CREATE FOREIGN TABLE items_overlap (
  _id text, wh jsonb OPTIONS (field 'warehouse'), city text OPTIONS (field 'warehouse.city')
) SERVER writes_srv OPTIONS (collection 'items');
INSERT INTO items_overlap VALUES ('e5', '{"bin": "x"}', 'Oslo');
-- a document over 16 MB
INSERT INTO items (_id, sku) VALUES ('e6', repeat('x', 17 * 1024 * 1024));
SELECT count(*) FROM items WHERE _id LIKE 'e%';

-- an UPDATE / DELETE whose WHERE MongoDB evaluates exactly, with SET values
-- known in advance and no RETURNING, is one command for all its rows
INSERT INTO items (_id, sku, qty, city) SELECT 'm' || i, 'many' || i, i % 4, 'Oslo' FROM generate_series(1, 12) i;
EXPLAIN (VERBOSE, COSTS OFF) UPDATE items SET qty = 100, city = NULL WHERE qty = 1;
UPDATE items SET qty = 100, city = NULL WHERE qty = 1;
SELECT _id, qty, city FROM items WHERE _id LIKE 'm%' AND qty = 100 ORDER BY _id;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) DELETE FROM items WHERE qty = 2;
-- a parameter is filled in when the command runs
SET plan_cache_mode = force_generic_plan;
PREPARE del_qty(int) AS DELETE FROM items WHERE qty = $1 AND _id LIKE 'm%';
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE del_qty(3);
EXECUTE del_qty(3);
RESET plan_cache_mode;
SELECT count(*) FROM items WHERE _id LIKE 'm%';
-- not as one command: a SET value read from the row, RETURNING, a local condition
EXPLAIN (COSTS OFF) UPDATE items SET qty = qty + 1 WHERE _id LIKE 'm%';
UPDATE items SET qty = qty + 1 WHERE _id LIKE 'm%';
EXPLAIN (COSTS OFF) DELETE FROM items WHERE qty = 101 RETURNING _id;
EXPLAIN (COSTS OFF) DELETE FROM items WHERE length(sku) = 5;
DELETE FROM items WHERE _id LIKE 'm%' RETURNING _id, qty;

-- UPDATE and DELETE need an _id column; changes tables take no writes
CREATE FOREIGN TABLE items_noid (sku text) SERVER writes_srv OPTIONS (collection 'items');
DELETE FROM items_noid;
INSERT INTO items_noid VALUES ('noid') ;
SELECT count(*) FROM items WHERE sku = 'noid';
CREATE FOREIGN TABLE items_changes (operation_type text)
  SERVER writes_srv OPTIONS (changes 'true', collection 'items');
INSERT INTO items_changes VALUES ('insert');
DELETE FROM items_changes;

-- options
ALTER FOREIGN TABLE items OPTIONS (ADD transactions 'maybe');
ALTER FOREIGN TABLE items ALTER COLUMN sku OPTIONS (ADD bson_type 'objectid2');
ALTER FOREIGN TABLE items ALTER COLUMN qty OPTIONS (ADD bson_type 'double');
INSERT INTO items (_id, qty) VALUES ('o1', 1);
ALTER FOREIGN TABLE items ALTER COLUMN qty OPTIONS (DROP bson_type);

DROP SERVER writes_srv CASCADE;

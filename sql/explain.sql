--
-- EXPLAIN: the collection always; with VERBOSE the exact pipeline sent;
-- with ANALYZE the documents, batches (round trips) and bytes received.
--
\! /usr/bin/python3 test/fixtures/load.py explain
\getenv uri QLEAF_MONGODB_URI

CREATE SERVER explain_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_explain');
CREATE USER MAPPING FOR CURRENT_USER SERVER explain_srv;
CREATE FOREIGN TABLE items (
  _id   int,
  name  text,
  price numeric,
  color text OPTIONS (field 'detail.color'),
  size  int OPTIONS (field 'detail.size'),
  doc   jsonb OPTIONS (field '$$ROOT')
) SERVER explain_srv;

EXPLAIN (COSTS OFF) SELECT * FROM items;

-- the projection holds exactly the fields the query reads, and _id
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM items;
EXPLAIN (VERBOSE, COSTS OFF) SELECT name FROM items;
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM items;
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FROM items;
EXPLAIN (VERBOSE, COSTS OFF) SELECT doc->>'name' FROM items;
EXPLAIN (VERBOSE, COSTS OFF) SELECT i FROM items i;
-- columns read only by a local condition are fetched too
EXPLAIN (VERBOSE, COSTS OFF) SELECT name FROM items WHERE color = 'red';
EXPLAIN (VERBOSE, COSTS OFF)
SELECT name FROM items WHERE size > 2 ORDER BY price;
-- a sub-select on the same collection
EXPLAIN (VERBOSE, COSTS OFF)
SELECT name FROM items WHERE _id IN (SELECT size FROM items);

-- two columns mapped to _id share it
CREATE FOREIGN TABLE items_ids (
  id  int OPTIONS (field '_id'),
  id2 bigint OPTIONS (field '_id'),
  name text
) SERVER explain_srv OPTIONS (collection 'items');
EXPLAIN (VERBOSE, COSTS OFF) SELECT id, id2 FROM items_ids;
SELECT id, id2, name FROM items_ids WHERE id < 3 ORDER BY id;

-- other formats
EXPLAIN (VERBOSE, COSTS OFF, FORMAT JSON) SELECT name, color FROM items;
EXPLAIN (VERBOSE, COSTS OFF, FORMAT YAML) SELECT name FROM items;

-- EXPLAIN ANALYZE; the reply size depends on the server, so it is shown
-- only as zero or positive
CREATE FUNCTION explain_analyze(query text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
  ln text;
BEGIN
  FOR ln IN EXECUTE
    'EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || query
  LOOP
    IF ln ~ 'Bytes Received: \d+$' THEN
      ln := regexp_replace(ln, '\d+$',
        CASE WHEN substring(ln FROM '\d+$')::bigint > 0
             THEN 'positive' ELSE 'zero' END);
    END IF;
    RETURN NEXT ln;
  END LOOP;
END
$$;
-- the bytes received by a scan, summed over its loops
CREATE FUNCTION explain_bytes(query text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  ln text;
  total bigint := 0;
BEGIN
  FOR ln IN EXECUTE
    'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || query
  LOOP
    IF ln ~ 'Bytes Received: \d+$' THEN
      total := total + substring(ln FROM '\d+$')::bigint;
    END IF;
  END LOOP;
  RETURN total;
END
$$;

SELECT explain_analyze('SELECT name FROM items');
-- 25 documents in batches of 10: three round trips
ALTER FOREIGN TABLE items OPTIONS (ADD batch_size '10');
SELECT explain_analyze('SELECT name FROM items');
-- documents removed by a local filter were still received
SELECT explain_analyze('SELECT name FROM items WHERE size = 0');
-- LIMIT stops the scan early: one batch is enough
SELECT explain_analyze('SELECT name FROM items LIMIT 3');
-- counts add up over the loops of a rescanned scan
CREATE TABLE picks (k int);
INSERT INTO picks VALUES (1), (2), (3);
SELECT explain_analyze('SELECT p.k, (SELECT i.name FROM items i WHERE i._id = p.k) FROM picks p');
ALTER FOREIGN TABLE items OPTIONS (DROP batch_size);
-- fetching fewer fields moves fewer bytes
SELECT explain_bytes('SELECT _id FROM items') <
       explain_bytes('SELECT name FROM items') AS fewer,
       explain_bytes('SELECT name FROM items') <
       explain_bytes('SELECT * FROM items') AS fewer_still;

DROP TABLE picks;
DROP FUNCTION explain_analyze(text), explain_bytes(text);
DROP SERVER explain_srv CASCADE;

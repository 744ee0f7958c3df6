--
-- Scans: column mapping (nested fields, the whole document, missing
-- fields), batches, rescans in nested loops, cursors, large documents.
--
\! /usr/bin/python3 test/fixtures/load.py scan
\getenv uri QLEAF_MONGODB_URI

CREATE SERVER scan_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_scan');
CREATE USER MAPPING FOR CURRENT_USER SERVER scan_srv;

CREATE FOREIGN TABLE people (
  _id     int,
  name    text,
  age     int,
  city    text OPTIONS (field 'address.city'),
  lat     float8 OPTIONS (field 'address.geo.lat'),
  tags    text[],
  prenom  text OPTIONS (field 'prénom'),
  bottom  text OPTIONS (field 'nest.l0.l1.l2.l3.l4.l5.l6.l7.l8.l9.l10.l11.l12.l13.l14.l15.l16.l17.l18.l19'),
  nothing text OPTIONS (field 'no.such.field')
) SERVER scan_srv;

-- every column; missing fields and BSON nulls are NULL
SELECT * FROM people ORDER BY _id;

-- a path through a null, a string or a missing document is missing
SELECT _id, city IS NULL AS no_city, lat IS NULL AS no_lat
FROM people ORDER BY _id;

-- empty strings stay empty strings, not NULL
SELECT _id, name = '' AS empty_name, city = '' AS empty_city
FROM people WHERE _id = 5;

-- only some columns; quals and expressions on them
SELECT name, age + 1 AS next_age FROM people WHERE age > 30 ORDER BY name;
SELECT count(*) FROM people;
SELECT count(*) FROM people WHERE nothing IS NULL;

-- the whole document as jsonb
CREATE FOREIGN TABLE people_docs (
  _id int,
  doc jsonb OPTIONS (field '$$ROOT')
) SERVER scan_srv OPTIONS (collection 'people');
SELECT _id, doc->'address'->>'city' AS city, doc->'tags' AS tags,
       doc ? 'age' AS has_age
FROM people_docs ORDER BY _id;
SELECT doc FROM people_docs WHERE _id = 2;
-- json works too
CREATE FOREIGN TABLE people_json (doc json OPTIONS (field '$$ROOT'))
  SERVER scan_srv OPTIONS (collection 'people');
SELECT doc->>'name' AS name FROM people_json ORDER BY 1;

-- the collection defaults to the table's name; a missing collection is empty
CREATE FOREIGN TABLE numbers (_id int, n int, sq bigint) SERVER scan_srv;
CREATE FOREIGN TABLE nowhere (_id int) SERVER scan_srv;
SELECT count(*), sum(n), sum(sq) FROM numbers;
SELECT * FROM nowhere;

-- batches: every batch size gives every row
ALTER FOREIGN TABLE numbers OPTIONS (ADD batch_size '1');
SELECT count(*), sum(sq) FROM numbers;
ALTER FOREIGN TABLE numbers OPTIONS (SET batch_size '7');
SELECT count(*), sum(sq) FROM numbers;
ALTER FOREIGN TABLE numbers OPTIONS (DROP batch_size);
SET qleaf_fdw.batch_size = 4;
SELECT count(*), sum(sq) FROM numbers;
RESET qleaf_fdw.batch_size;
-- a server-wide batch size, overridden by the table's
ALTER SERVER scan_srv OPTIONS (ADD batch_size '3');
SELECT count(*), sum(sq) FROM numbers;
ALTER SERVER scan_srv OPTIONS (DROP batch_size);

-- rescans: a foreign scan on the inner side of a nested loop runs its
-- pipeline again for each outer row
CREATE TABLE picks (k int);
INSERT INTO picks VALUES (2), (5), (11), (30);
SET enable_hashjoin = off;
SET enable_mergejoin = off;
SET enable_material = off;
SELECT p.k, n.sq FROM picks p JOIN numbers n ON n.n = p.k ORDER BY p.k;
-- a rescan after a partial read (LIMIT stops the inner scan early)
SELECT p.k, (SELECT n.n FROM numbers n WHERE n.n >= p.k ORDER BY n.n LIMIT 1)
FROM picks p ORDER BY p.k;
EXPLAIN (COSTS OFF)
SELECT p.k, l.n FROM picks p,
  LATERAL (SELECT n FROM numbers n WHERE n.n > p.k LIMIT 2) l
ORDER BY p.k, l.n;
SELECT p.k, l.n FROM picks p,
  LATERAL (SELECT n FROM numbers n WHERE n.n > p.k LIMIT 2) l
ORDER BY p.k, l.n;
-- a self-join: two scans of one collection at once on one connection
SELECT count(*) FROM numbers a JOIN numbers b ON a.n = b.n + 1;
RESET enable_hashjoin;
RESET enable_mergejoin;
RESET enable_material;

-- cursors: fetch a few rows, then more; a scroll cursor goes back
BEGIN;
SET LOCAL qleaf_fdw.batch_size = 3;
DECLARE c CURSOR FOR SELECT n FROM numbers;
FETCH 4 FROM c;
FETCH 4 FROM c;
CLOSE c;
DECLARE s SCROLL CURSOR FOR SELECT n FROM numbers;
FETCH 5 FROM s;
FETCH FIRST FROM s;
FETCH LAST FROM s;
FETCH ABSOLUTE 10 FROM s;
COMMIT;
-- two cursors interleaved on the same connection
BEGIN;
SET LOCAL qleaf_fdw.batch_size = 2;
DECLARE c1 CURSOR FOR SELECT n FROM numbers;
DECLARE c2 CURSOR FOR SELECT sq FROM numbers;
FETCH 3 FROM c1;
FETCH 3 FROM c2;
FETCH 3 FROM c1;
FETCH 3 FROM c2;
COMMIT;

-- a document of 15 MB
CREATE FOREIGN TABLE big (_id int, blob text, n int) SERVER scan_srv;
SELECT _id, length(blob), n FROM big;
SELECT n FROM big;
CREATE FOREIGN TABLE big_doc (doc jsonb OPTIONS (field '$$ROOT'))
  SERVER scan_srv OPTIONS (collection 'big');
SELECT length(doc->>'blob') FROM big_doc;

-- the same rows as a local copy
CREATE TABLE numbers_local AS SELECT * FROM numbers;
SELECT count(*) FROM (
  (SELECT * FROM numbers EXCEPT ALL SELECT * FROM numbers_local)
  UNION ALL
  (SELECT * FROM numbers_local EXCEPT ALL SELECT * FROM numbers)) d;

-- ANALYZE samples with $sample and then plans from the statistics
ANALYZE numbers;
SELECT reltuples FROM pg_class WHERE relname = 'numbers';
SELECT attname, null_frac, n_distinct FROM pg_stats
WHERE tablename = 'numbers' ORDER BY attname;

DROP TABLE picks, numbers_local;
DROP SERVER scan_srv CASCADE;

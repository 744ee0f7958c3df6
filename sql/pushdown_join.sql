--
-- Join pushdown: an INNER or LEFT join of two foreign tables of the same
-- server, user mapping and database runs in MongoDB as one pipeline with
-- $lookup when its condition is an equality MongoDB evaluates as SQL does.
-- Each case shows its plan and checks its rows against the same query on
-- local heap copies of the tables and with pushdown off.  A join that
-- stays local says why in the scans of its tables (Local Join Reasons).
--
\! /usr/bin/python3 test/fixtures/load.py pushdown_join
\getenv uri QLEAF_MONGODB_URI
SET extra_float_digits = 0;

CREATE SERVER join_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_pushdown_join');
CREATE USER MAPPING FOR CURRENT_USER SERVER join_srv;
CREATE SERVER join_srv2 FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_pushdown_join');
CREATE USER MAPPING FOR CURRENT_USER SERVER join_srv2;

CREATE FOREIGN TABLE l (
  _id int, i bigint, n numeric, s text, b boolean,
  k bigint OPTIONS (field 'nest.k'), v text
) SERVER join_srv OPTIONS (collection 'l');
CREATE FOREIGN TABLE r (
  _id int, i bigint, n numeric, s text, b boolean,
  k bigint OPTIONS (field 'nest.k'), v text
) SERVER join_srv OPTIONS (collection 'r');
-- the same collection with other column types
CREATE FOREIGN TABLE r4 (_id int, i integer OPTIONS (field '_id'), n float8,
  s varchar(30), sc text OPTIONS (field 's') COLLATE "C")
  SERVER join_srv OPTIONS (collection 'r');
-- r on another server, and in another database
CREATE FOREIGN TABLE r_srv2 (_id int, i bigint) SERVER join_srv2 OPTIONS (collection 'r');
CREATE FOREIGN TABLE r_db2 (_id int, i bigint)
  SERVER join_srv OPTIONS (collection 'r', database 'qleaf_regress_pushdown_join2');
-- keys of every type, values that do not fit read as NULL
CREATE FOREIGN TABLE arr (_id int, i bigint, s text, d jsonb OPTIONS (field 's'))
  SERVER join_srv OPTIONS (collection 'arr', on_conversion_error 'null');
CREATE FOREIGN TABLE arr_strict (_id int, i bigint)
  SERVER join_srv OPTIONS (collection 'arr');
CREATE FOREIGN TABLE w1 (_id int, k int, m int, flag boolean, v text)
  SERVER join_srv OPTIONS (collection 'w');
CREATE FOREIGN TABLE w2 (_id int, k int, m int, flag boolean, v text)
  SERVER join_srv OPTIONS (collection 'w');
CREATE FOREIGN TABLE l_changes (operation_type text, _id int OPTIONS (field 'documentKey._id'))
  SERVER join_srv OPTIONS (changes 'true', collection 'l');

-- heap copies under the same names, in schema heap
CREATE SCHEMA heap;
CREATE TABLE heap.l AS SELECT * FROM l;
CREATE TABLE heap.r AS SELECT * FROM r;
CREATE TABLE heap.r4 AS SELECT * FROM r4;
CREATE TABLE heap.arr AS SELECT * FROM arr;

-- the rows of query q (on l, r, r4, arr): how many, and whether they are
-- those of the heap copies and of the query with pushdown off
CREATE FUNCTION check_join(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  got text[];
  want text[];
  unpushed text[];
BEGIN
  EXECUTE format('SELECT coalesce(array_agg(t::text ORDER BY t::text), ''{}'') FROM (%s) t', q) INTO got;
  SET LOCAL qleaf_fdw.enable_pushdown = off;
  EXECUTE format('SELECT coalesce(array_agg(t::text ORDER BY t::text), ''{}'') FROM (%s) t', q) INTO unpushed;
  SET LOCAL qleaf_fdw.enable_pushdown = on;
  SET LOCAL search_path = heap, public;
  EXECUTE format('SELECT coalesce(array_agg(t::text ORDER BY t::text), ''{}'') FROM (%s) t', q) INTO want;
  SET LOCAL search_path = public;
  IF got = want AND got = unpushed THEN
    RETURN format('%s rows, same as local and unpushed', cardinality(got));
  END IF;
  RETURN format('MISMATCH pushed %s local %s unpushed %s', got, want, unpushed);
END $$;

SHOW qleaf_fdw.enable_join_pushdown;

-- ==== pushed: INNER and LEFT, each key type ====

-- integers: int, long, integral double and decimal compare by value;
-- null and missing keys join nothing
EXPLAIN (VERBOSE, COSTS OFF)
SELECT l._id, r._id FROM l JOIN r ON l.i = r.i;
SELECT check_join('SELECT l._id, r._id, l.i FROM l JOIN r ON l.i = r.i');
SELECT l._id, l.i, r._id FROM l JOIN r ON l.i = r.i ORDER BY 1, 3;

EXPLAIN (VERBOSE, COSTS OFF)
SELECT l._id, r._id FROM l LEFT JOIN r ON l.i = r.i;
SELECT check_join('SELECT l._id, r._id, r.v FROM l LEFT JOIN r ON l.i = r.i');
SELECT l._id, l.i, r._id FROM l LEFT JOIN r ON l.i = r.i ORDER BY 1, 3;

-- a RIGHT join is a LEFT join with the sides swapped
EXPLAIN (VERBOSE, COSTS OFF)
SELECT l._id, r._id FROM l RIGHT JOIN r ON l.i = r.i;
SELECT check_join('SELECT l._id, r._id FROM l RIGHT JOIN r ON l.i = r.i');

-- numeric: a double compares with a decimal by its exact value (0.1 is
-- not 0.1), NaN equals NaN, 1.50 equals 1.5
EXPLAIN (VERBOSE, COSTS OFF)
SELECT l._id, r._id FROM l JOIN r ON l.n = r.n;
SELECT check_join('SELECT l._id, r._id, l.n FROM l JOIN r ON l.n = r.n');
SELECT check_join('SELECT l._id, r._id, r.n FROM l LEFT JOIN r ON l.n = r.n');

-- integer with numeric: the integer is widened
EXPLAIN (VERBOSE, COSTS OFF)
SELECT l._id, r._id FROM l JOIN r ON l.i = r.n;
SELECT check_join('SELECT l._id, r._id FROM l JOIN r ON l.i = r.n');

-- bigint with integer
EXPLAIN (VERBOSE, COSTS OFF)
SELECT l._id, r4._id FROM l JOIN r4 ON l.i = r4.i;
SELECT check_join('SELECT l._id, r4._id FROM l JOIN r4 ON l.i = r4.i');

-- text: byte equality under a deterministic collation; an ObjectId is
-- its hex text, so it joins the string of the same 24 digits
EXPLAIN (VERBOSE, COSTS OFF)
SELECT l._id, r._id FROM l JOIN r ON l.s = r.s;
SELECT check_join('SELECT l._id, r._id, l.s FROM l JOIN r ON l.s = r.s');
SELECT l.s, count(*) FROM l JOIN r ON l.s = r.s GROUP BY 1 ORDER BY l.s COLLATE "C";
SELECT check_join('SELECT l._id, r4._id FROM l LEFT JOIN r4 ON l.s = r4.sc');
SELECT check_join('SELECT l._id, r._id FROM l JOIN r ON l.s = r.s COLLATE "C"');

-- boolean
EXPLAIN (VERBOSE, COSTS OFF)
SELECT l._id, r._id FROM l LEFT JOIN r ON l.b = r.b WHERE l._id < 3;
SELECT check_join('SELECT l._id, r._id FROM l LEFT JOIN r ON l.b = r.b WHERE l._id < 3');
-- without that condition, the join has more rows than the tables have
-- documents: it stays local
EXPLAIN (COSTS OFF)
SELECT l._id, r._id FROM l LEFT JOIN r ON l.b = r.b;
SELECT check_join('SELECT l._id, r._id FROM l LEFT JOIN r ON l.b = r.b');

-- a nested field, and two keys
EXPLAIN (VERBOSE, COSTS OFF)
SELECT l._id, r._id FROM l JOIN r ON l.k = r.i AND l.b = r.b;
SELECT check_join('SELECT l._id, r._id FROM l JOIN r ON l.k = r.i AND l.b = r.b');

-- each side's conditions: the outer's before $lookup, the inner's in its
-- pipeline; an ON condition on the inner table of a LEFT join too
EXPLAIN (VERBOSE, COSTS OFF)
SELECT l._id, r._id FROM l JOIN r ON l.i = r.i WHERE l.s IN ('a', 'b') AND r.n > 1;
SELECT check_join('SELECT l._id, r._id FROM l JOIN r ON l.i = r.i WHERE l.s IN (''a'', ''b'') AND r.n > 1');
EXPLAIN (VERBOSE, COSTS OFF)
SELECT l._id, r._id FROM l LEFT JOIN r ON l.i = r.i AND r.b WHERE l._id < 12;
SELECT check_join('SELECT l._id, r._id FROM l LEFT JOIN r ON l.i = r.i AND r.b WHERE l._id < 12');

-- what MongoDB does not evaluate is checked on the joined rows: another
-- condition of an INNER join, a filter above a LEFT join, the outer
-- table's local conditions
EXPLAIN (VERBOSE, COSTS OFF)
SELECT l._id, r._id FROM l JOIN r ON l.i = r.i AND l.v < r.v;
SELECT check_join('SELECT l._id, r._id FROM l JOIN r ON l.i = r.i AND l.v < r.v');
EXPLAIN (VERBOSE, COSTS OFF)
SELECT l._id, r._id FROM l LEFT JOIN r ON l.i = r.i WHERE coalesce(r.v, 'x') ILIKE 'V%';
SELECT check_join('SELECT l._id, r._id FROM l LEFT JOIN r ON l.i = r.i WHERE coalesce(r.v, ''x'') ILIKE ''V%''');
EXPLAIN (VERBOSE, COSTS OFF)
SELECT l._id, r._id FROM l LEFT JOIN r ON l.i = r.i WHERE r.v IS NULL OR l.v ILIKE 'V1%';
SELECT check_join('SELECT l._id, r._id FROM l LEFT JOIN r ON l.i = r.i WHERE r.v IS NULL OR l.v ILIKE ''V1%''');
EXPLAIN (VERBOSE, COSTS OFF)
SELECT l._id, r._id FROM l LEFT JOIN r ON l.i = r.i WHERE l.v ~ '^v1';
SELECT check_join('SELECT l._id, r._id FROM l LEFT JOIN r ON l.i = r.i WHERE l.v ~ ''^v1''');

-- parameters in either side's conditions
PREPARE pj(bigint, text) AS
  SELECT l._id, r._id FROM l JOIN r ON l.s = r.s WHERE l.i <> $1 AND r.v <> $2 ORDER BY 1, 2;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE pj(1, 'v3');
EXECUTE pj(1, 'v3');
SET search_path = heap, public;
SELECT l._id, r._id FROM l JOIN r ON l.s = r.s WHERE l.i <> 1 AND r.v <> 'v3' ORDER BY 1, 2;
RESET search_path;
DEALLOCATE pj;

-- keys that are arrays, documents, strings in a number field: with
-- on_conversion_error 'null' they are NULL and join nothing
EXPLAIN (VERBOSE, COSTS OFF)
SELECT arr._id, r._id FROM arr LEFT JOIN r ON arr.s = r.s;
SELECT check_join('SELECT arr._id, r._id FROM arr LEFT JOIN r ON arr.s = r.s');
SELECT check_join('SELECT arr._id, l._id FROM l JOIN arr ON arr.s = l.s');
-- read strictly, a key that does not fit is an error when its document
-- is sent, as without pushdown (LEFT: every outer document is sent); as
-- with WHERE pushdown, a document the join leaves out raises none
SELECT arr_strict._id, l._id FROM arr_strict LEFT JOIN l ON arr_strict.i = l.i;
SET qleaf_fdw.enable_pushdown = off;
SELECT arr_strict._id, l._id FROM arr_strict LEFT JOIN l ON arr_strict.i = l.i;
RESET qleaf_fdw.enable_pushdown;
SELECT arr_strict._id, l._id FROM arr_strict JOIN l ON arr_strict.i = l.i ORDER BY 1, 2;

-- a third table: two of them join in MongoDB, the third in PostgreSQL
EXPLAIN (VERBOSE, COSTS OFF)
SELECT l._id, r._id, r4._id FROM l JOIN r ON l.i = r.i JOIN r4 ON r4._id = l._id;
SELECT check_join('SELECT l._id, r._id, r4._id FROM l JOIN r ON l.i = r.i JOIN r4 ON r4._id = l._id');

-- ==== costs: pushed when it is cheaper ====

-- one-to-one on an indexed field: 1,000 rows sent instead of 2,000
-- documents, each lookup reads one document
ANALYZE w1;
ANALYZE w2;
-- (not run here: the stand-in has no indexes, each of its lookups reads
-- the whole collection)
EXPLAIN (COSTS OFF) SELECT count(*) FROM w1 JOIN w2 ON w1.k = w2.k;
-- the same on a field without an index: each lookup would read the whole
-- collection
EXPLAIN (COSTS OFF) SELECT count(*) FROM w1 JOIN w2 ON w1.m = w2.m;
SELECT count(*) FROM w1 JOIN w2 ON w1.m = w2.m;
-- few outer documents: a lookup each is cheap even without an index
EXPLAIN (COSTS OFF) SELECT count(*) FROM w1 JOIN w2 ON w1.m = w2.m WHERE w1._id < 5;
SELECT count(*) FROM w1 JOIN w2 ON w1.m = w2.m WHERE w1._id < 5;
-- every row of w1 joins 500 of w2: 500,000 rows against 2,000 documents
EXPLAIN (COSTS OFF) SELECT count(*) FROM w1 JOIN w2 ON w1.flag = w2.flag;
SELECT count(*) FROM w1 JOIN w2 ON w1.flag = w2.flag;

-- ==== local joins, and why ====

-- an expression, not a column
EXPLAIN (VERBOSE, COSTS OFF) SELECT l._id, r._id FROM l JOIN r ON l.i + 1 = r.i;
-- not an equality
EXPLAIN (VERBOSE, COSTS OFF) SELECT l._id, r._id FROM l JOIN r ON l.i < r.i;
-- types whose values MongoDB compares otherwise
EXPLAIN (VERBOSE, COSTS OFF) SELECT a._id, b._id FROM r4 a JOIN r4 b ON a.n = b.n;
EXPLAIN (VERBOSE, COSTS OFF) SELECT l._id, r4._id FROM l JOIN r4 ON l.s = r4.s;
EXPLAIN (VERBOSE, COSTS OFF) SELECT arr._id, r._id FROM arr JOIN r ON arr.i = r.i;
EXPLAIN (VERBOSE, COSTS OFF) SELECT arr._id, r._id FROM arr JOIN r ON arr.d = to_jsonb(r.s);
-- a condition of a LEFT join that MongoDB cannot evaluate
EXPLAIN (VERBOSE, COSTS OFF) SELECT l._id, r._id FROM l LEFT JOIN r ON l.i = r.i AND l.v < r.v;
-- a local condition on the inner table of a LEFT join
EXPLAIN (VERBOSE, COSTS OFF)
SELECT l._id, r._id FROM l LEFT JOIN (SELECT * FROM r WHERE r.v ~ '^v') r ON l.i = r.i;
SELECT check_join('SELECT l._id, r._id FROM l LEFT JOIN (SELECT * FROM r WHERE r.v ~ ''^v'') r ON l.i = r.i');
-- FULL, SEMI and ANTI joins
EXPLAIN (VERBOSE, COSTS OFF) SELECT l._id, r._id FROM l FULL JOIN r ON l.i = r.i;
EXPLAIN (VERBOSE, COSTS OFF) SELECT l._id FROM l WHERE EXISTS (SELECT FROM r WHERE r.i = l.i);
EXPLAIN (VERBOSE, COSTS OFF) SELECT l._id FROM l WHERE NOT EXISTS (SELECT FROM r WHERE r.i = l.i);
-- another database
EXPLAIN (VERBOSE, COSTS OFF) SELECT l._id, r_db2._id FROM l JOIN r_db2 ON l.i = r_db2.i;
-- a changes table
EXPLAIN (VERBOSE, COSTS OFF) SELECT l._id FROM l JOIN l_changes c ON c._id = l._id;
-- a whole row
EXPLAIN (VERBOSE, COSTS OFF) SELECT l, r._id FROM l JOIN r ON l.i = r.i;
-- rows locked: each table needs its own scan
EXPLAIN (VERBOSE, COSTS OFF) SELECT l._id, r._id FROM l JOIN r ON l.i = r.i FOR UPDATE;
-- writing the joined rows elsewhere is a plain read of the tables
CREATE TABLE heap.joined (l_id int, r_id int);
EXPLAIN (VERBOSE, COSTS OFF) INSERT INTO heap.joined SELECT l._id, r._id FROM l JOIN r ON l.i = r.i;
INSERT INTO heap.joined SELECT l._id, r._id FROM l JOIN r ON l.i = r.i;
SELECT count(*) FROM heap.joined;
-- the settings
SET qleaf_fdw.enable_join_pushdown = off;
EXPLAIN (VERBOSE, COSTS OFF) SELECT l._id, r._id FROM l JOIN r ON l.i = r.i;
RESET qleaf_fdw.enable_join_pushdown;
SET qleaf_fdw.enable_pushdown = off;
EXPLAIN (VERBOSE, COSTS OFF) SELECT l._id, r._id FROM l JOIN r ON l.i = r.i;
RESET qleaf_fdw.enable_pushdown;
-- a nondeterministic collation
CREATE COLLATION join_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
EXPLAIN (VERBOSE, COSTS OFF) SELECT l._id, r._id FROM l JOIN r ON l.s = r.s COLLATE join_ci;
SELECT check_join('SELECT l._id, r._id FROM l JOIN r ON l.s = r.s COLLATE join_ci');
-- another user mapping: r read through a view owned by another role;
-- PostgreSQL offers the wrapper no join of tables read as different users
CREATE ROLE regress_join_other;
CREATE USER MAPPING FOR regress_join_other SERVER join_srv OPTIONS (password_required 'false');
GRANT SELECT ON r TO regress_join_other;
CREATE VIEW r_other AS SELECT * FROM r;
ALTER VIEW r_other OWNER TO regress_join_other;
EXPLAIN (VERBOSE, COSTS OFF) SELECT l._id, r_other._id FROM l JOIN r_other ON l.i = r_other.i;
-- another server: PostgreSQL does not offer the join to the wrapper
EXPLAIN (VERBOSE, COSTS OFF) SELECT l._id, r_srv2._id FROM l JOIN r_srv2 ON l.i = r_srv2.i;
SELECT check_join('SELECT l._id, r._id FROM l FULL JOIN r ON l.i = r.i');
SELECT check_join('SELECT l._id, r._id FROM l LEFT JOIN r ON l.i = r.i AND l.v < r.v');

DROP VIEW r_other;
DROP COLLATION join_ci;
DROP SCHEMA heap CASCADE;
DROP SERVER join_srv CASCADE;
DROP SERVER join_srv2 CASCADE;
DROP ROLE regress_join_other;

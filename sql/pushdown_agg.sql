--
-- Aggregate pushdown: a query on one foreign table whose conditions all
-- ship exactly gets a $group when every aggregate and grouping column
-- has a MongoDB form that gives PostgreSQL's answer.  Every case shows its
-- decision and checks its result against a local heap copy and against
-- pushdown off.
--
\! /usr/bin/python3 test/fixtures/load.py upper
\getenv uri QLEAF_MONGODB_URI
SET extra_float_digits = 0;
SET timezone = 'UTC';
-- names of their own: other test files have tables "t" and "mixed"
CREATE SCHEMA pushdown_agg;
SET search_path = pushdown_agg, public;

CREATE SERVER agg_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_upper');
CREATE USER MAPPING FOR CURRENT_USER SERVER agg_srv;

CREATE FOREIGN TABLE t (
  _id  int,
  i    bigint,
  s    text,
  sv   varchar OPTIONS (field 's'),
  sci  text OPTIONS (field 's') COLLATE "und-x-icu",
  b    boolean,
  n    numeric,
  f    float8,
  ts   timestamptz,
  j    jsonb,
  g    smallint,
  g4   integer OPTIONS (field 'g'),
  k    bigint,
  x    bigint OPTIONS (field 'nest.x'),
  doc  jsonb OPTIONS (field '$$ROOT')
) SERVER agg_srv OPTIONS (collection 't');

CREATE FOREIGN TABLE mixed (_id int, i bigint, s text, b boolean)
  SERVER agg_srv OPTIONS (collection 'mixed', on_conversion_error 'null');
CREATE FOREIGN TABLE empty (_id int, i bigint, s text, b boolean)
  SERVER agg_srv OPTIONS (collection 'empty');

CREATE TABLE local_t AS SELECT * FROM t;
CREATE TABLE local_mixed AS SELECT * FROM mixed;
CREATE TABLE local_empty AS SELECT * FROM empty;

CREATE FUNCTION rows_of(q text) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
  r record;
  out text[] := '{}';
BEGIN
  FOR r IN EXECUTE q LOOP
    out := out || r::text;
  END LOOP;
  RETURN out;
END $$;

-- q (with {T} for the table) gives the same rows in the same order on the
-- foreign table, with pushdown off and on the local copy; the rows
CREATE FUNCTION same(q text, tbl text DEFAULT 't') RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  got text[];
  want text[];
  unpushed text[];
BEGIN
  got := rows_of(replace(q, '{T}', tbl));
  want := rows_of(replace(q, '{T}', 'local_' || tbl));
  PERFORM set_config('qleaf_fdw.enable_pushdown', 'off', true);
  unpushed := rows_of(replace(q, '{T}', tbl));
  PERFORM set_config('qleaf_fdw.enable_pushdown', 'on', true);
  IF got = want AND got = unpushed THEN
    RETURN array_to_string(got, ' ');
  END IF;
  RETURN format('DIFFERENT: pushed %s local %s unpushed %s', got, want, unpushed);
END $$;

-- whether the plan of q groups in MongoDB, or why not
CREATE FUNCTION decision(q text, tbl text DEFAULT 't') RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  line text;
  grouped bool := false;
  kept text := '';
  local_agg bool := false;
  having_local bool := false;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || replace(q, '{T}', tbl) LOOP
    IF line ~ '^\s*Pipeline: .*"\$group"' THEN
      grouped := true;
    ELSIF line ~ '^\s*Kept Local: ' THEN
      kept := regexp_replace(line, '^\s*Kept Local: ', '');
    ELSIF line ~ '^\s*(->\s*)?(Aggregate|HashAggregate|GroupAggregate|MixedAggregate)\s*$' THEN
      local_agg := true;
    ELSIF line ~ 'Local Filter Reasons: HAVING' THEN
      having_local := true;
    END IF;
  END LOOP;
  RETURN CASE WHEN grouped AND NOT local_agg THEN '$group' ELSE 'local' END ||
    CASE WHEN having_local THEN ', HAVING local' ELSE '' END ||
    CASE WHEN kept <> '' AND NOT grouped THEN ' | ' || kept ELSE '' END;
END $$;

--
-- Full plans of the main forms.
--
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FROM t;
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(s), count(DISTINCT s), min(s), max(s) FROM t;
EXPLAIN (VERBOSE, COSTS OFF) SELECT sum(i), avg(i) FROM t WHERE b;
EXPLAIN (VERBOSE, COSTS OFF) SELECT g, count(*), max(i) FROM t GROUP BY g;
EXPLAIN (VERBOSE, COSTS OFF) SELECT s, b, bool_and(b), bool_or(b) FROM t GROUP BY s, b;
EXPLAIN (VERBOSE, COSTS OFF) SELECT g, count(*) + 1, sum(i) * 2 FROM t GROUP BY g HAVING max(x) > 0 ORDER BY g;
EXPLAIN (VERBOSE, COSTS OFF) SELECT sum(n) FROM t;
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FROM mixed;
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(i) FROM mixed;
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FROM t WHERE ts > '2020-01-01';

--
-- Each aggregate over each column: the decision and the result.
--
SELECT a AS aggregate, c AS "column",
       decision(format('SELECT %s(%s) FROM {T}', a, c)) AS decision,
       same(format('SELECT %s(%s) FROM {T}', a, c)) AS result
FROM unnest(ARRAY['count', 'sum', 'avg', 'min', 'max']) WITH ORDINALITY AS a(a, ao),
     unnest(ARRAY['_id', 'i', 's', 'sv', 'sci', 'b', 'n', 'f', 'ts', 'j', 'g', 'g4', 'k', 'x', 'doc'])
       WITH ORDINALITY AS c(c, co)
WHERE (a IN ('count') OR c NOT IN ('b', 'j', 'doc'))
  AND (a NOT IN ('sum', 'avg') OR c NOT IN ('s', 'sv', 'sci', 'ts'))
ORDER BY ao, co;

SELECT c AS "column",
       decision(format('SELECT count(DISTINCT %s) FROM {T}', c)) AS decision,
       same(format('SELECT count(DISTINCT %s) FROM {T}', c)) AS result
FROM unnest(ARRAY['_id', 'i', 's', 'sv', 'sci', 'b', 'n', 'f', 'ts', 'j', 'g', 'g4', 'k', 'x'])
  WITH ORDINALITY AS c(c, co)
ORDER BY co;

SELECT q, decision(q), same(q) FROM unnest(ARRAY[
  'SELECT bool_and(b), bool_or(b), every(b) FROM {T}',
  'SELECT bool_and(b), bool_or(b) FROM {T} WHERE b',
  'SELECT bool_and(b), bool_or(b) FROM {T} WHERE b IS NULL',
  'SELECT min(s COLLATE "C"), max(s COLLATE "POSIX") FROM {T}',
  'SELECT min(s COLLATE "und-x-icu") FROM {T}',
  'SELECT min(sci COLLATE "C") FROM {T}',
  'SELECT sum(k), avg(k), min(k), max(k), count(DISTINCT k) FROM {T}',
  'SELECT sum(g), avg(g), sum(g4), avg(g4) FROM {T}',
  'SELECT count(*), count(x), sum(x), avg(x), min(x), max(x) FROM {T}',
  'SELECT count(*), sum(i), avg(i), min(i), max(i), count(s), min(s) FROM {T} WHERE i IS NULL',
  'SELECT count(*), sum(i), avg(i), min(s), bool_and(b) FROM {T} WHERE _id > 100',
  'SELECT sum(i), sum(i), avg(i), count(*), count(*) FROM {T}',
  'SELECT count(*) + 1, sum(i) * 2, coalesce(max(s), ''none'') FROM {T}',
  'SELECT count(*) FROM {T} WHERE s LIKE ''a%''',
  'SELECT count(*), count(DISTINCT g) FROM {T} WHERE i IN (5, 6, 7) OR s = ''b'''
]) AS q;

-- over no document: PostgreSQL's one row, count 0 and NULLs
SELECT q, decision(q, 'empty'), same(q, 'empty') FROM unnest(ARRAY[
  'SELECT count(*) FROM {T}',
  'SELECT count(*), count(i), sum(i), avg(i), min(i), max(s), count(DISTINCT s), bool_and(b) FROM {T}',
  'SELECT count(*) FROM {T} HAVING count(*) > 0',
  'SELECT count(*) FROM {T} HAVING count(*) = 0',
  'SELECT i, count(*) FROM {T} GROUP BY i',
  'SELECT 1 FROM {T} HAVING sum(i) IS NULL'
]) AS q;

-- kept local, with the reason
SELECT q, decision(q), same(q) FROM unnest(ARRAY[
  'SELECT sum(n) FROM {T}',
  'SELECT sum(f) FROM {T}',
  'SELECT avg(n) FROM {T}',
  'SELECT max(ts) FROM {T}',
  'SELECT min(n) FROM {T}',
  'SELECT max(f) FROM {T}',
  'SELECT count(*) FILTER (WHERE b) FROM {T}',
  'SELECT string_agg(s, '','' ORDER BY _id) FROM {T}',
  'SELECT array_agg(_id ORDER BY _id) FROM {T}',
  'SELECT sum(i + 1) FROM {T}',
  'SELECT count(DISTINCT n) FROM {T}',
  'SELECT sum(DISTINCT i) FROM {T}',
  'SELECT count(*) FROM {T} WHERE ts > ''2020-01-01''',
  'SELECT count(*) FROM {T} WHERE sci < ''b''',
  'SELECT count(*) FROM {T} WHERE random() >= 0',
  'SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY i) FROM {T}',
  'SELECT max(i) FROM {T} GROUP BY ROLLUP (g)',
  'SELECT max(_id) FROM {T} GROUP BY g + 1 ORDER BY 1',
  'SELECT max(_id) FROM {T} GROUP BY n ORDER BY 1',
  'SELECT max(_id) FROM {T} GROUP BY f ORDER BY 1',
  'SELECT max(_id) FROM {T} GROUP BY ts ORDER BY 1',
  'SELECT max(_id) FROM {T} GROUP BY j ORDER BY 1',
  'SELECT count(*) FROM {T} GROUP BY s COLLATE "C" ORDER BY 1'
]) AS q;

SELECT q, decision(q, 'mixed'), same(q, 'mixed') FROM unnest(ARRAY[
  'SELECT count(*) FROM {T}',
  'SELECT count(i), sum(i) FROM {T}',
  'SELECT min(s) FROM {T}',
  'SELECT b, count(*) FROM {T} GROUP BY b ORDER BY b'
]) AS q;

--
-- GROUP BY: one group for null and missing; 1, 1.0, NumberLong(1) and
-- NumberDecimal("1") one group; an ObjectId and its hex text one group
--
SELECT c AS "column",
       decision(format('SELECT %s, count(*), sum(i), min(_id) FROM {T} GROUP BY %s ORDER BY 1', c, c)) AS decision,
       same(format('SELECT %s, count(*), sum(i), min(_id) FROM {T} GROUP BY %s ORDER BY 1', c, c)) AS result
FROM unnest(ARRAY['g', 'g4', 'b', 'i', 'x', 's', 'sv', 'sci', 'k', '_id'])
  WITH ORDINALITY AS c(c, co)
ORDER BY co;

SELECT q, decision(q), same(q) FROM unnest(ARRAY[
  'SELECT g, b, count(*) FROM {T} GROUP BY g, b ORDER BY 1, 2',
  'SELECT b, g, max(s), min(i), avg(x) FROM {T} GROUP BY b, g ORDER BY 1, 2',
  'SELECT count(*) FROM {T} GROUP BY g ORDER BY 1',
  'SELECT g, count(*) FROM {T} GROUP BY g HAVING count(*) > 10 ORDER BY 1',
  'SELECT g FROM {T} GROUP BY g HAVING sum(i) > 100 ORDER BY 1',
  'SELECT g, count(*) FROM {T} GROUP BY g HAVING g > 1 ORDER BY 1',
  'SELECT g, count(*) FROM {T} GROUP BY g HAVING min(n) > 0 ORDER BY 1',
  'SELECT g, count(*) FROM {T} WHERE b GROUP BY g ORDER BY 1',
  'SELECT g, count(*) FROM {T} WHERE b GROUP BY g ORDER BY 2 DESC, 1 LIMIT 2',
  'SELECT g + 1, count(*) * 2 FROM {T} GROUP BY g ORDER BY 1',
  'SELECT DISTINCT g FROM {T} ORDER BY 1',
  'SELECT g, count(DISTINCT s), count(DISTINCT i) FROM {T} GROUP BY g ORDER BY 1',
  'SELECT s, count(*) FROM {T} GROUP BY s ORDER BY 2 DESC, 1 LIMIT 3'
]) AS q;

-- parameters in the conditions below the $group
PREPARE cnt(int) AS SELECT g, count(*), sum(i) FROM t WHERE i > $1 GROUP BY g ORDER BY g;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE cnt(3);
EXECUTE cnt(3);
EXECUTE cnt(1000);
RESET plan_cache_mode;
-- an aggregate in a correlated subquery: one $group per outer row
SELECT o.g, (SELECT count(*) FROM t WHERE t.g4 = o.g) FROM (VALUES (1), (2), (3), (9)) o(g);
SELECT o.g, (SELECT count(*) FROM local_t t WHERE t.g4 = o.g) FROM (VALUES (1), (2), (3), (9)) o(g);

-- EXPLAIN ANALYZE: only the groups cross the network
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT g, count(*) FROM t GROUP BY g;

-- the settings
SET qleaf_fdw.enable_aggregate_pushdown = off;
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FROM t;
SET qleaf_fdw.enable_aggregate_pushdown = on;
SET qleaf_fdw.enable_pushdown = off;
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FROM t;
RESET qleaf_fdw.enable_pushdown;
SHOW qleaf_fdw.enable_aggregate_pushdown;

--
-- Conversion errors: a strict table over documents whose values do not
-- fit.  A scan of the table converts the values of the columns it reads
-- in the documents its $match lets through, and so does a $group: it
-- brings back the first document holding a value that does not convert,
-- whose conversion raises the error a scan raises.  Each case against the
-- same query with aggregate (and sort) pushdown off, which reads the
-- documents in the collection's order.
--
CREATE FOREIGN TABLE strict (_id int, i bigint, s text, b boolean)
  SERVER agg_srv OPTIONS (collection 'mixed');
CREATE FUNCTION outcome(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  pushed text;
  unpushed text;
BEGIN
  BEGIN
    pushed := array_to_string(rows_of(q), ' ');
  EXCEPTION WHEN OTHERS THEN
    pushed := 'error: ' || sqlerrm;
  END;
  PERFORM set_config('qleaf_fdw.enable_aggregate_pushdown', 'off', true);
  PERFORM set_config('qleaf_fdw.enable_sort_pushdown', 'off', true);
  BEGIN
    unpushed := array_to_string(rows_of(q), ' ');
  EXCEPTION WHEN OTHERS THEN
    unpushed := 'error: ' || sqlerrm;
  END;
  PERFORM set_config('qleaf_fdw.enable_aggregate_pushdown', 'on', true);
  PERFORM set_config('qleaf_fdw.enable_sort_pushdown', 'on', true);
  IF pushed = unpushed THEN
    RETURN pushed;
  END IF;
  RETURN format('DIFFERENT: pushed %s, not pushed %s', pushed, unpushed);
END $$;
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*), count(i) FROM strict WHERE _id < 10;
SELECT q, decision(q), outcome(q) FROM unnest(ARRAY[
  'SELECT count(*) FROM strict',
  'SELECT count(i) FROM strict',
  'SELECT sum(i) FROM strict',
  'SELECT count(*) FROM strict WHERE i = 5',
  'SELECT count(*) FROM strict WHERE i = 3',
  'SELECT count(s) FROM strict WHERE _id = 5',
  'SELECT min(s) FROM strict WHERE _id IN (1, 2)',
  'SELECT b, count(*) FROM strict GROUP BY b',
  'SELECT count(DISTINCT i) FROM strict WHERE _id BETWEEN 10 AND 13',
  'SELECT avg(i) FROM strict WHERE _id = 12 OR _id = 13',
  'SELECT count(*) FROM strict WHERE _id = 14'
]) AS q;
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FROM strict WHERE i = 3;
SELECT _id, i FROM strict WHERE _id IN (3, 5, 12, 13, 26) ORDER BY _id;

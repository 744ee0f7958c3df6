--
-- ORDER BY and LIMIT / OFFSET pushdown: a sorted scan gets a $sort (with
-- computed keys where MongoDB's order of nulls or ObjectIds differs from
-- PostgreSQL's), a query on one table whose conditions all ship gets
-- a $limit of LIMIT + OFFSET.  Every case shows its decision and checks its rows, in
-- order, against a local heap copy and against pushdown off.
--
\! /usr/bin/python3 test/fixtures/load.py upper
\getenv uri QLEAF_MONGODB_URI
SET extra_float_digits = 0;
SET timezone = 'UTC';
-- names of their own: other test files have tables "t" and "mixed"
CREATE SCHEMA pushdown_sort;
SET search_path = pushdown_sort, public;

CREATE SERVER upper_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_upper');
CREATE USER MAPPING FOR CURRENT_USER SERVER upper_srv;

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
) SERVER upper_srv OPTIONS (collection 't');

CREATE FOREIGN TABLE mixed (_id int, i bigint, s text, b boolean)
  SERVER upper_srv OPTIONS (collection 'mixed', on_conversion_error 'null');
CREATE FOREIGN TABLE empty (_id int, i bigint, s text, b boolean)
  SERVER upper_srv OPTIONS (collection 'empty');

CREATE TABLE local_t AS SELECT * FROM t;
CREATE TABLE local_mixed AS SELECT * FROM mixed;

-- the rows of a query, in order, as text
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

-- q (with {T} for the table, {L} for its local copy's suffix) returns the
-- same rows in the same order on the foreign table, with pushdown off and
-- on the local copy
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
    RETURN 'same ' || coalesce(array_length(got, 1), 0) || ' rows';
  END IF;
  RETURN format('DIFFERENT: pushed %s local %s unpushed %s', got, want, unpushed);
END $$;

-- what the plan of q does about ORDER BY and LIMIT: the $sort, $skip and
-- $limit stages sent, or what stays local
CREATE FUNCTION decision(q text, tbl text DEFAULT 't') RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  line text;
  stages text := '';
  kept text := '';
  local_nodes text := '';
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || replace(q, '{T}', tbl) LOOP
    IF line ~ '^\s*Pipeline: ' THEN
      stages := array_to_string(ARRAY(
        SELECT m[1] FROM regexp_matches(line, '(\{"\$(?:sort|skip|limit)": (?:\{[^}]*\}|[0-9]+)\})', 'g') m), ', ');
    ELSIF line ~ '^\s*Kept Local: ' THEN
      kept := regexp_replace(line, '^\s*Kept Local: ', '');
    ELSIF line ~ '^\s*(->\s*)?(Sort|Limit|Incremental Sort)\s*$' THEN
      local_nodes := local_nodes || ' ' || trim(regexp_replace(line, '->', ''));
    END IF;
  END LOOP;
  RETURN CASE WHEN stages = '' THEN 'no stage' ELSE stages END ||
    CASE WHEN local_nodes <> '' THEN ' | local:' || local_nodes ELSE '' END ||
    CASE WHEN kept <> '' THEN ' | kept local: ' || kept ELSE '' END;
END $$;

--
-- Full plans of the main forms.
--
-- ASC NULLS LAST (the default): a null flag sorts null and missing last
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id, i FROM t ORDER BY i;
-- ASC NULLS FIRST is MongoDB's own order
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id, i FROM t ORDER BY i NULLS FIRST;
-- DESC NULLS FIRST (the default for DESC): the flag descending
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id, i FROM t ORDER BY i DESC;
-- DESC NULLS LAST is MongoDB's own order
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id, i FROM t ORDER BY i DESC NULLS LAST;
-- text: ObjectIds sorted by their hex text, as the column reads them
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id, s FROM t ORDER BY s, _id;
-- several keys, a nested field
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM t ORDER BY b DESC, x NULLS FIRST, _id;
-- with a shipped condition; the sort key's column is fetched for its errors
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM t WHERE i > 3 ORDER BY g, _id;
-- LIMIT and OFFSET after the sort
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id, s FROM t ORDER BY s DESC, _id LIMIT 5 OFFSET 2;
-- LIMIT without ORDER BY
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM t LIMIT 3;
-- an expression over the columns is computed by PostgreSQL above the scan
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id + 1, upper(s) FROM t ORDER BY _id LIMIT 2;
-- kept local, with the reason
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM t ORDER BY sci, _id;
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM t ORDER BY n, _id LIMIT 3;
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM mixed ORDER BY i, _id;
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM t WHERE sci > 'a' LIMIT 3;

--
-- Every column type, ASC / DESC, NULLS FIRST / LAST: the decision and the
-- rows (_id last, so that the order is total).
--
SELECT c AS "column", d AS dir, nl AS nulls,
       decision(format('SELECT _id, %s FROM {T} ORDER BY %s %s %s, _id', c, c, d, nl)) AS decision,
       same(format('SELECT _id, %s FROM {T} ORDER BY %s %s %s, _id', c, c, d, nl)) AS rows
FROM unnest(ARRAY['_id', 'i', 's', 'sv', 'b', 'g', 'g4', 'k', 'x',
                  'sci', 'n', 'f', 'ts', 'j', 'doc']) WITH ORDINALITY AS c(c, o),
     unnest(ARRAY['ASC', 'DESC']) AS d,
     unnest(ARRAY['NULLS FIRST', 'NULLS LAST']) AS nl
ORDER BY o, d, nl;

-- the same with LIMIT 7 OFFSET 3: LIMIT ships only with the sort
SELECT c AS "column", d AS dir,
       decision(format('SELECT _id, %s FROM {T} ORDER BY %s %s, _id LIMIT 7 OFFSET 3', c, c, d)) AS decision,
       same(format('SELECT _id, %s FROM {T} ORDER BY %s %s, _id LIMIT 7 OFFSET 3', c, c, d)) AS rows
FROM unnest(ARRAY['_id', 'i', 's', 'b', 'g', 'x', 'sci', 'n', 'f', 'ts', 'j']) WITH ORDINALITY AS c(c, o),
     unnest(ARRAY['ASC', 'DESC']) AS d
ORDER BY o, d;

-- collations: "C" and "POSIX" ship, others do not
SELECT q, decision(q), same(q) FROM unnest(ARRAY[
  'SELECT _id, s FROM {T} ORDER BY s COLLATE "C", _id',
  'SELECT _id, s FROM {T} ORDER BY s COLLATE "POSIX" DESC, _id',
  'SELECT _id, s FROM {T} ORDER BY s COLLATE "und-x-icu", _id',
  'SELECT _id, s FROM {T} ORDER BY sci COLLATE "C", _id',
  'SELECT _id, s FROM {T} ORDER BY s COLLATE "C" DESC NULLS LAST, _id LIMIT 4'
]) AS q;

-- expressions, operators and keys of other kinds stay local
SELECT q, decision(q), same(q) FROM unnest(ARRAY[
  'SELECT _id FROM {T} ORDER BY i + 0, _id',
  'SELECT _id FROM {T} ORDER BY lower(s), _id',
  'SELECT _id FROM {T} ORDER BY -i, _id',
  'SELECT _id FROM {T} ORDER BY j->>''a'', _id',
  'SELECT _id FROM {T} ORDER BY s USING ~<~, _id',
  'SELECT _id FROM {T} ORDER BY i USING >, _id',
  'SELECT _id FROM {T} ORDER BY random(), _id LIMIT 0',
  'SELECT _id FROM {T} ORDER BY 1 DESC',
  'SELECT _id, i FROM {T} ORDER BY 2, 1'
]) AS q;

--
-- LIMIT / OFFSET
--
SELECT q, decision(q), same(q) FROM unnest(ARRAY[
  'SELECT _id FROM {T} ORDER BY _id LIMIT 0',
  'SELECT _id FROM {T} ORDER BY _id LIMIT 1',
  'SELECT _id FROM {T} ORDER BY _id LIMIT 100',
  'SELECT _id FROM {T} ORDER BY _id LIMIT NULL',
  'SELECT _id FROM {T} ORDER BY _id LIMIT ALL OFFSET 55',
  'SELECT _id FROM {T} ORDER BY _id OFFSET 58',
  'SELECT _id FROM {T} ORDER BY _id OFFSET 0 LIMIT 2',
  'SELECT _id FROM {T} ORDER BY _id OFFSET 100 LIMIT 2',
  'SELECT _id FROM {T} ORDER BY _id LIMIT 2 + 1',
  'SELECT _id FROM {T} ORDER BY _id FETCH FIRST 3 ROWS ONLY',
  'SELECT _id FROM {T} ORDER BY _id LIMIT (SELECT 2)',
  'SELECT _id FROM {T} WHERE i > 5 ORDER BY _id LIMIT 3',
  'SELECT _id FROM {T} WHERE s = ''abc'' OR i = 7 ORDER BY i DESC, _id LIMIT 3',
  'SELECT _id FROM {T} WHERE i IS NULL ORDER BY _id DESC LIMIT 2 OFFSET 1',
  'SELECT count(*) FROM (SELECT _id FROM {T} LIMIT 10) s',
  'SELECT count(*) FROM (SELECT _id FROM {T} WHERE b OFFSET 3) s'
]) AS q;

-- LIMIT stays local, with its reason
SELECT q, decision(q), same(q) FROM unnest(ARRAY[
  'SELECT _id FROM {T} WHERE ts > ''2020-01-01'' ORDER BY _id LIMIT 2',
  'SELECT _id FROM {T} WHERE sci < ''b'' ORDER BY _id LIMIT 2',
  'SELECT _id FROM {T} ORDER BY n, _id LIMIT 2',
  'SELECT _id FROM {T} ORDER BY _id FETCH FIRST 2 ROWS WITH TIES',
  'SELECT DISTINCT g FROM {T} ORDER BY g LIMIT 2',
  'SELECT _id FROM {T} ORDER BY _id LIMIT (random() * 0)::int + 2',
  'SELECT t FROM {T} t ORDER BY _id LIMIT 1',
  'SELECT _id, row_number() OVER () FROM {T} ORDER BY _id LIMIT 2',
  'SELECT _id FROM {T} WHERE random() >= 0 ORDER BY _id LIMIT 2'
]) AS q;

-- nulls in the other tables
SELECT decision('SELECT _id, i FROM {T} ORDER BY i, _id LIMIT 5', 'mixed'),
       same('SELECT _id, i FROM {T} ORDER BY i, _id LIMIT 5', 'mixed');
SELECT decision('SELECT _id, s FROM {T} ORDER BY _id DESC LIMIT 5', 'mixed'),
       same('SELECT _id, s FROM {T} ORDER BY _id DESC LIMIT 5', 'mixed');
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM empty ORDER BY s LIMIT 1;
SELECT * FROM empty ORDER BY s LIMIT 1;

-- parameters: LIMIT and OFFSET computed when the scan starts, with
-- PostgreSQL's checks
PREPARE lim(bigint, bigint) AS SELECT _id FROM t ORDER BY _id LIMIT $1 OFFSET $2;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE lim(3, 1);
EXECUTE lim(3, 1);
EXECUTE lim(0, 0);
EXECUTE lim(NULL, 57);
EXECUTE lim(2, NULL);
EXECUTE lim(-1, 0);
EXECUTE lim(1, -1);
PREPARE lim2(int) AS SELECT _id FROM t WHERE i = $1 ORDER BY _id DESC LIMIT $1;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE lim2(5);
EXECUTE lim2(5);
RESET plan_cache_mode;
-- a LIMIT in a correlated subquery: rerun with each outer value
EXPLAIN (VERBOSE, COSTS OFF)
SELECT g, (SELECT max(_id) FROM (SELECT _id FROM t WHERE t.g4 = o.g ORDER BY _id LIMIT 2) s)
FROM (VALUES (1), (2), (3)) o(g);
SELECT g, (SELECT max(_id) FROM (SELECT _id FROM t WHERE t.g4 = o.g ORDER BY _id LIMIT 2) s)
FROM (VALUES (1), (2), (3)) o(g);

-- a merge join can use the sorted scans
SET enable_hashjoin = off;
SET enable_nestloop = off;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT a._id, b._id FROM t a JOIN t b ON a.i = b.x ORDER BY a.i, a._id, b._id;
SELECT count(*) FROM t a JOIN t b ON a.i = b.x;
SELECT count(*) FROM local_t a JOIN local_t b ON a.i = b.x;
RESET enable_hashjoin;
RESET enable_nestloop;

-- the settings
SET qleaf_fdw.enable_sort_pushdown = off;
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM t ORDER BY _id LIMIT 2;
SET qleaf_fdw.enable_sort_pushdown = on;
SET qleaf_fdw.enable_limit_pushdown = off;
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM t ORDER BY _id LIMIT 2;
SET qleaf_fdw.enable_limit_pushdown = on;
SET qleaf_fdw.enable_pushdown = off;
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM t ORDER BY _id LIMIT 2;
RESET qleaf_fdw.enable_pushdown;
SHOW qleaf_fdw.enable_sort_pushdown;
SHOW qleaf_fdw.enable_limit_pushdown;

--
-- Conversion errors: a strict table over documents whose values do not
-- fit.  PostgreSQL's sort reads every document, a LIMIT after MongoDB's
-- sort only the first ones: documents holding a value that does not
-- convert sort first, so that reading them raises the error a scan
-- raises.  OFFSET rows are read and skipped by the scan, as a Limit node
-- reads and skips them.  Each case against the same query with sort and
-- limit pushdown off.
--
CREATE FOREIGN TABLE strict (_id int, i bigint, s text, b boolean)
  SERVER upper_srv OPTIONS (collection 'mixed');
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
  PERFORM set_config('qleaf_fdw.enable_sort_pushdown', 'off', true);
  PERFORM set_config('qleaf_fdw.enable_limit_pushdown', 'off', true);
  BEGIN
    unpushed := array_to_string(rows_of(q), ' ');
  EXCEPTION WHEN OTHERS THEN
    unpushed := 'error: ' || sqlerrm;
  END;
  PERFORM set_config('qleaf_fdw.enable_sort_pushdown', 'on', true);
  PERFORM set_config('qleaf_fdw.enable_limit_pushdown', 'on', true);
  IF pushed = unpushed THEN
    RETURN pushed;
  END IF;
  RETURN format('DIFFERENT: pushed %s, not pushed %s', pushed, unpushed);
END $$;
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id, i FROM strict ORDER BY _id DESC LIMIT 2;
SELECT q, decision(q), outcome(q) FROM unnest(ARRAY[
  'SELECT _id FROM strict ORDER BY _id DESC LIMIT 2',
  'SELECT _id, i FROM strict ORDER BY _id DESC LIMIT 2',
  'SELECT _id, i FROM strict WHERE i = 3 ORDER BY _id DESC LIMIT 1',
  'SELECT _id, s FROM strict WHERE _id > 30 ORDER BY s LIMIT 1',
  'SELECT _id, b FROM strict WHERE _id IN (3, 4) ORDER BY b LIMIT 1',
  'SELECT _id, i FROM strict LIMIT 2',
  'SELECT _id, i FROM strict WHERE _id > 2 LIMIT 2 OFFSET 1',
  'SELECT _id FROM strict LIMIT 2 OFFSET 30',
  'SELECT _id, i FROM strict WHERE _id IN (5, 12) ORDER BY i LIMIT 1'
]) AS q;

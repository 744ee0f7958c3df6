--
-- The deprecated BSON types undefined and symbol (written as raw BSON by
-- test/fixtures/bsontypes_legacy.py): undefined is SQL NULL for every
-- column type, a symbol reads as the string it holds in text columns and
-- is an error in others; json and jsonb show {"$undefined": true} and
-- {"$symbol": "..."} inside documents and arrays.  MongoDB matches a symbol
-- as the string it holds: conditions on a text column give the rows
-- PostgreSQL alone gives.
--
\! /usr/bin/python3 test/fixtures/load.py bsontypes_legacy
\getenv uri QLEAF_MONGODB_URI

CREATE SERVER legacy_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_types_legacy');
CREATE USER MAPPING FOR CURRENT_USER SERVER legacy_srv;
SET timezone = 'UTC';
CREATE TYPE legacy_color AS ENUM ('red', 'green');
CREATE DOMAIN legacy_short AS text CHECK (length(VALUE) < 20);

--
-- undefined (_id 1) is NULL in every column type, as null (4) and a
-- missing field (5) are; a symbol reads as text.
--
CREATE FOREIGN TABLE flat (
  _id int,
  t   text OPTIONS (field 'v'),
  vc  varchar(5) OPTIONS (field 'v'),
  c   char(5) OPTIONS (field 'v'),
  nm  name OPTIONS (field 'v'),
  dom legacy_short OPTIONS (field 'v'),
  col legacy_color OPTIONS (field 'v'),
  i4  integer OPTIONS (field 'v'),
  i8  bigint OPTIONS (field 'v'),
  n   numeric OPTIONS (field 'v'),
  f8  double precision OPTIONS (field 'v'),
  b   boolean OPTIONS (field 'v'),
  by  bytea OPTIONS (field 'v'),
  u   uuid OPTIONS (field 'v'),
  tz  timestamptz OPTIONS (field 'v'),
  d   date OPTIONS (field 'v'),
  ta  text[] OPTIONS (field 'v'),
  j   json OPTIONS (field 'v'),
  jb  jsonb OPTIONS (field 'v')
) SERVER legacy_srv OPTIONS (collection 'flat', on_conversion_error 'null');

SELECT _id, t, vc, c || '|' AS c_padded, nm, dom, j, jb FROM flat ORDER BY _id;
-- every column of undefined, null and missing is NULL (json and jsonb too:
-- SQL NULL, not JSON null)
SELECT _id, num_nulls(t, vc, c, nm, dom, col, i4, i8, n, f8, b, by, u, tz, d, ta, j, jb)
  AS nulls_of_18
FROM flat WHERE _id IN (1, 4, 5) ORDER BY _id;
SELECT _id, j IS NULL AS json_sql_null, jb IS NULL AS jsonb_sql_null,
       jb = 'null'::jsonb AS jsonb_null
FROM flat WHERE _id IN (1, 4) ORDER BY _id;
-- a symbol is no number, boolean, bytea, uuid, date or array: NULL here,
-- an error below (table legacy_bad)
SELECT _id, i4, i8, n, f8, b, by, u, tz, d, ta FROM flat WHERE _id IN (2, 9) ORDER BY _id;

--
-- Conditions on a column holding symbols: MongoDB compares a symbol with a
-- string as the string it holds (one type bracket); the rows are the ones
-- PostgreSQL gives with pushdown off, and those of a local copy.
--
CREATE FOREIGN TABLE sym (
  _id int,
  t   text OPTIONS (field 'v'),
  doc jsonb OPTIONS (field '$$ROOT')
) SERVER legacy_srv OPTIONS (collection 'flat');
CREATE TABLE local_sym AS SELECT * FROM sym;
CREATE FUNCTION check_rows(cond text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  got int[];
  want int[];
  unpushed int[];
BEGIN
  EXECUTE format('SELECT coalesce(array_agg(_id ORDER BY _id), ''{}'') FROM sym WHERE %s', cond) INTO got;
  EXECUTE format('SELECT coalesce(array_agg(_id ORDER BY _id), ''{}'') FROM local_sym WHERE %s', cond) INTO want;
  SET LOCAL qleaf_fdw.enable_pushdown = off;
  EXECUTE format('SELECT coalesce(array_agg(_id ORDER BY _id), ''{}'') FROM sym WHERE %s', cond) INTO unpushed;
  SET LOCAL qleaf_fdw.enable_pushdown = on;
  IF got = want AND got = unpushed THEN
    RETURN format('%s: %s, same as local and unpushed', cond, got);
  END IF;
  RETURN format('%s: MISMATCH pushed %s local %s unpushed %s', cond, got, want, unpushed);
END $$;
-- Conditions that stand for SQL's NULL: undefined reads as NULL, and the
-- pushed filters test for it by type, since MongoDB 8.0 no longer treats
-- it as null ({f: null}, {$ne: null}); so the rows are the same on every
-- server version.
-- whether the plan of a query ships a stage (its name) to MongoDB
CREATE FUNCTION ships(query text, stage text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || query LOOP
    IF line LIKE '%Pipeline:%' AND strpos(line, '"' || stage || '"') > 0 THEN
      RETURN true;
    END IF;
  END LOOP;
  RETURN false;
END $$;

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM sym WHERE t = 'abc';
SELECT check_rows('t = ''abc''');
SELECT check_rows('t IN (''abc'', ''red'')');
SELECT check_rows('t <> ''abc''');
SELECT check_rows('t NOT IN (''abc'', ''red'')');
SELECT check_rows('t > ''abc''');
SELECT check_rows('t COLLATE "C" >= ''abc''');
SELECT check_rows('t LIKE ''ab%''');
SELECT check_rows('t NOT LIKE ''ab%''');
SELECT check_rows('t ILIKE ''H%''');
SELECT check_rows('t IS NULL');
SELECT check_rows('t IS NOT NULL');
-- ->> of a jsonb document gives a symbol's JSON rendering, which no string
-- equals: the pushed filter asks for strings only
SELECT ships('SELECT _id FROM sym WHERE doc->>''v'' = ''abc''', '$match');
SELECT check_rows('doc->>''v'' = ''abc''');
SELECT _id, doc->>'v' AS v_text FROM sym WHERE _id = 2;
-- sorted by MongoDB: undefined, null and missing are all NULL here, and a
-- symbol sorts as the string it holds
SELECT ships('SELECT _id, t FROM sym ORDER BY t COLLATE "C" NULLS FIRST, _id LIMIT 4',
             '$sort');
SELECT _id, t FROM sym ORDER BY t COLLATE "C" NULLS FIRST, _id LIMIT 4;
SELECT _id, t FROM sym ORDER BY t COLLATE "C" DESC NULLS LAST, _id LIMIT 4;
-- count(t) counts neither undefined nor null nor missing
SELECT ships('SELECT count(*), count(t), count(DISTINCT t) FROM sym', '$group');
SELECT count(*), count(t), count(DISTINCT t) FROM sym;
SELECT t IS NULL AS t_null, count(*) FROM sym GROUP BY 1 ORDER BY 1;

--
-- json and jsonb: {"$undefined": true} and {"$symbol": "..."} in
-- documents and arrays; text[] takes symbols, and undefined elements are
-- NULL elements.
--
CREATE FOREIGN TABLE nest (
  _id  int,
  u    jsonb,
  s    jsonb,
  d    jsonb,
  dj   json OPTIONS (field 'd'),
  a    jsonb,
  aj   json OPTIONS (field 'a'),
  at   text[] OPTIONS (field 'a'),
  m    jsonb,
  st   text OPTIONS (field 'd.s'),
  ui   integer OPTIONS (field 'd.u'),
  doc  jsonb OPTIONS (field '$$ROOT')
) SERVER legacy_srv OPTIONS (collection 'nest');

SELECT u, s, st, ui FROM nest;
SELECT d, dj FROM nest;
SELECT a, aj, at FROM nest;
SELECT m FROM nest;
SELECT doc FROM nest;
SELECT jsonb_typeof(doc->'u') AS u_type, doc->'d'->'s'->>'$symbol' AS symbol_text,
       at[2] IS NULL AS undefined_element_null
FROM nest;

--
-- A symbol in a column of another type is an error, as a string there is.
--
CREATE FOREIGN TABLE legacy_bad (
  _id      text,
  int4     integer,
  bool     boolean,
  bytea    bytea,
  tstz     timestamptz,
  uuid     uuid,
  int4_arr integer[]
) SERVER legacy_srv OPTIONS (collection 'bad');
SELECT int4 FROM legacy_bad WHERE _id = 'int4';
SELECT bool FROM legacy_bad WHERE _id = 'bool';
SELECT bytea FROM legacy_bad WHERE _id = 'bytea';
SELECT tstz FROM legacy_bad WHERE _id = 'tstz';
SELECT uuid FROM legacy_bad WHERE _id = 'uuid';
SELECT int4_arr FROM legacy_bad WHERE _id = 'int4_arr';
-- a symbol in an enum column goes through the type's input function
SELECT _id, col FROM flat WHERE _id = 7;

--
-- A changes table: the inserted document and, after an update, the
-- documents before and after it, with their undefined and symbol values.
--
CREATE FOREIGN TABLE legacy_changes (
  operation_type text,
  s     text OPTIONS (field 'fullDocument.s'),
  u     integer OPTIONS (field 'fullDocument.u'),
  s_before text OPTIONS (field 'fullDocumentBeforeChange.s'),
  full_document jsonb,
  full_document_before_change jsonb,
  cluster_timestamp bigint
) SERVER legacy_srv
  OPTIONS (changes 'true', collection 'events', full_document 'updateLookup',
           full_document_before_change 'whenAvailable');
\set start `/usr/bin/python3 test/fixtures/bsontypes_legacy.py events`
SELECT operation_type, s, u, s_before FROM legacy_changes
WHERE cluster_timestamp > :start ORDER BY cluster_timestamp;
SELECT operation_type, full_document, full_document_before_change
FROM legacy_changes WHERE cluster_timestamp > :start ORDER BY cluster_timestamp;

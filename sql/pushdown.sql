--
-- WHERE pushdown: every condition is shipped exactly, shipped as a
-- prefilter and rechecked, or kept local with its reason.  Each case shows
-- its plan and checks its rows against a local heap copy of the same data
-- (pushdown on), and against the foreign table with pushdown off.
--
\! /usr/bin/python3 test/fixtures/load.py pushdown
\getenv uri QLEAF_MONGODB_URI
SET extra_float_digits = 0;
SET timezone = 'UTC';

CREATE SERVER pushdown_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_pushdown');
CREATE USER MAPPING FOR CURRENT_USER SERVER pushdown_srv;

CREATE FOREIGN TABLE clean (
  _id  int,
  i    bigint,
  n    numeric,
  s    text,
  b    boolean,
  ts   timestamptz,
  d    jsonb,
  x    bigint OPTIONS (field 'nest.x'),
  f    float8 OPTIONS (field 'n'),
  nt   text OPTIONS (field 'nest.t'),
  tags text[],
  arr  bigint[],
  doc  jsonb OPTIONS (field '$$ROOT')
) SERVER pushdown_srv OPTIONS (collection 'clean');

-- the same fields with values of every type, bad ones read as NULL
CREATE FOREIGN TABLE mixed (
  _id  int,
  i    bigint,
  s    text,
  b    boolean,
  ts   timestamptz,
  x    bigint OPTIONS (field 'nest.x')
) SERVER pushdown_srv OPTIONS (collection 'mixed', on_conversion_error 'null');

CREATE FOREIGN TABLE ids (_id text, k int)
  SERVER pushdown_srv OPTIONS (collection 'ids');

CREATE TABLE local_clean AS SELECT * FROM clean;
CREATE TABLE local_mixed AS SELECT * FROM mixed;

-- rows of tbl WHERE cond: their number, and the _ids that differ from
-- the local copy and from the same query with pushdown off
CREATE FUNCTION check_rows(tbl text, cond text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  got int[];
  want int[];
  unpushed int[];
BEGIN
  EXECUTE format('SELECT coalesce(array_agg(_id ORDER BY _id), ''{}'') FROM %I WHERE %s', tbl, cond) INTO got;
  EXECUTE format('SELECT coalesce(array_agg(_id ORDER BY _id), ''{}'') FROM %I WHERE %s', 'local_' || tbl, cond) INTO want;
  SET LOCAL qleaf_fdw.enable_pushdown = off;
  EXECUTE format('SELECT coalesce(array_agg(_id ORDER BY _id), ''{}'') FROM %I WHERE %s', tbl, cond) INTO unpushed;
  SET LOCAL qleaf_fdw.enable_pushdown = on;
  IF got = want AND got = unpushed THEN
    RETURN format('%s rows, same as local and unpushed', cardinality(got));
  END IF;
  RETURN format('MISMATCH pushed %s local %s unpushed %s', got, want, unpushed);
END $$;


-- ==== the table 'clean': every value converts ====

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i = 5;
SELECT check_rows('clean', 'i = 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i = 0;
SELECT check_rows('clean', 'i = 0');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i = -3;
SELECT check_rows('clean', 'i = -3');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i = 2199023255552;
SELECT check_rows('clean', 'i = 2199023255552');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i <> 5;
SELECT check_rows('clean', 'i <> 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i <> 0;
SELECT check_rows('clean', 'i <> 0');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i <> -3;
SELECT check_rows('clean', 'i <> -3');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i <> 2199023255552;
SELECT check_rows('clean', 'i <> 2199023255552');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i < 5;
SELECT check_rows('clean', 'i < 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i < 0;
SELECT check_rows('clean', 'i < 0');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i < -3;
SELECT check_rows('clean', 'i < -3');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i < 2199023255552;
SELECT check_rows('clean', 'i < 2199023255552');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i <= 5;
SELECT check_rows('clean', 'i <= 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i <= 0;
SELECT check_rows('clean', 'i <= 0');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i <= -3;
SELECT check_rows('clean', 'i <= -3');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i <= 2199023255552;
SELECT check_rows('clean', 'i <= 2199023255552');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i > 5;
SELECT check_rows('clean', 'i > 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i > 0;
SELECT check_rows('clean', 'i > 0');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i > -3;
SELECT check_rows('clean', 'i > -3');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i > 2199023255552;
SELECT check_rows('clean', 'i > 2199023255552');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i >= 5;
SELECT check_rows('clean', 'i >= 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i >= 0;
SELECT check_rows('clean', 'i >= 0');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i >= -3;
SELECT check_rows('clean', 'i >= -3');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i >= 2199023255552;
SELECT check_rows('clean', 'i >= 2199023255552');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE 5 = i;
SELECT check_rows('clean', '5 = i');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE 5 <> i;
SELECT check_rows('clean', '5 <> i');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE 5 < i;
SELECT check_rows('clean', '5 < i');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE 5 <= i;
SELECT check_rows('clean', '5 <= i');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE 5 > i;
SELECT check_rows('clean', '5 > i');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE 5 >= i;
SELECT check_rows('clean', '5 >= i');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n = 5;
SELECT check_rows('clean', 'n = 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n = 0;
SELECT check_rows('clean', 'n = 0');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n = -7;
SELECT check_rows('clean', 'n = -7');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n = 2.5;
SELECT check_rows('clean', 'n = 2.5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n = 'NaN';
SELECT check_rows('clean', 'n = ''NaN''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n = 'Infinity';
SELECT check_rows('clean', 'n = ''Infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n <> 5;
SELECT check_rows('clean', 'n <> 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n <> 0;
SELECT check_rows('clean', 'n <> 0');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n <> -7;
SELECT check_rows('clean', 'n <> -7');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n <> 2.5;
SELECT check_rows('clean', 'n <> 2.5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n <> 'NaN';
SELECT check_rows('clean', 'n <> ''NaN''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n <> 'Infinity';
SELECT check_rows('clean', 'n <> ''Infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n < 5;
SELECT check_rows('clean', 'n < 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n < 0;
SELECT check_rows('clean', 'n < 0');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n < -7;
SELECT check_rows('clean', 'n < -7');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n < 2.5;
SELECT check_rows('clean', 'n < 2.5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n < 'NaN';
SELECT check_rows('clean', 'n < ''NaN''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n < 'Infinity';
SELECT check_rows('clean', 'n < ''Infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n <= 5;
SELECT check_rows('clean', 'n <= 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n <= 0;
SELECT check_rows('clean', 'n <= 0');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n <= -7;
SELECT check_rows('clean', 'n <= -7');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n <= 2.5;
SELECT check_rows('clean', 'n <= 2.5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n <= 'NaN';
SELECT check_rows('clean', 'n <= ''NaN''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n <= 'Infinity';
SELECT check_rows('clean', 'n <= ''Infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n > 5;
SELECT check_rows('clean', 'n > 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n > 0;
SELECT check_rows('clean', 'n > 0');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n > -7;
SELECT check_rows('clean', 'n > -7');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n > 2.5;
SELECT check_rows('clean', 'n > 2.5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n > 'NaN';
SELECT check_rows('clean', 'n > ''NaN''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n > 'Infinity';
SELECT check_rows('clean', 'n > ''Infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n >= 5;
SELECT check_rows('clean', 'n >= 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n >= 0;
SELECT check_rows('clean', 'n >= 0');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n >= -7;
SELECT check_rows('clean', 'n >= -7');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n >= 2.5;
SELECT check_rows('clean', 'n >= 2.5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n >= 'NaN';
SELECT check_rows('clean', 'n >= ''NaN''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n >= 'Infinity';
SELECT check_rows('clean', 'n >= ''Infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f = 5;
SELECT check_rows('clean', 'f = 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f = 2.5;
SELECT check_rows('clean', 'f = 2.5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f = 0;
SELECT check_rows('clean', 'f = 0');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f = 'NaN';
SELECT check_rows('clean', 'f = ''NaN''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f = 'Infinity';
SELECT check_rows('clean', 'f = ''Infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f = '-Infinity';
SELECT check_rows('clean', 'f = ''-Infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f = 1e300;
SELECT check_rows('clean', 'f = 1e300');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f <> 5;
SELECT check_rows('clean', 'f <> 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f <> 2.5;
SELECT check_rows('clean', 'f <> 2.5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f <> 0;
SELECT check_rows('clean', 'f <> 0');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f <> 'NaN';
SELECT check_rows('clean', 'f <> ''NaN''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f <> 'Infinity';
SELECT check_rows('clean', 'f <> ''Infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f <> '-Infinity';
SELECT check_rows('clean', 'f <> ''-Infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f <> 1e300;
SELECT check_rows('clean', 'f <> 1e300');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f < 5;
SELECT check_rows('clean', 'f < 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f < 2.5;
SELECT check_rows('clean', 'f < 2.5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f < 0;
SELECT check_rows('clean', 'f < 0');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f < 'NaN';
SELECT check_rows('clean', 'f < ''NaN''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f < 'Infinity';
SELECT check_rows('clean', 'f < ''Infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f < '-Infinity';
SELECT check_rows('clean', 'f < ''-Infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f < 1e300;
SELECT check_rows('clean', 'f < 1e300');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f <= 5;
SELECT check_rows('clean', 'f <= 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f <= 2.5;
SELECT check_rows('clean', 'f <= 2.5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f <= 0;
SELECT check_rows('clean', 'f <= 0');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f <= 'NaN';
SELECT check_rows('clean', 'f <= ''NaN''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f <= 'Infinity';
SELECT check_rows('clean', 'f <= ''Infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f <= '-Infinity';
SELECT check_rows('clean', 'f <= ''-Infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f <= 1e300;
SELECT check_rows('clean', 'f <= 1e300');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f > 5;
SELECT check_rows('clean', 'f > 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f > 2.5;
SELECT check_rows('clean', 'f > 2.5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f > 0;
SELECT check_rows('clean', 'f > 0');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f > 'NaN';
SELECT check_rows('clean', 'f > ''NaN''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f > 'Infinity';
SELECT check_rows('clean', 'f > ''Infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f > '-Infinity';
SELECT check_rows('clean', 'f > ''-Infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f > 1e300;
SELECT check_rows('clean', 'f > 1e300');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f >= 5;
SELECT check_rows('clean', 'f >= 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f >= 2.5;
SELECT check_rows('clean', 'f >= 2.5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f >= 0;
SELECT check_rows('clean', 'f >= 0');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f >= 'NaN';
SELECT check_rows('clean', 'f >= ''NaN''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f >= 'Infinity';
SELECT check_rows('clean', 'f >= ''Infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f >= '-Infinity';
SELECT check_rows('clean', 'f >= ''-Infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f >= 1e300;
SELECT check_rows('clean', 'f >= 1e300');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE NOT (f > 1);
SELECT check_rows('clean', 'NOT (f > 1)');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f IN (1, 5);
SELECT check_rows('clean', 'f IN (1, 5)');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f = 5::real;
SELECT check_rows('clean', 'f = 5::real');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE f IS NULL;
SELECT check_rows('clean', 'f IS NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s = 'abc';
SELECT check_rows('clean', 's = ''abc''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s = '';
SELECT check_rows('clean', 's = ''''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s = 'é';
SELECT check_rows('clean', 's = ''é''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s = '5f1d7a2b9c8e4f0012345678';
SELECT check_rows('clean', 's = ''5f1d7a2b9c8e4f0012345678''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s = '5F1D7A2B9C8E4F0012345678';
SELECT check_rows('clean', 's = ''5F1D7A2B9C8E4F0012345678''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s = 'line
break';
SELECT check_rows('clean', 's = ''line
break''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s <> 'abc';
SELECT check_rows('clean', 's <> ''abc''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s <> '';
SELECT check_rows('clean', 's <> ''''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s <> 'é';
SELECT check_rows('clean', 's <> ''é''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s <> '5f1d7a2b9c8e4f0012345678';
SELECT check_rows('clean', 's <> ''5f1d7a2b9c8e4f0012345678''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s <> '5F1D7A2B9C8E4F0012345678';
SELECT check_rows('clean', 's <> ''5F1D7A2B9C8E4F0012345678''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s <> 'line
break';
SELECT check_rows('clean', 's <> ''line
break''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s < 'ab' COLLATE "C";
SELECT check_rows('clean', 's < ''ab'' COLLATE "C"');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s < 'abc' COLLATE "C";
SELECT check_rows('clean', 's < ''abc'' COLLATE "C"');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s < '5f' COLLATE "C";
SELECT check_rows('clean', 's < ''5f'' COLLATE "C"');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s < 'ab' COLLATE "und-x-icu";
SELECT check_rows('clean', 's < ''ab'' COLLATE "und-x-icu"');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s <= 'ab' COLLATE "C";
SELECT check_rows('clean', 's <= ''ab'' COLLATE "C"');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s <= 'abc' COLLATE "C";
SELECT check_rows('clean', 's <= ''abc'' COLLATE "C"');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s <= '5f' COLLATE "C";
SELECT check_rows('clean', 's <= ''5f'' COLLATE "C"');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s <= 'ab' COLLATE "und-x-icu";
SELECT check_rows('clean', 's <= ''ab'' COLLATE "und-x-icu"');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s > 'ab' COLLATE "C";
SELECT check_rows('clean', 's > ''ab'' COLLATE "C"');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s > 'abc' COLLATE "C";
SELECT check_rows('clean', 's > ''abc'' COLLATE "C"');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s > '5f' COLLATE "C";
SELECT check_rows('clean', 's > ''5f'' COLLATE "C"');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s > 'ab' COLLATE "und-x-icu";
SELECT check_rows('clean', 's > ''ab'' COLLATE "und-x-icu"');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s >= 'ab' COLLATE "C";
SELECT check_rows('clean', 's >= ''ab'' COLLATE "C"');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s >= 'abc' COLLATE "C";
SELECT check_rows('clean', 's >= ''abc'' COLLATE "C"');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s >= '5f' COLLATE "C";
SELECT check_rows('clean', 's >= ''5f'' COLLATE "C"');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s >= 'ab' COLLATE "und-x-icu";
SELECT check_rows('clean', 's >= ''ab'' COLLATE "und-x-icu"');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s LIKE 'ab%';
SELECT check_rows('clean', 's LIKE ''ab%''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s NOT LIKE 'ab%';
SELECT check_rows('clean', 's NOT LIKE ''ab%''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s LIKE '%b';
SELECT check_rows('clean', 's LIKE ''%b''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s NOT LIKE '%b';
SELECT check_rows('clean', 's NOT LIKE ''%b''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s LIKE 'a_c';
SELECT check_rows('clean', 's LIKE ''a_c''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s NOT LIKE 'a_c';
SELECT check_rows('clean', 's NOT LIKE ''a_c''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s LIKE 'a\%b%';
SELECT check_rows('clean', 's LIKE ''a\%b%''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s NOT LIKE 'a\%b%';
SELECT check_rows('clean', 's NOT LIKE ''a\%b%''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s LIKE 'a\_b';
SELECT check_rows('clean', 's LIKE ''a\_b''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s NOT LIKE 'a\_b';
SELECT check_rows('clean', 's NOT LIKE ''a\_b''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s LIKE '%';
SELECT check_rows('clean', 's LIKE ''%''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s NOT LIKE '%';
SELECT check_rows('clean', 's NOT LIKE ''%''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s LIKE 'a.b';
SELECT check_rows('clean', 's LIKE ''a.b''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s NOT LIKE 'a.b';
SELECT check_rows('clean', 's NOT LIKE ''a.b''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s LIKE 'line%';
SELECT check_rows('clean', 's LIKE ''line%''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s NOT LIKE 'line%';
SELECT check_rows('clean', 's NOT LIKE ''line%''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s LIKE '%\\%';
SELECT check_rows('clean', 's LIKE ''%\\%''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s NOT LIKE '%\\%';
SELECT check_rows('clean', 's NOT LIKE ''%\\%''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s LIKE '5f%';
SELECT check_rows('clean', 's LIKE ''5f%''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s NOT LIKE '5f%';
SELECT check_rows('clean', 's NOT LIKE ''5f%''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s LIKE '日%';
SELECT check_rows('clean', 's LIKE ''日%''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s NOT LIKE '日%';
SELECT check_rows('clean', 's NOT LIKE ''日%''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s LIKE '_';
SELECT check_rows('clean', 's LIKE ''_''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s NOT LIKE '_';
SELECT check_rows('clean', 's NOT LIKE ''_''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s ILIKE 'ab%';
SELECT check_rows('clean', 's ILIKE ''ab%''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s NOT ILIKE 'ab%';
SELECT check_rows('clean', 's NOT ILIKE ''ab%''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s ILIKE 'KELVIN';
SELECT check_rows('clean', 's ILIKE ''KELVIN''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s NOT ILIKE 'KELVIN';
SELECT check_rows('clean', 's NOT ILIKE ''KELVIN''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s ILIKE 'istanbul';
SELECT check_rows('clean', 's ILIKE ''istanbul''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s NOT ILIKE 'istanbul';
SELECT check_rows('clean', 's NOT ILIKE ''istanbul''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s ILIKE '%é%';
SELECT check_rows('clean', 's ILIKE ''%é%''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s NOT ILIKE '%é%';
SELECT check_rows('clean', 's NOT ILIKE ''%é%''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s ILIKE 'a_C';
SELECT check_rows('clean', 's ILIKE ''a_C''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s NOT ILIKE 'a_C';
SELECT check_rows('clean', 's NOT ILIKE ''a_C''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s LIKE 'a#%b' ESCAPE '#';
SELECT check_rows('clean', 's LIKE ''a#%b'' ESCAPE ''#''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s LIKE 'ab\';
SELECT check_rows('clean', 's LIKE ''ab\''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE b = true;
SELECT check_rows('clean', 'b = true');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE b = false;
SELECT check_rows('clean', 'b = false');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE b <> true;
SELECT check_rows('clean', 'b <> true');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE b <> false;
SELECT check_rows('clean', 'b <> false');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE b;
SELECT check_rows('clean', 'b');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE NOT b;
SELECT check_rows('clean', 'NOT b');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE b IS TRUE;
SELECT check_rows('clean', 'b IS TRUE');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE b IS NOT FALSE;
SELECT check_rows('clean', 'b IS NOT FALSE');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i IS NULL;
SELECT check_rows('clean', 'i IS NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i IS NOT NULL;
SELECT check_rows('clean', 'i IS NOT NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n IS NULL;
SELECT check_rows('clean', 'n IS NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n IS NOT NULL;
SELECT check_rows('clean', 'n IS NOT NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s IS NULL;
SELECT check_rows('clean', 's IS NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s IS NOT NULL;
SELECT check_rows('clean', 's IS NOT NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE b IS NULL;
SELECT check_rows('clean', 'b IS NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE b IS NOT NULL;
SELECT check_rows('clean', 'b IS NOT NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts IS NULL;
SELECT check_rows('clean', 'ts IS NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts IS NOT NULL;
SELECT check_rows('clean', 'ts IS NOT NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE x IS NULL;
SELECT check_rows('clean', 'x IS NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE x IS NOT NULL;
SELECT check_rows('clean', 'x IS NOT NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE d IS NULL;
SELECT check_rows('clean', 'd IS NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE d IS NOT NULL;
SELECT check_rows('clean', 'd IS NOT NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts = '2024-01-01 00:00:00+00';
SELECT check_rows('clean', 'ts = ''2024-01-01 00:00:00+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts = '2024-01-01 00:00:00.0005+00';
SELECT check_rows('clean', 'ts = ''2024-01-01 00:00:00.0005+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts = '2024-01-01 00:00:00.001+00';
SELECT check_rows('clean', 'ts = ''2024-01-01 00:00:00.001+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts = '2023-12-31 23:59:59.9995+00';
SELECT check_rows('clean', 'ts = ''2023-12-31 23:59:59.9995+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts = '1969-12-31 23:59:59.9991+00';
SELECT check_rows('clean', 'ts = ''1969-12-31 23:59:59.9991+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts = '-infinity';
SELECT check_rows('clean', 'ts = ''-infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts = 'infinity';
SELECT check_rows('clean', 'ts = ''infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts <> '2024-01-01 00:00:00+00';
SELECT check_rows('clean', 'ts <> ''2024-01-01 00:00:00+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts <> '2024-01-01 00:00:00.0005+00';
SELECT check_rows('clean', 'ts <> ''2024-01-01 00:00:00.0005+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts <> '2024-01-01 00:00:00.001+00';
SELECT check_rows('clean', 'ts <> ''2024-01-01 00:00:00.001+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts <> '2023-12-31 23:59:59.9995+00';
SELECT check_rows('clean', 'ts <> ''2023-12-31 23:59:59.9995+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts <> '1969-12-31 23:59:59.9991+00';
SELECT check_rows('clean', 'ts <> ''1969-12-31 23:59:59.9991+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts <> '-infinity';
SELECT check_rows('clean', 'ts <> ''-infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts <> 'infinity';
SELECT check_rows('clean', 'ts <> ''infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts < '2024-01-01 00:00:00+00';
SELECT check_rows('clean', 'ts < ''2024-01-01 00:00:00+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts < '2024-01-01 00:00:00.0005+00';
SELECT check_rows('clean', 'ts < ''2024-01-01 00:00:00.0005+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts < '2024-01-01 00:00:00.001+00';
SELECT check_rows('clean', 'ts < ''2024-01-01 00:00:00.001+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts < '2023-12-31 23:59:59.9995+00';
SELECT check_rows('clean', 'ts < ''2023-12-31 23:59:59.9995+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts < '1969-12-31 23:59:59.9991+00';
SELECT check_rows('clean', 'ts < ''1969-12-31 23:59:59.9991+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts < '-infinity';
SELECT check_rows('clean', 'ts < ''-infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts < 'infinity';
SELECT check_rows('clean', 'ts < ''infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts <= '2024-01-01 00:00:00+00';
SELECT check_rows('clean', 'ts <= ''2024-01-01 00:00:00+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts <= '2024-01-01 00:00:00.0005+00';
SELECT check_rows('clean', 'ts <= ''2024-01-01 00:00:00.0005+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts <= '2024-01-01 00:00:00.001+00';
SELECT check_rows('clean', 'ts <= ''2024-01-01 00:00:00.001+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts <= '2023-12-31 23:59:59.9995+00';
SELECT check_rows('clean', 'ts <= ''2023-12-31 23:59:59.9995+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts <= '1969-12-31 23:59:59.9991+00';
SELECT check_rows('clean', 'ts <= ''1969-12-31 23:59:59.9991+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts <= '-infinity';
SELECT check_rows('clean', 'ts <= ''-infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts <= 'infinity';
SELECT check_rows('clean', 'ts <= ''infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts > '2024-01-01 00:00:00+00';
SELECT check_rows('clean', 'ts > ''2024-01-01 00:00:00+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts > '2024-01-01 00:00:00.0005+00';
SELECT check_rows('clean', 'ts > ''2024-01-01 00:00:00.0005+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts > '2024-01-01 00:00:00.001+00';
SELECT check_rows('clean', 'ts > ''2024-01-01 00:00:00.001+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts > '2023-12-31 23:59:59.9995+00';
SELECT check_rows('clean', 'ts > ''2023-12-31 23:59:59.9995+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts > '1969-12-31 23:59:59.9991+00';
SELECT check_rows('clean', 'ts > ''1969-12-31 23:59:59.9991+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts > '-infinity';
SELECT check_rows('clean', 'ts > ''-infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts > 'infinity';
SELECT check_rows('clean', 'ts > ''infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts >= '2024-01-01 00:00:00+00';
SELECT check_rows('clean', 'ts >= ''2024-01-01 00:00:00+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts >= '2024-01-01 00:00:00.0005+00';
SELECT check_rows('clean', 'ts >= ''2024-01-01 00:00:00.0005+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts >= '2024-01-01 00:00:00.001+00';
SELECT check_rows('clean', 'ts >= ''2024-01-01 00:00:00.001+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts >= '2023-12-31 23:59:59.9995+00';
SELECT check_rows('clean', 'ts >= ''2023-12-31 23:59:59.9995+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts >= '1969-12-31 23:59:59.9991+00';
SELECT check_rows('clean', 'ts >= ''1969-12-31 23:59:59.9991+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts >= '-infinity';
SELECT check_rows('clean', 'ts >= ''-infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts >= 'infinity';
SELECT check_rows('clean', 'ts >= ''infinity''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i IN (5, 6, 42);
SELECT check_rows('clean', 'i IN (5, 6, 42)');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i IN (5, NULL);
SELECT check_rows('clean', 'i IN (5, NULL)');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i NOT IN (5, 6);
SELECT check_rows('clean', 'i NOT IN (5, 6)');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i NOT IN (5, NULL);
SELECT check_rows('clean', 'i NOT IN (5, NULL)');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i = ANY ('{1,7}');
SELECT check_rows('clean', 'i = ANY (''{1,7}'')');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i <> ALL ('{1,7}');
SELECT check_rows('clean', 'i <> ALL (''{1,7}'')');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE NOT (i IN (5, NULL));
SELECT check_rows('clean', 'NOT (i IN (5, NULL))');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE NOT (i NOT IN (5, NULL));
SELECT check_rows('clean', 'NOT (i NOT IN (5, NULL))');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n IN (5, 0);
SELECT check_rows('clean', 'n IN (5, 0)');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n IN (5, 1.5);
SELECT check_rows('clean', 'n IN (5, 1.5)');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n NOT IN (5, -7);
SELECT check_rows('clean', 'n NOT IN (5, -7)');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s IN ('abc', 'ab', '5f1d7a2b9c8e4f0012345678');
SELECT check_rows('clean', 's IN (''abc'', ''ab'', ''5f1d7a2b9c8e4f0012345678'')');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s NOT IN ('abc', 'ab');
SELECT check_rows('clean', 's NOT IN (''abc'', ''ab'')');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s NOT IN ('abc', NULL);
SELECT check_rows('clean', 's NOT IN (''abc'', NULL)');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s = ANY (ARRAY['é', '日本']);
SELECT check_rows('clean', 's = ANY (ARRAY[''é'', ''日本''])');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i > 5 AND s = 'abc';
SELECT check_rows('clean', 'i > 5 AND s = ''abc''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i > 5 OR s = 'abc';
SELECT check_rows('clean', 'i > 5 OR s = ''abc''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE NOT (i > 5 AND s = 'abc');
SELECT check_rows('clean', 'NOT (i > 5 AND s = ''abc'')');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE NOT (i > 5 OR s IS NULL);
SELECT check_rows('clean', 'NOT (i > 5 OR s IS NULL)');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE NOT (i < 5);
SELECT check_rows('clean', 'NOT (i < 5)');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE NOT NOT (i < 5);
SELECT check_rows('clean', 'NOT NOT (i < 5)');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE (i = 5 OR i = 6) AND NOT b;
SELECT check_rows('clean', '(i = 5 OR i = 6) AND NOT b');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i > 5 AND n > 0 AND b;
SELECT check_rows('clean', 'i > 5 AND n > 0 AND b');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i > 5 OR n::float8 > 1;
SELECT check_rows('clean', 'i > 5 OR n::float8 > 1');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE NOT (s LIKE 'a%');
SELECT check_rows('clean', 'NOT (s LIKE ''a%'')');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE NOT (s < 'b' COLLATE "C");
SELECT check_rows('clean', 'NOT (s < ''b'' COLLATE "C")');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE d->>'a' = 'x';
SELECT check_rows('clean', 'd->>''a'' = ''x''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE d->>'a' = '5';
SELECT check_rows('clean', 'd->>''a'' = ''5''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE d->>'a' = 'true';
SELECT check_rows('clean', 'd->>''a'' = ''true''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE d->'b'->>'c' = 'y';
SELECT check_rows('clean', 'd->''b''->>''c'' = ''y''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE d->>'a' IN ('x', 'y');
SELECT check_rows('clean', 'd->>''a'' IN (''x'', ''y'')');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE d->>'a' <> 'x';
SELECT check_rows('clean', 'd->>''a'' <> ''x''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE d->>'a' IS NULL;
SELECT check_rows('clean', 'd->>''a'' IS NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE doc->>'s' = 'abc';
SELECT check_rows('clean', 'doc->>''s'' = ''abc''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE doc->'d'->>'a' = 'x';
SELECT check_rows('clean', 'doc->''d''->>''a'' = ''x''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE d @> '{"a": "x"}';
SELECT check_rows('clean', 'd @> ''{"a": "x"}''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE d @> '{"a": 5}';
SELECT check_rows('clean', 'd @> ''{"a": 5}''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE d @> '{"a": "x", "b": {"c": "y"}}';
SELECT check_rows('clean', 'd @> ''{"a": "x", "b": {"c": "y"}}''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE d @> '{"b": {"c": "y"}}';
SELECT check_rows('clean', 'd @> ''{"b": {"c": "y"}}''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE d @> '{"a": ["x"]}';
SELECT check_rows('clean', 'd @> ''{"a": ["x"]}''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE d @> '{"a": null}';
SELECT check_rows('clean', 'd @> ''{"a": null}''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE d @> '{"a": true}';
SELECT check_rows('clean', 'd @> ''{"a": true}''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE d @> '{"a": 5.5}';
SELECT check_rows('clean', 'd @> ''{"a": 5.5}''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE d @> '{}';
SELECT check_rows('clean', 'd @> ''{}''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE d @> '["x"]';
SELECT check_rows('clean', 'd @> ''["x"]''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE d @> '{"a.b": 1}';
SELECT check_rows('clean', 'd @> ''{"a.b": 1}''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE doc @> '{"s": "abc"}';
SELECT check_rows('clean', 'doc @> ''{"s": "abc"}''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE doc @> '{"d": {"a": "x"}}';
SELECT check_rows('clean', 'doc @> ''{"d": {"a": "x"}}''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE d->'b' @> '{"c": "y"}';
SELECT check_rows('clean', 'd->''b'' @> ''{"c": "y"}''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE NOT (d @> '{"a": "x"}');
SELECT check_rows('clean', 'NOT (d @> ''{"a": "x"}'')');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE doc @> '{"tags": ["a", "b"]}';
SELECT check_rows('clean', 'doc @> ''{"tags": ["a", "b"]}''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE d->>'a' LIKE 'x%';
SELECT check_rows('clean', 'd->>''a'' LIKE ''x%''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE d->>'a.b' = 'x';
SELECT check_rows('clean', 'd->>''a.b'' = ''x''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE x = 5;
SELECT check_rows('clean', 'x = 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE x > 5;
SELECT check_rows('clean', 'x > 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE x IS NULL;
SELECT check_rows('clean', 'x IS NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE x <> 5;
SELECT check_rows('clean', 'x <> 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE x IS NOT NULL;
SELECT check_rows('clean', 'x IS NOT NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE x NOT IN (5, 6);
SELECT check_rows('clean', 'x NOT IN (5, 6)');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE nt = 'abc';
SELECT check_rows('clean', 'nt = ''abc''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE nt <> 'abc';
SELECT check_rows('clean', 'nt <> ''abc''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE nt IS NULL;
SELECT check_rows('clean', 'nt IS NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE nt IS NOT NULL;
SELECT check_rows('clean', 'nt IS NOT NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE nt NOT LIKE 'a%';
SELECT check_rows('clean', 'nt NOT LIKE ''a%''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE nt NOT IN ('abc', 'ab');
SELECT check_rows('clean', 'nt NOT IN (''abc'', ''ab'')');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE 'a' = ANY (tags);
SELECT check_rows('clean', '''a'' = ANY (tags)');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE '5f1d7a2b9c8e4f0012345678' = ANY (tags);
SELECT check_rows('clean', '''5f1d7a2b9c8e4f0012345678'' = ANY (tags)');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE NULL::text = ANY (tags);
SELECT check_rows('clean', 'NULL::text = ANY (tags)');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE tags @> ARRAY['a'];
SELECT check_rows('clean', 'tags @> ARRAY[''a'']');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE tags @> ARRAY['a', 'b'];
SELECT check_rows('clean', 'tags @> ARRAY[''a'', ''b'']');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE tags @> '{}';
SELECT check_rows('clean', 'tags @> ''{}''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE tags @> ARRAY['a', NULL];
SELECT check_rows('clean', 'tags @> ARRAY[''a'', NULL]');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE tags && ARRAY['b', 'x'];
SELECT check_rows('clean', 'tags && ARRAY[''b'', ''x'']');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE tags && '{}';
SELECT check_rows('clean', 'tags && ''{}''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE tags && ARRAY['5f1d7a2b9c8e4f0012345678'];
SELECT check_rows('clean', 'tags && ARRAY[''5f1d7a2b9c8e4f0012345678'']');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE tags IS NULL;
SELECT check_rows('clean', 'tags IS NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE tags IS NOT NULL;
SELECT check_rows('clean', 'tags IS NOT NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE NOT ('a' = ANY (tags));
SELECT check_rows('clean', 'NOT (''a'' = ANY (tags))');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE 'a' <> ALL (tags);
SELECT check_rows('clean', '''a'' <> ALL (tags)');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE NOT (tags @> ARRAY['a']);
SELECT check_rows('clean', 'NOT (tags @> ARRAY[''a''])');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE 5 = ANY (arr);
SELECT check_rows('clean', '5 = ANY (arr)');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE 7 = ANY (arr);
SELECT check_rows('clean', '7 = ANY (arr)');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE arr @> ARRAY[5::bigint];
SELECT check_rows('clean', 'arr @> ARRAY[5::bigint]');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE arr @> ARRAY[1, 5]::bigint[];
SELECT check_rows('clean', 'arr @> ARRAY[1, 5]::bigint[]');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE arr && ARRAY[6, 7]::bigint[];
SELECT check_rows('clean', 'arr && ARRAY[6, 7]::bigint[]');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE arr IS NULL;
SELECT check_rows('clean', 'arr IS NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE arr IS NOT NULL;
SELECT check_rows('clean', 'arr IS NOT NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE tags = ARRAY['b'];
SELECT check_rows('clean', 'tags = ARRAY[''b'']');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE 'a' < ANY (tags);
SELECT check_rows('clean', '''a'' < ANY (tags)');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i = x;
SELECT check_rows('clean', 'i = x');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i + 1 = 6;
SELECT check_rows('clean', 'i + 1 = 6');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE abs(i) = 5;
SELECT check_rows('clean', 'abs(i) = 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i = (random() * 0)::int;
SELECT check_rows('clean', 'i = (random() * 0)::int');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE n::float8 = 5;
SELECT check_rows('clean', 'n::float8 = 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts > now() - interval '1000 years';
SELECT check_rows('clean', 'ts > now() - interval ''1000 years''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts < '2024-01-01'::date;
SELECT check_rows('clean', 'ts < ''2024-01-01''::date');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s = 'abc' COLLATE "C";
SELECT check_rows('clean', 's = ''abc'' COLLATE "C"');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE s > 'a' COLLATE "C" AND s < 'b' COLLATE "C";
SELECT check_rows('clean', 's > ''a'' COLLATE "C" AND s < ''b'' COLLATE "C"');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts = '2024-01-01 00:00:00.001+00'::timestamptz + interval '0';
SELECT check_rows('clean', 'ts = ''2024-01-01 00:00:00.001+00''::timestamptz + interval ''0''');

-- ==== the table 'mixed': on_conversion_error 'null', so prefilters only ====

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM mixed WHERE i = 5;
SELECT check_rows('mixed', 'i = 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM mixed WHERE i <> 5;
SELECT check_rows('mixed', 'i <> 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM mixed WHERE i > 1;
SELECT check_rows('mixed', 'i > 1');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM mixed WHERE i < 6;
SELECT check_rows('mixed', 'i < 6');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM mixed WHERE i IN (1, 5);
SELECT check_rows('mixed', 'i IN (1, 5)');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM mixed WHERE i NOT IN (1);
SELECT check_rows('mixed', 'i NOT IN (1)');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM mixed WHERE i IS NULL;
SELECT check_rows('mixed', 'i IS NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM mixed WHERE i IS NOT NULL;
SELECT check_rows('mixed', 'i IS NOT NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM mixed WHERE s = 'abc';
SELECT check_rows('mixed', 's = ''abc''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM mixed WHERE s <> 'abc';
SELECT check_rows('mixed', 's <> ''abc''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM mixed WHERE s LIKE 'a%';
SELECT check_rows('mixed', 's LIKE ''a%''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM mixed WHERE s NOT LIKE 'a%';
SELECT check_rows('mixed', 's NOT LIKE ''a%''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM mixed WHERE s IS NOT NULL;
SELECT check_rows('mixed', 's IS NOT NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM mixed WHERE b;
SELECT check_rows('mixed', 'b');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM mixed WHERE NOT b;
SELECT check_rows('mixed', 'NOT b');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM mixed WHERE b IS NOT NULL;
SELECT check_rows('mixed', 'b IS NOT NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM mixed WHERE ts > '2023-06-01+00';
SELECT check_rows('mixed', 'ts > ''2023-06-01+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM mixed WHERE ts <> '2024-01-01+00';
SELECT check_rows('mixed', 'ts <> ''2024-01-01+00''');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM mixed WHERE x = 5;
SELECT check_rows('mixed', 'x = 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM mixed WHERE x <> 5;
SELECT check_rows('mixed', 'x <> 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM mixed WHERE x > 5;
SELECT check_rows('mixed', 'x > 5');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM mixed WHERE x IS NOT NULL;
SELECT check_rows('mixed', 'x IS NOT NULL');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM mixed WHERE NOT (i = 5);
SELECT check_rows('mixed', 'NOT (i = 5)');

EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM mixed WHERE NOT (s = 'abc' OR i < 3);
SELECT check_rows('mixed', 'NOT (s = ''abc'' OR i < 3)');

-- ==== _id compared with text: as the string and as an ObjectId ====
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM ids WHERE _id = '5f1d7a2b9c8e4f0012345678';
SELECT * FROM ids WHERE _id = '5f1d7a2b9c8e4f0012345678' ORDER BY k;
SELECT * FROM ids WHERE _id IN ('64a0000000000000000000ff', 'k1') ORDER BY k;
SELECT * FROM ids WHERE _id <> '5f1d7a2b9c8e4f0012345678' ORDER BY k;
SELECT * FROM ids WHERE _id = '5F1D7A2B9C8E4F0012345678' ORDER BY k;

-- ==== parameters: $1, stable expressions, evaluated once per scan ====
PREPARE q_int(bigint) AS SELECT _id FROM clean WHERE i > $1 ORDER BY _id;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE q_int(5);
EXECUTE q_int(5);
EXECUTE q_int(41);
EXECUTE q_int(NULL);
PREPARE q_text(text) AS SELECT _id FROM ids WHERE _id = $1 ORDER BY _id;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE q_text('k1');
EXECUTE q_text('5f1d7a2b9c8e4f0012345678');
EXECUTE q_text('k1');
PREPARE q_in(bigint[]) AS SELECT _id FROM clean WHERE i = ANY ($1) ORDER BY _id;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE q_in('{5,6}');
EXECUTE q_in('{5,6}');
EXECUTE q_in('{7,NULL}');
PREPARE q_ts(timestamptz) AS SELECT _id FROM clean WHERE ts >= $1 ORDER BY _id;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE q_ts('2024-01-01 00:00:00.0005+00');
EXECUTE q_ts('2024-01-01 00:00:00.0005+00');
PREPARE q_num(numeric) AS SELECT _id FROM clean WHERE n > $1 ORDER BY _id;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE q_num(1);
PREPARE q_like(text) AS SELECT _id FROM clean WHERE s LIKE $1 ORDER BY _id;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE q_like('a%');
RESET plan_cache_mode;
-- an initplan's value, known only once the scan runs
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i = (SELECT max(v) FROM (VALUES (5), (6)) t(v)) ORDER BY _id;
SELECT _id FROM clean WHERE i = (SELECT max(v) FROM (VALUES (5), (6)) t(v)) ORDER BY _id;
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE ts > now() - interval '100 years';
SELECT count(*) FROM clean WHERE ts > now() - interval '100 years';
SELECT count(*) FROM local_clean WHERE ts > now() - interval '100 years';

-- ==== the outer row of a nested loop as a parameter (rescans) ====
CREATE TABLE probe (v bigint);
INSERT INTO probe VALUES (5), (6), (42), (NULL);
SET enable_hashjoin = off;
SET enable_mergejoin = off;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT p.v, c._id FROM probe p JOIN LATERAL (SELECT _id FROM clean WHERE i = p.v OFFSET 0) c ON true ORDER BY 1, 2;
SELECT p.v, c._id FROM probe p JOIN LATERAL (SELECT _id FROM clean WHERE i = p.v OFFSET 0) c ON true ORDER BY 1, 2;
SELECT p.v, c._id FROM probe p JOIN LATERAL (SELECT _id FROM local_clean WHERE i = p.v OFFSET 0) c ON true ORDER BY 1, 2;
RESET enable_hashjoin;
RESET enable_mergejoin;

-- ==== the switch: nothing is shipped when it is off ====
SET qleaf_fdw.enable_pushdown = off;
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM clean WHERE i = 5 AND s = 'abc';
RESET qleaf_fdw.enable_pushdown;

-- ==== a pushed condition transfers only the matching documents ====
CREATE FUNCTION documents_received(q text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q LOOP
    IF line ~ '(Documents Received|actual rows)' THEN
      RETURN NEXT line;
    END IF;
  END LOOP;
END $$;
SELECT documents_received('SELECT _id FROM clean WHERE i = 5');
SELECT documents_received('SELECT _id FROM clean WHERE s = ''abc'' AND b');
SELECT documents_received('SELECT _id FROM clean WHERE ts >= ''2024-01-01+00''');
SET qleaf_fdw.enable_pushdown = off;
SELECT documents_received('SELECT _id FROM clean WHERE i = 5');
RESET qleaf_fdw.enable_pushdown;

-- ==== join clauses: parameterized paths, the pipeline runs per outer row ====
CREATE FOREIGN TABLE big (_id int, k int)
  SERVER pushdown_srv OPTIONS (collection 'big');
CREATE TABLE picks (v int);
INSERT INTO picks VALUES (5), (6), (42), (NULL);
ANALYZE picks;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT picks.v, big._id FROM picks JOIN big ON big.k = picks.v;
SELECT picks.v, count(*), sum(big._id) FROM picks JOIN big ON big.k = picks.v
GROUP BY 1 ORDER BY 1;
SELECT documents_received('SELECT picks.v, big._id FROM picks JOIN big ON big.k = picks.v');
SET qleaf_fdw.enable_pushdown = off;
SELECT picks.v, count(*), sum(big._id) FROM picks JOIN big ON big.k = picks.v
GROUP BY 1 ORDER BY 1;
RESET qleaf_fdw.enable_pushdown;
DROP TABLE picks;
DROP FUNCTION documents_received(text);

-- ==== conversion errors: on_conversion_error 'error' (the default) ====
-- A document whose field does not fit its column fails the scan.  With
-- pushdown the scan fails when such a document is matched (its condition
-- columns are fetched and converted); a document the $match excludes is
-- never converted, so its error is not raised.
CREATE FOREIGN TABLE strict (
  _id  int,
  i    bigint
) SERVER pushdown_srv OPTIONS (collection 'mixed');
CREATE FUNCTION outcome(cond text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  n int;
BEGIN
  EXECUTE format('SELECT count(*) FROM strict WHERE %s', cond) INTO n;
  RETURN format('%s rows', n);
EXCEPTION WHEN OTHERS THEN
  RETURN 'error: ' || sqlerrm;
END $$;
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM strict WHERE i <> 5;
SELECT outcome('i <> 5');
SELECT outcome('i = 5');
SELECT outcome('i = 1000');
SELECT outcome('i IS NOT NULL');
SET qleaf_fdw.enable_pushdown = off;
SELECT outcome('i = 1000');
RESET qleaf_fdw.enable_pushdown;
DROP FUNCTION outcome(text);

-- varchar(n) shortens values with trailing spaces that MongoDB compares
-- in full, so its conditions stay local
CREATE FOREIGN TABLE short_s (_id int, s varchar(3))
  SERVER pushdown_srv OPTIONS (collection 'clean', on_conversion_error 'null');
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM short_s WHERE s = 'abc';
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM short_s WHERE s LIKE 'a%';
-- unbounded varchar is text
CREATE FOREIGN TABLE long_s (_id int, s varchar)
  SERVER pushdown_srv OPTIONS (collection 'clean');
EXPLAIN (VERBOSE, COSTS OFF) SELECT _id FROM long_s WHERE s = 'abc';

-- ILIKE under a collation other than "C" folds case by that collation's
-- rules (which may change a string's length): kept local
EXPLAIN (VERBOSE, COSTS OFF)
SELECT _id FROM clean WHERE s COLLATE "en-x-icu" ILIKE 'ab%';
EXPLAIN (VERBOSE, COSTS OFF)
SELECT _id FROM clean WHERE s COLLATE "en-x-icu" NOT ILIKE 'ab%';
SELECT (SELECT count(*) FROM clean WHERE s COLLATE "en-x-icu" ILIKE 'ab%') =
       (SELECT count(*) FROM local_clean WHERE s COLLATE "en-x-icu" ILIKE 'ab%')
       AS same_rows;

DROP SERVER pushdown_srv CASCADE;
DROP TABLE local_clean, local_mixed, probe;
DROP FUNCTION check_rows(text, text);

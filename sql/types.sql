--
-- Type mapping, BSON -> PostgreSQL: what each column type accepts, edge
-- values, and the error for a value that does not fit its column.
-- Tables with on_conversion_error 'null' show every value of a collection
-- at once (a value a type does not accept is NULL there); table t_bad then
-- shows each error.
--
\! /usr/bin/python3 test/fixtures/load.py bsontypes
\getenv uri QLEAF_MONGODB_URI

CREATE SERVER types_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_types');
CREATE USER MAPPING FOR CURRENT_USER SERVER types_srv;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
-- long values shortened for display
CREATE FUNCTION short(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN length(t) > 60
              THEN left(t, 24) || '...' || right(t, 8) || ' (' || length(t) || ' chars)'
              ELSE t END
$$;

--
-- Numbers: int32/int64 limits, integral and fractional doubles, NaN,
-- +-Infinity, Decimal128 (integral, scaled, extreme, NaN, +-Infinity), and
-- a string, a bool, a null and a missing field (37, 38).
--
CREATE FOREIGN TABLE t_num (
  _id int,
  raw jsonb OPTIONS (field 'v'),
  i2  smallint OPTIONS (field 'v'),
  i4  integer OPTIONS (field 'v'),
  i8  bigint OPTIONS (field 'v'),
  f4  real OPTIONS (field 'v'),
  f8  double precision OPTIONS (field 'v'),
  n   numeric OPTIONS (field 'v'),
  n52 numeric(5,2) OPTIONS (field 'v')
) SERVER types_srv OPTIONS (collection 'num', on_conversion_error 'null');

SELECT _id, short(raw::text) AS raw, i2, i4, i8 FROM t_num ORDER BY _id;
SELECT _id, short(raw::text) AS raw, f4, f8 FROM t_num ORDER BY _id;
-- numeric is exact: a double becomes its exact binary value, Decimal128
-- keeps its digits and scale; NaN and +-Infinity are kept
SELECT _id, short(raw::text) AS raw, short(n::text) AS n, n52
FROM t_num ORDER BY _id;
-- the exact numeric of a double converts back to the same double
SELECT _id, n::float8 = f8 AS same_double FROM t_num
WHERE _id IN (10, 11, 13, 29, 30, 31, 32, 42) ORDER BY _id;
-- the Decimal128 extremes are all there: 34 significant digits, exponents
-- +6111 and -6176
SELECT _id, scale(n), n = trunc(n) AS integral, length(trim(trailing '0' from n::text)) AS len
FROM t_num WHERE _id IN (25, 26, 41) ORDER BY _id;
SELECT n = '9999999999999999999999999999999999'::numeric * 10::numeric ^ 6111 AS max_exact
FROM t_num WHERE _id = 25;

--
-- Strings: text, varchar(n), char(n), name; ObjectId as 24 hex digits.
--
CREATE FOREIGN TABLE t_str (
  _id int,
  t   text OPTIONS (field 'v'),
  vc  varchar(5) OPTIONS (field 'v'),
  c   char(5) OPTIONS (field 'v'),
  nm  name OPTIONS (field 'v'),
  raw json OPTIONS (field 'v')
) SERVER types_srv OPTIONS (collection 'str', on_conversion_error 'null');

SELECT _id, CASE WHEN _id = 10 THEN left(t, 10) || '...' ELSE t END AS t,
       length(t) AS chars, octet_length(t) AS bytes, vc, c || '|' AS c_padded,
       length(nm::text) AS name_len
FROM t_str ORDER BY _id;
SELECT _id, raw FROM t_str WHERE _id IN (3, 5, 7, 8, 11) ORDER BY _id;
SELECT t = '' AS empty, t IS NULL AS is_null FROM t_str WHERE _id = 2;

--
-- Binary: bytea from any subtype and from ObjectId; uuid from subtypes 4
-- and 3 only.
--
CREATE FOREIGN TABLE t_bin (
  _id int,
  b   bytea OPTIONS (field 'v'),
  u   uuid OPTIONS (field 'v'),
  raw jsonb OPTIONS (field 'v')
) SERVER types_srv OPTIONS (collection 'bin', on_conversion_error 'null');

SELECT * FROM t_bin ORDER BY _id;

--
-- Dates: BSON dates (ms since 1970, UTC) and Timestamps.
--
CREATE FOREIGN TABLE t_dt (
  _id int,
  tz  timestamptz OPTIONS (field 'v'),
  ts  timestamp OPTIONS (field 'v'),
  ts0 timestamp(0) OPTIONS (field 'v'),
  d   date OPTIONS (field 'v'),
  raw jsonb OPTIONS (field 'v')
) SERVER types_srv OPTIONS (collection 'dt', on_conversion_error 'null');

SELECT * FROM t_dt ORDER BY _id;
-- timestamp without time zone is the UTC wall clock, whatever TimeZone is
SET timezone = 'America/New_York';
SELECT _id, tz, ts FROM t_dt WHERE _id IN (1, 2) ORDER BY _id;
SET timezone = 'UTC';

--
-- Arrays: PostgreSQL arrays of scalars from BSON arrays; BSON nulls are
-- NULL elements; one element that does not fit makes the value NULL here
-- (an error without on_conversion_error).
--
CREATE FOREIGN TABLE t_arr (
  _id int,
  ia  int[] OPTIONS (field 'v'),
  fa  float8[] OPTIONS (field 'v'),
  na  numeric[] OPTIONS (field 'v'),
  ta  text[] OPTIONS (field 'v'),
  da  timestamptz[] OPTIONS (field 'v'),
  ja  jsonb[] OPTIONS (field 'v'),
  raw jsonb OPTIONS (field 'v')
) SERVER types_srv OPTIONS (collection 'arr', on_conversion_error 'null');

SELECT _id, raw, ia, fa, na, ta FROM t_arr ORDER BY _id;
SELECT _id, da, ja FROM t_arr ORDER BY _id;
SELECT array_length(ia, 1), cardinality(ta), ia = '{}' AS empty FROM t_arr WHERE _id = 2;

--
-- json and jsonb take any value, in MongoDB Extended JSON (relaxed).
--
CREATE FOREIGN TABLE t_js (
  _id int,
  j   jsonb OPTIONS (field 'v'),
  jt  json OPTIONS (field 'v')
) SERVER types_srv OPTIONS (collection 'js');

SELECT _id, j FROM t_js ORDER BY _id;
SELECT _id, jt FROM t_js ORDER BY _id;
-- each BSON type on its own line
SELECT key, value, jsonb_typeof(value) FROM t_js, jsonb_each(j) WHERE _id = 1 ORDER BY key;
-- json and jsonb say the same
SELECT _id, jt::jsonb = j AS same FROM t_js ORDER BY _id;
-- a BSON null is SQL NULL, not JSON null
SELECT j IS NULL AS sql_null FROM t_js WHERE _id = 6;

--
-- Errors: each column of t_bad meets exactly one bad value.
--
CREATE FOREIGN TABLE t_bad (
  _id jsonb,
  int2_range smallint,
  int4_range integer,
  int8_range bigint,
  int_fraction integer,
  int_nan integer,
  int_type integer,
  bool_type boolean,
  text_type text,
  text_nul text,
  float4_range real,
  uuid_subtype uuid,
  date_type timestamptz,
  array_type int[],
  array_elem int[],
  varchar_len varchar(5),
  numeric_typmod numeric(5,2),
  dec_float_range float8,
  inet_text inet
) SERVER types_srv OPTIONS (collection 'bad');

SELECT int2_range FROM t_bad;
SELECT int4_range FROM t_bad;
SELECT int8_range FROM t_bad;
SELECT int_fraction FROM t_bad;
SELECT int_nan FROM t_bad;
SELECT int_type FROM t_bad;
SELECT bool_type FROM t_bad;
SELECT text_type FROM t_bad;
SELECT text_nul FROM t_bad;
SELECT float4_range FROM t_bad;
SELECT uuid_subtype FROM t_bad;
SELECT date_type FROM t_bad;
SELECT array_type FROM t_bad;
SELECT array_elem FROM t_bad;
SELECT varchar_len FROM t_bad;
SELECT numeric_typmod FROM t_bad;
SELECT dec_float_range FROM t_bad;
-- a type read through its input function: its own error, with context
SELECT inet_text FROM t_bad;
-- json (text) can hold a NUL byte as \u0000; jsonb cannot
CREATE FOREIGN TABLE t_nul (
  _id jsonb,
  jt  json OPTIONS (field 'text_nul'),
  j   jsonb OPTIONS (field 'text_nul')
) SERVER types_srv OPTIONS (collection 'bad');
SELECT jt FROM t_nul WHERE jt IS NOT NULL;
SELECT j FROM t_nul;

-- on_conversion_error 'null' on the table: every bad value is NULL
-- (input function errors stay errors)
ALTER FOREIGN TABLE t_bad OPTIONS (ADD on_conversion_error 'null');
SELECT count(*) AS rows,
       count(int2_range) + count(int4_range) + count(int8_range) +
       count(int_fraction) + count(int_nan) + count(int_type) +
       count(bool_type) + count(text_type) + count(text_nul) +
       count(float4_range) + count(uuid_subtype) + count(date_type) +
       count(array_type) + count(array_elem) + count(varchar_len) +
       count(numeric_typmod) + count(dec_float_range) AS non_null
FROM t_bad;
-- a column saying 'error' overrides the table's 'null'
ALTER FOREIGN TABLE t_bad ALTER COLUMN int2_range OPTIONS (ADD on_conversion_error 'error');
SELECT int2_range FROM t_bad;
SELECT count(int4_range) FROM t_bad;
-- and a column saying 'null' overrides the table's 'error'
ALTER FOREIGN TABLE t_bad OPTIONS (SET on_conversion_error 'error');
ALTER FOREIGN TABLE t_bad ALTER COLUMN int2_range OPTIONS (SET on_conversion_error 'null');
SELECT count(int2_range) FROM t_bad;
SELECT int4_range FROM t_bad;

-- domains: converted as their base type, then their constraints apply
CREATE DOMAIN small_pos AS int CHECK (VALUE > 0 AND VALUE < 100);
CREATE FOREIGN TABLE t_dom (_id int, ok small_pos, v small_pos)
  SERVER types_srv OPTIONS (collection 'dom');
SELECT _id, ok FROM t_dom ORDER BY _id;
SELECT v FROM t_dom;
-- with on_conversion_error 'null' too: the value converts, the domain refuses it
ALTER FOREIGN TABLE t_dom OPTIONS (ADD on_conversion_error 'null');
SELECT v FROM t_dom;

-- a column type qleaf_fdw cannot map
CREATE TYPE pair AS (a int, b int);
CREATE FOREIGN TABLE t_composite (_id int, v pair)
  SERVER types_srv OPTIONS (collection 'num');
SELECT v FROM t_composite;

SET client_min_messages = warning;
DROP SERVER types_srv CASCADE;
RESET client_min_messages;
DROP FUNCTION short(text);
DROP DOMAIN small_pos;
DROP TYPE pair;
RESET timezone;
RESET datestyle;

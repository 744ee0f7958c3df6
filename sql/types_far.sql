--
-- BSON dates beyond PostgreSQL's range: timestamps end before 294277 AD
-- and begin at 4714-11-24 BC, dates reach 5874897 AD.  A value out of its
-- column's range is an error, or NULL with on_conversion_error 'null'.
-- The stand-in cannot store such dates (test/fixtures/bsontypes_far.py):
-- there the collections stay empty and expected/types_far_1.out applies.
--
\! /usr/bin/python3 test/fixtures/load.py bsontypes_far
\getenv uri QLEAF_MONGODB_URI

CREATE SERVER types_far_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_types_far');
CREATE USER MAPPING FOR CURRENT_USER SERVER types_far_srv;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

CREATE FOREIGN TABLE t_far (
  _id int,
  tz  timestamptz OPTIONS (field 'v'),
  ts  timestamp OPTIONS (field 'v'),
  d   date OPTIONS (field 'v'),
  raw jsonb OPTIONS (field 'v')
) SERVER types_far_srv OPTIONS (collection 'far', on_conversion_error 'null');

SELECT count(*) AS far_dates_stored FROM t_far;
SELECT * FROM t_far ORDER BY _id;

-- the first millisecond after PostgreSQL's timestamps
CREATE FOREIGN TABLE t_far_one (_id int, v timestamptz, d date OPTIONS (field 'v'))
  SERVER types_far_srv OPTIONS (collection 'far_one');
SELECT _id, d FROM t_far_one;
SELECT _id, v FROM t_far_one;

SET client_min_messages = warning;
DROP SERVER types_far_srv CASCADE;
RESET client_min_messages;
RESET timezone;
RESET datestyle;

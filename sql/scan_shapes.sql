--
-- Scans over documents whose shape changes from one to the next: every
-- value is the same as when its document is read alone.
--
\! /usr/bin/python3 test/fixtures/load.py scan_shapes
\getenv uri QLEAF_MONGODB_URI

CREATE SERVER shapes_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_scan_shapes');
CREATE USER MAPPING FOR CURRENT_USER SERVER shapes_srv;
SET qleaf_fdw.enable_pushdown = off;
SET datestyle = 'ISO, YMD';

-- columns of the fast conversions; values they do not take become NULL
CREATE FOREIGN TABLE shapes (
  _id bigint, i bigint, s text, b boolean, n numeric, o text
) SERVER shapes_srv OPTIONS (on_conversion_error 'null');
SELECT * FROM shapes ORDER BY _id;

-- the same documents one at a time
SELECT (SELECT row(s.*)::text FROM shapes s WHERE s._id = k) AS alone
FROM generate_series(1, 10) k ORDER BY k;

-- an _id fetched for two columns, and columns of other types
CREATE FOREIGN TABLE shapes2 (
  id1 bigint OPTIONS (field '_id'), id2 text OPTIONS (field '_id'),
  i int, s varchar(4), n float8, o bytea
) SERVER shapes_srv OPTIONS (collection 'shapes', on_conversion_error 'null');
SELECT * FROM shapes2 ORDER BY id1;

-- values the fast conversions take, or hand on, at their edges
CREATE FOREIGN TABLE edges (_id int, s text, n numeric, d timestamp)
  SERVER shapes_srv OPTIONS (on_conversion_error 'null');
SELECT _id, s, length(s), octet_length(s), n, d FROM edges ORDER BY _id;

-- a value that does not fit is still an error naming the column, the
-- field, the BSON type and the _id
CREATE FOREIGN TABLE shapes_strict (_id bigint, i int, o text)
  SERVER shapes_srv OPTIONS (collection 'shapes');
SELECT * FROM shapes_strict ORDER BY _id;

DROP SERVER shapes_srv CASCADE;
RESET datestyle;
RESET qleaf_fdw.enable_pushdown;

--
-- Strings in a database whose encoding is not UTF-8 (LATIN1): BSON's UTF-8
-- is converted; a character LATIN1 cannot represent makes the value not
-- fit its column: an error naming the column, or NULL with
-- on_conversion_error 'null'.
--
\! /usr/bin/python3 test/fixtures/load.py bsontypes
\getenv uri QLEAF_MONGODB_URI
\set regress_db :DBNAME

CREATE DATABASE qleaf_regress_latin1 ENCODING 'LATIN1'
  LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
\c qleaf_regress_latin1
SET client_encoding = 'UTF8';
CREATE EXTENSION qleaf_fdw;
CREATE SERVER enc_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_types');
CREATE USER MAPPING FOR CURRENT_USER SERVER enc_srv;

CREATE FOREIGN TABLE t_str (
  _id int,
  t   text OPTIONS (field 'v'),
  vc  varchar(5) OPTIONS (field 'v'),
  jt  json OPTIONS (field 'v'),
  j   jsonb OPTIONS (field 'v')
) SERVER enc_srv OPTIONS (collection 'str', on_conversion_error 'null');

-- 3 converts (one byte per character in LATIN1); 4 (Japanese), 5 (emoji)
-- and 12 (Hebrew) do not
SELECT _id, t, length(t) AS chars, octet_length(t) AS bytes, vc, jt, j
FROM t_str WHERE _id IN (1, 3, 4, 5, 7, 12) ORDER BY _id;

ALTER FOREIGN TABLE t_str OPTIONS (SET on_conversion_error 'error');
SELECT _id, t FROM t_str;
SELECT _id, jt FROM t_str;
SELECT _id, j FROM t_str;

\c :regress_db
DROP DATABASE qleaf_regress_latin1;

--
-- Type mapping at the limits: a document nested 90 levels deep, and
-- documents of 16 MB (BSON's limit is 16 MiB) read as text and as jsonb.
--
\! /usr/bin/python3 test/fixtures/load.py bsontypes_large
\getenv uri QLEAF_MONGODB_URI

CREATE SERVER types_large_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_types_large');
CREATE USER MAPPING FOR CURRENT_USER SERVER types_large_srv;

-- 90 levels: a.a. ... .a.leaf
SELECT string_agg('a', '.') || '.leaf' AS leaf_path,
       string_agg('a', '.') || '.n' AS n_path
FROM generate_series(1, 90) \gset
CREATE FOREIGN TABLE t_deep (
  _id  int,
  leaf text OPTIONS (field :'leaf_path'),
  n    int OPTIONS (field :'n_path'),
  j    jsonb OPTIONS (field 'a'),
  jt   json OPTIONS (field 'a')
) SERVER types_large_srv OPTIONS (collection 'deep');

SELECT _id, leaf, n FROM t_deep;
-- the jsonb holds all 90 levels: 89 more "a" keys under the top one
SELECT j #>> (array_fill('a'::text, ARRAY[89]) || ARRAY['leaf']) AS leaf_via_jsonb,
       (SELECT count(*) FROM regexp_matches(jt::text, '\{', 'g')) AS objects,
       jt::jsonb = j AS same
FROM t_deep;

-- 16 MB: one string of 16776170 bytes, one array of 129037 documents
CREATE FOREIGN TABLE t_big (
  _id int,
  s   text,
  a   jsonb,
  ai  int[] OPTIONS (field 'a.i')
) SERVER types_large_srv OPTIONS (collection 'big');

SELECT _id, length(s) AS s_len,
       s = left(repeat('0123456789abcdef', 1048576), length(s)) AS s_exact
FROM t_big ORDER BY _id;
SELECT _id, jsonb_array_length(a) AS items, a -> -1 ->> 'i' AS last_i,
       length(a -> 0 ->> 'pad') AS pad_len
FROM t_big WHERE a IS NOT NULL;
SELECT _id, cardinality(ai) AS n, ai[1] AS first, ai[129037] AS last,
       ai = ARRAY(SELECT generate_series(0, 129036)) AS all_there
FROM t_big WHERE ai IS NOT NULL;

SET client_min_messages = warning;
DROP SERVER types_large_srv CASCADE;
RESET client_min_messages;

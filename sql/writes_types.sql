--
-- Writes of every column type: each value written, read back, equal to
-- the same value in a local table; the BSON types MongoDB stores, shown
-- through the whole document; values BSON cannot hold exactly.
--
\! /usr/bin/python3 test/fixtures/load.py writes
\getenv uri QLEAF_MONGODB_URI
-- (dates stay within years 1 to 9999, which the stand-in's BSON library handles)

CREATE SERVER wtypes_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_writes');
CREATE USER MAPPING FOR CURRENT_USER SERVER wtypes_srv;
CREATE TYPE wmood AS ENUM ('sad', 'ok', 'happy');

CREATE TABLE typed_local (
  _id int, i2 smallint, i4 int, i8 bigint, f4 real, f8 float8,
  n numeric, nd numeric, b boolean, t text, vc varchar(10), ch char(5),
  nm name, by bytea, u uuid, d date, ts timestamp(3), tz timestamptz(3),
  oid text, oids text[], ia int[], ta text[], j json, jb jsonb, mood wmood,
  iv interval
);
CREATE FOREIGN TABLE typed (
  _id int, i2 smallint, i4 int, i8 bigint, f4 real, f8 float8,
  n numeric, nd numeric OPTIONS (bson_type 'double'), b boolean, t text,
  vc varchar(10), ch char(5), nm name, by bytea, u uuid, d date,
  ts timestamp(3), tz timestamptz(3),
  oid text OPTIONS (bson_type 'objectId'), oids text[] OPTIONS (bson_type 'objectId'),
  ia int[], ta text[], j json, jb jsonb, mood wmood, iv interval
) SERVER wtypes_srv;
CREATE FOREIGN TABLE typed_docs (_id int, doc jsonb OPTIONS (field '$$ROOT'))
  SERVER wtypes_srv OPTIONS (collection 'typed');

SET timezone = 'UTC';
CREATE TEMP TABLE src AS SELECT * FROM typed_local WITH NO DATA;
INSERT INTO src VALUES
 (1, 32767, -2147483648, 9223372036854775807, 1.5, 0.1,
  1234567890123456789.012345678901234, 0.5, true, 'héllo', 'short', 'ab',
  'a name', '\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '2024-02-29', '2024-02-29 12:34:56.789', '1969-12-31 23:59:59.999+00',
  '5f1d7a3e9b1e8a0012345678', '{5f1d7a3e9b1e8a0012345678,5f1d7a3e9b1e8a00123456ff}',
  '{1,NULL,3}', '{"a",NULL,""}', '{"k": [1, 2.5, "x", null, true]}',
  '{"k": {"n": 1}, "e": [], "o": {}}', 'happy', '1 day 02:00:00'),
 (2, -32768, 0, -9223372036854775808, 'NaN', 'Infinity', 'NaN', 'Infinity',
  false, '', '', '', '', '\x', '00000000-0000-0000-0000-000000000000',
  '0001-01-01', '1900-01-01 00:00:00', '2262-04-11 23:47:16.854+00',
  '000000000000000000000000', '{}', '{}', '{}', '[]', '[1, "two"]', 'sad',
  '-1 mons'),
 (3, NULL, NULL, NULL, '-Infinity', '-Infinity', '-Infinity', '1125899906842624', NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, '{"n": null}', '"a string"', NULL, NULL),
 (4, 1, 1, 1, 3.4e38, 1.7976931348623157e308, 1.50, -0.25, true, 'x', 'x',
  'x', 'x', 'x', NULL, '9999-12-31', '0001-01-01 00:00:00', NULL, NULL,
  NULL, NULL, NULL, '{"a": {"b": {"c": [[1], [2]]}}}', '12.0', 'ok', NULL),
 (5, 0, 0, 0, -0.0, 5e-324, -1.23e-20, 0.00000095367431640625, false, 'ünïcödé ✓', NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '{"\"quoted\""}',
  '1.0', '100000000000000000000', NULL, NULL);
INSERT INTO typed SELECT * FROM src;
INSERT INTO typed_local SELECT * FROM src;

-- every value reads back equal (json compared as jsonb)
SELECT _id, i2, i4, i8, f4, f8, n, nd, b, t, vc, ch, nm, by, u, d, ts, tz, oid, oids, ia, ta, j::jsonb, jb, mood, iv FROM typed
EXCEPT
SELECT _id, i2, i4, i8, f4, f8, n, nd, b, t, vc, ch, nm, by, u, d, ts, tz, oid, oids, ia, ta, j::jsonb, jb, mood, iv FROM typed_local;
SELECT _id, i2, i4, i8, f4, f8, n, nd, b, t, vc, ch, nm, by, u, d, ts, tz, oid, oids, ia, ta, j::jsonb, jb, mood, iv FROM typed_local
EXCEPT
SELECT _id, i2, i4, i8, f4, f8, n, nd, b, t, vc, ch, nm, by, u, d, ts, tz, oid, oids, ia, ta, j::jsonb, jb, mood, iv FROM typed;
SELECT count(*) FROM typed;
-- a JSON null is BSON null, which reads back as SQL NULL
INSERT INTO typed (_id, j, jb) VALUES (6, 'null', 'null') RETURNING j IS NULL AS j_null, jb IS NULL AS jb_null;
DELETE FROM typed WHERE _id = 6;

-- the BSON types stored
SELECT _id, doc FROM typed_docs ORDER BY _id;

-- Extended JSON wrappers in json values become their BSON types
INSERT INTO typed (_id, jb) VALUES (10, '{
  "oid": {"$oid": "5f1d7a3e9b1e8a0012345678"},
  "date": {"$date": "2024-01-02T03:04:05.678Z"},
  "old": {"$date": {"$numberLong": "-62135596800000"}},
  "dec": {"$numberDecimal": "1.10"},
  "long": {"$numberLong": "5"}, "int": {"$numberInt": "7"},
  "nan": {"$numberDouble": "NaN"}, "inf": {"$numberDouble": "-Infinity"},
  "bin": {"$binary": {"base64": "AQID", "subType": "80"}},
  "re": {"$regularExpression": {"pattern": "^a.c", "options": "ix"}},
  "ts": {"$timestamp": {"t": 1700000000, "i": 7}},
  "min": {"$minKey": 1}, "max": {"$maxKey": 1}, "undef": {"$undefined": true},
  "sym": {"$symbol": "s"}, "code": {"$code": "f()"},
  "ref": {"$ref": "coll", "$id": 5, "$db": "other"},
  "scoped": {"$code": "g()", "$scope": {"x": 1}},
  "ptr": {"$dbPointer": {"$ref": "coll", "$id": {"$oid": "5f1d7a3e9b1e8a0012345678"}}},
  "nested": [{"$oid": "5f1d7a3e9b1e8a00123456ff"}, {"d": {"$numberDecimal": "-0E+3"}}]
}') RETURNING jb;
SELECT doc FROM typed_docs WHERE _id = 10;
-- a document's jsonb written back through the whole-document column is the same document
CREATE FOREIGN TABLE typed_docs2 (_id int, doc jsonb OPTIONS (field '$$ROOT'))
  SERVER wtypes_srv OPTIONS (collection 'typed');
INSERT INTO typed_docs2 (_id, doc)
  SELECT 100 + _id, doc - '_id' FROM typed_docs WHERE _id IN (1, 2, 4, 5);
SELECT a._id, (a.doc - '_id') = (b.doc - '_id') AS same
FROM typed_docs a JOIN typed_docs b ON b._id = a._id + 100 ORDER BY a._id;

-- values BSON cannot hold exactly are errors
INSERT INTO typed (_id, n) VALUES (20, 1234567890123456789012345678901234.5);
INSERT INTO typed (_id, n) VALUES (20, 1e-7000);
INSERT INTO typed (_id, n) VALUES (20, 10000000000000000000000000000000000000000) RETURNING n;
CREATE FOREIGN TABLE typed_us (_id int, tz timestamptz, ts timestamp, d date)
  SERVER wtypes_srv OPTIONS (collection 'typed');
INSERT INTO typed_us (_id, tz) VALUES (21, '2024-01-01 00:00:00.123456+00');
INSERT INTO typed_us (_id, ts) VALUES (21, 'infinity');
INSERT INTO typed_us (_id, d) VALUES (21, '-infinity');
INSERT INTO typed_us (_id, tz) VALUES (21, '2024-01-01 00:00:00.123+00') RETURNING tz;
INSERT INTO typed (_id, oid) VALUES (22, 'not an objectid');
INSERT INTO typed (_id, ia) VALUES (22, '{{1,2},{3,4}}');
INSERT INTO typed (_id, jb) VALUES (22, '{"x": {"$oid": "zz"}}');
INSERT INTO typed (_id, jb) VALUES (22, '{"x": {"$numberDecimal": "abc"}}');
INSERT INTO typed (_id, jb) VALUES (22, '{"x": {"$date": "yesterday-ish"}}');
INSERT INTO typed (_id, jb) VALUES (22, '{"x": {"$oid": "5f1d7a3e9b1e8a0012345678", "extra": 1}}');
INSERT INTO typed (_id, jb) VALUES (22, '{"x": 1e400}');
SELECT count(*) FROM typed WHERE _id >= 20;

-- a text _id: 24 hex digits are an ObjectId, anything else a string
CREATE FOREIGN TABLE typed_tid (_id text, k int) SERVER wtypes_srv OPTIONS (collection 'typed_tid');
CREATE FOREIGN TABLE typed_tid_docs (_id text, doc jsonb OPTIONS (field '$$ROOT'))
  SERVER wtypes_srv OPTIONS (collection 'typed_tid');
INSERT INTO typed_tid VALUES ('5f1d7a3e9b1e8a0012345678', 1), ('plain', 2);
SELECT doc FROM typed_tid_docs ORDER BY doc->>'k';
UPDATE typed_tid SET k = k + 10 RETURNING _id, k;
DELETE FROM typed_tid RETURNING _id, k;

DROP SERVER wtypes_srv CASCADE;
DROP TABLE typed_local, src;
DROP TYPE wmood;

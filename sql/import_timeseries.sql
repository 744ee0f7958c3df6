--
-- Time series collections: IMPORT FOREIGN SCHEMA leaves them (and their
-- system.buckets collections) out; a foreign table defined by hand over
-- one reads its measurements, WHERE pushed down on the time field and on
-- metaField subfields; INSERT (outside MongoDB transactions) adds
-- measurements, UPDATE and DELETE on the metaField work; a changes table
-- over one gets MongoDB's refusal.
--
\! /usr/bin/python3 test/fixtures/load.py import_timeseries
\getenv uri QLEAF_MONGODB_URI

CREATE SERVER ts_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_import_timeseries');
CREATE USER MAPPING FOR CURRENT_USER SERVER ts_srv;
SET timezone = 'UTC';

-- only sensors is imported (with its changes table): readings is a time
-- series collection, system.buckets.readings its bucket collection
CREATE SCHEMA impts;
IMPORT FOREIGN SCHEMA qleaf_regress_import_timeseries FROM SERVER ts_srv INTO impts
  OPTIONS (changes 'true');
SELECT c.relname, array_to_string(t.ftoptions, ', ') AS options
FROM pg_class c JOIN pg_foreign_table t ON t.ftrelid = c.oid
WHERE c.relnamespace = 'impts'::regnamespace ORDER BY 1;
-- naming it in LIMIT TO imports nothing for it, nor does naming its
-- bucket collection
IMPORT FOREIGN SCHEMA qleaf_regress_import_timeseries LIMIT TO (readings, readings_changes)
  FROM SERVER ts_srv INTO impts OPTIONS (changes 'true');
IMPORT FOREIGN SCHEMA qleaf_regress_import_timeseries LIMIT TO ("system.buckets.readings")
  FROM SERVER ts_srv INTO impts;
SELECT count(*) FROM pg_class WHERE relnamespace = 'impts'::regnamespace;
SELECT * FROM impts.sensors ORDER BY _id;

-- a foreign table over the time series collection, by hand: measurements
-- read as documents, metaField subfields as columns
CREATE FOREIGN TABLE readings (
  _id    int,
  t      timestamptz,
  sensor text OPTIONS (field 'meta.sensor'),
  site   int OPTIONS (field 'meta.site'),
  temp   double precision
) SERVER ts_srv OPTIONS (collection 'readings');
SELECT * FROM readings ORDER BY _id;
-- WHERE on the time field is pushed down (dates)
EXPLAIN (VERBOSE, COSTS OFF)
SELECT _id, temp FROM readings
WHERE t >= '2024-03-01 12:05:00+00' AND t < '2024-03-01 12:20:00+00';
SELECT _id, temp FROM readings
WHERE t >= '2024-03-01 12:05:00+00' AND t < '2024-03-01 12:20:00+00' ORDER BY _id;
-- and on metaField subfields
EXPLAIN (VERBOSE, COSTS OFF)
SELECT _id, t FROM readings WHERE sensor = 'a' AND site = 1;
SELECT _id, t FROM readings WHERE sensor = 'a' AND site = 1 ORDER BY t;
SELECT sensor, count(*), max(temp) FROM readings GROUP BY sensor ORDER BY sensor;

-- writes: MongoDB takes no writes to a time series collection in a
-- transaction (error 263), and the table's writes run in one by default
-- (MongoDB aborts that transaction: ROLLBACK)
BEGIN;
DO $$
DECLARE
  detail text;
BEGIN
  INSERT INTO readings (_id, t, sensor, site, temp)
    VALUES (7, '2024-03-01 12:30:00+00', 'c', 3, 19.25);
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
  RAISE NOTICE 'SQLSTATE %: %', SQLSTATE, SQLERRM;
  RAISE NOTICE 'refused in a transaction: %',
    detail ~ '^MongoDB error 263\y.*Cannot insert into a time-series collection in a multi-document transaction';
END $$;
ROLLBACK;
-- with transactions 'false' each write commits at once: INSERT adds
-- measurements
ALTER FOREIGN TABLE readings OPTIONS (ADD transactions 'false');
INSERT INTO readings (_id, t, sensor, site, temp)
  VALUES (7, '2024-03-01 12:30:00+00', 'c', 3, 19.25),
         (8, '2024-03-01 12:35:00+00', 'c', 3, 19.5);
SELECT * FROM readings WHERE sensor = 'c' ORDER BY _id;
-- a measurement without a date in the time field: MongoDB refuses it with
-- error 2 (the message's wording varies a little between versions)
DO $$
DECLARE
  detail text;
BEGIN
  INSERT INTO readings (_id, sensor, site, temp) VALUES (9, 'c', 3, 1.0);
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
  RAISE NOTICE 'SQLSTATE %: %', SQLSTATE, SQLERRM;
  RAISE NOTICE 'refused for its time field: %',
    detail ~ '^MongoDB error 2\y.*''t'' must be present and? contain a valid BSON UTC datetime value';
END $$;
SELECT count(*) FROM readings;
-- UPDATE and DELETE sent as one update / delete on the metaField only,
-- which every MongoDB with time series collections (5.1 on) takes.  Other
-- updates and deletes, and those of rows one by one (findAndModify), depend
-- on the version (see docs/import.md) and are not run here.
EXPLAIN (VERBOSE, COSTS OFF) UPDATE readings SET site = 4 WHERE sensor = 'c';
UPDATE readings SET site = 4 WHERE sensor = 'c';
SELECT _id, sensor, site FROM readings WHERE site = 4 ORDER BY _id;
EXPLAIN (VERBOSE, COSTS OFF) DELETE FROM readings WHERE sensor = 'c';
DELETE FROM readings WHERE sensor = 'c';
SELECT count(*) FROM readings;

-- a changes table over it: MongoDB refuses change streams on time series
-- collections (error 166)
CREATE FOREIGN TABLE readings_changes (
  operation_type text,
  document_key   jsonb
) SERVER ts_srv OPTIONS (changes 'true', collection 'readings');
DO $$
DECLARE
  detail text;
BEGIN
  PERFORM * FROM readings_changes;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
  RAISE NOTICE 'SQLSTATE %: %', SQLSTATE, SQLERRM;
  RAISE NOTICE 'refused as a time series collection: %',
    detail ~ '^MongoDB error 166\y.*timeseries';
END $$;
RESET timezone;
DROP SCHEMA impts CASCADE;
DROP SERVER ts_srv CASCADE;

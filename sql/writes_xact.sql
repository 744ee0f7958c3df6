--
-- Writes and transactions: a PostgreSQL transaction's writes run in one
-- MongoDB transaction, committed with it and rolled back with it.
-- "other" is a second server on the same MongoDB: its own connection,
-- outside our transactions, shows what is committed.
--
\! /usr/bin/python3 test/fixtures/load.py writes
\getenv uri QLEAF_MONGODB_URI

CREATE SERVER wx_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_writes');
CREATE USER MAPPING FOR CURRENT_USER SERVER wx_srv;
CREATE SERVER wx_other FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_writes');
CREATE USER MAPPING FOR CURRENT_USER SERVER wx_other;

CREATE FOREIGN TABLE events (_id int, kind text, n int) SERVER wx_srv;
CREATE FOREIGN TABLE events_auto (_id int, kind text, n int)
  SERVER wx_srv OPTIONS (collection 'events', transactions 'false');
CREATE FOREIGN TABLE other (_id int, kind text, n int)
  SERVER wx_other OPTIONS (collection 'events');

-- ROLLBACK leaves the collection unchanged; the transaction sees its writes
BEGIN;
INSERT INTO events VALUES (1, 'a', 1), (2, 'b', 2);
UPDATE events SET n = 10 WHERE _id = 1;
SELECT * FROM events ORDER BY _id;
SELECT count(*) AS committed FROM other;
ROLLBACK;
SELECT count(*) FROM events;
SELECT count(*) FROM other;

-- COMMIT makes them visible to everyone at once
BEGIN;
INSERT INTO events VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3);
DELETE FROM events WHERE _id = 3;
SELECT count(*) AS committed FROM other;
COMMIT;
SELECT * FROM other ORDER BY _id;

-- an ERROR undoes the transaction's earlier writes too
BEGIN;
INSERT INTO events VALUES (4, 'd', 4);
INSERT INTO events VALUES (1, 'dup', 0);
ROLLBACK;
SELECT count(*) FROM other WHERE _id = 4;
INSERT INTO events VALUES (5, 'e', 5), (1, 'dup', 0);
SELECT count(*) FROM other WHERE _id = 5;

-- a rolled-back subtransaction that did not write is harmless
BEGIN;
INSERT INTO events VALUES (6, 'f', 6);
SAVEPOINT s1;
SELECT count(*) FROM events;
ROLLBACK TO SAVEPOINT s1;
INSERT INTO events VALUES (7, 'g', 7);
SAVEPOINT s2;
INSERT INTO events VALUES (8, 'h', 8);
RELEASE SAVEPOINT s2;
COMMIT;
SELECT _id FROM other WHERE _id >= 6 ORDER BY _id;

-- one that wrote dooms the transaction's MongoDB part (no savepoints in MongoDB)
BEGIN;
INSERT INTO events VALUES (9, 'i', 9);
SAVEPOINT s1;
INSERT INTO events VALUES (10, 'j', 10);
ROLLBACK TO SAVEPOINT s1;
SELECT count(*) AS committed FROM other WHERE _id >= 9;
INSERT INTO events VALUES (11, 'k', 11);
ROLLBACK;
BEGIN;
INSERT INTO events VALUES (9, 'i', 9);
SAVEPOINT s1;
INSERT INTO events VALUES (10, 'j', 10);
ROLLBACK TO SAVEPOINT s1;
COMMIT;
SELECT count(*) FROM other WHERE _id >= 9;

-- the same from a PL/pgSQL exception block
BEGIN;
DO $$
BEGIN
  INSERT INTO events VALUES (12, 'l', 12);
  RAISE EXCEPTION 'undo';
EXCEPTION WHEN others THEN
  RAISE NOTICE 'caught: %', SQLERRM;
END $$;
COMMIT;
SELECT count(*) FROM other WHERE _id = 12;

-- PREPARE TRANSACTION is refused
BEGIN;
INSERT INTO events VALUES (13, 'm', 13);
PREPARE TRANSACTION 'wx';
SELECT count(*) FROM other WHERE _id = 13;

-- transactions 'false': each statement commits at once, ROLLBACK undoes nothing
BEGIN;
INSERT INTO events_auto VALUES (14, 'n', 14);
SELECT count(*) AS committed FROM other WHERE _id = 14;
ROLLBACK;
SELECT count(*) FROM other WHERE _id = 14;

-- a commit MongoDB refuses is an ERROR, and PostgreSQL's transaction rolls back
CREATE TABLE wx_local (k int);
BEGIN;
INSERT INTO wx_local VALUES (1);
INSERT INTO events VALUES (15, 'o', 15);
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["commitTransaction"], "errorCode": 251, "errorLabels": ["TransientTransactionError"]}}'
COMMIT;
SELECT count(*) FROM wx_local;
SELECT count(*) FROM other WHERE _id = 15;

-- a commit whose result stays unknown is retried, then reported as unknown
BEGIN;
INSERT INTO wx_local VALUES (2);
INSERT INTO events VALUES (16, 'p', 16);
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": {"times": 20}, "data": {"failCommands": ["commitTransaction"], "errorCode": 91, "errorLabels": ["UnknownTransactionCommitResult"]}}'
COMMIT;
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": "off"}'
SELECT count(*) FROM wx_local;

-- a write concern error is an ERROR that says the write may have happened
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["insert"], "writeConcernError": {"code": 64, "codeName": "WriteConcernFailed", "errmsg": "waiting for replication timed out", "errInfo": {"wtimeout": true}}}}'
INSERT INTO events_auto VALUES (17, 'q', 17);
SELECT count(*) FROM other WHERE _id = 17;

-- writes through two servers commit one after the other, without two-phase
-- commit (wx_second names itself with an appname, so a fail point can
-- strike one client): when the first commit fails, nothing is committed and
-- the other transaction is aborted; when the second fails, the first stays
-- committed and the ERROR says so
SELECT :'uri' || CASE WHEN :'uri' LIKE '%?%' THEN '&' ELSE '?' END
       || 'appname=qleaf_second' AS second_uri \gset
CREATE SERVER wx_second FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'second_uri', database 'qleaf_regress_writes');
CREATE USER MAPPING FOR CURRENT_USER SERVER wx_second;
CREATE FOREIGN TABLE second (_id int, kind text, n int)
  SERVER wx_second OPTIONS (collection 'events');
BEGIN;
INSERT INTO wx_local VALUES (3);
INSERT INTO events VALUES (18, 'r', 18);
INSERT INTO second VALUES (19, 's', 19);
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["commitTransaction"], "appName": "qleaf_second", "errorCode": 251, "errorLabels": ["TransientTransactionError"]}}'
COMMIT;
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": "off"}'
SELECT count(*) FROM wx_local WHERE k = 3;
SELECT _id FROM other WHERE _id IN (18, 19) ORDER BY _id;
-- the other server's commit failing: wx_second's writes stay
BEGIN;
INSERT INTO events VALUES (20, 't', 20);
INSERT INTO second VALUES (21, 'u', 21);
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["commitTransaction"], "appName": "qleaf_fdw", "errorCode": 251, "errorLabels": ["TransientTransactionError"]}}'
COMMIT;
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": "off"}'
SELECT _id FROM other WHERE _id IN (20, 21) ORDER BY _id;
DROP SERVER wx_second CASCADE;

DROP TABLE wx_local;
DROP SERVER wx_srv CASCADE;
DROP SERVER wx_other CASCADE;

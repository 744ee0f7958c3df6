--
-- Connections: the per-backend cache and its listing, disconnecting,
-- invalidation by ALTER SERVER / ALTER USER MAPPING, the password rule for
-- non-superusers, and the errors for unreachable servers.
--
\! /usr/bin/python3 test/fixtures/load.py connection
\getenv uri QLEAF_MONGODB_URI

CREATE SERVER conn_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_connection');
CREATE USER MAPPING FOR CURRENT_USER SERVER conn_srv;
CREATE FOREIGN TABLE items (_id int, name text, qty int)
  SERVER conn_srv OPTIONS (collection 'items');

-- a second server, used through a PUBLIC user mapping
CREATE SERVER conn_pub FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_connection');
CREATE USER MAPPING FOR PUBLIC SERVER conn_pub;
CREATE FOREIGN TABLE items_pub (_id int, name text)
  SERVER conn_pub OPTIONS (collection 'items');

-- runs a statement and returns its error, if any, field by field (no
-- source file positions as with VERBOSITY verbose)
CREATE FUNCTION conn_error(query text, OUT state text, OUT message text,
                           OUT detail text, OUT hint text)
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE query;
  state := 'none';
EXCEPTION WHEN OTHERS OR query_canceled THEN
  GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE,
    message = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL,
    hint = PG_EXCEPTION_HINT;
END
$$;

-- a new backend holds no connection
SELECT * FROM qleaf_fdw_get_connections();

-- the first query connects; the connection stays cached and is reused
SELECT count(*) FROM items;
SELECT server_name, user_name = current_user AS my_mapping, valid
FROM qleaf_fdw_get_connections() ORDER BY 1;
SELECT name FROM items WHERE _id = 3;
SELECT count(*) FROM qleaf_fdw_get_connections();

-- a PUBLIC mapping is listed as "public"
SELECT count(*) FROM items_pub;
SELECT server_name, user_name, valid
FROM qleaf_fdw_get_connections() WHERE server_name = 'conn_pub';

-- disconnect one server: true when something was closed
SELECT qleaf_fdw_disconnect('conn_pub');
SELECT qleaf_fdw_disconnect('conn_pub');
SELECT server_name FROM qleaf_fdw_get_connections() ORDER BY 1;
SELECT qleaf_fdw_disconnect('no_such_server');
SELECT qleaf_fdw_disconnect_all();
SELECT qleaf_fdw_disconnect_all();
SELECT * FROM qleaf_fdw_get_connections();

-- and the next query simply connects again
SELECT count(*) FROM items;
SELECT server_name, valid FROM qleaf_fdw_get_connections();

-- ALTER SERVER invalidates the connection: it is closed at the end of
-- the transaction, and the next query opens a new one
BEGIN;
SELECT count(*) FROM items;
ALTER SERVER conn_srv OPTIONS (SET database 'qleaf_regress_connection');
SELECT server_name, valid FROM qleaf_fdw_get_connections();
COMMIT;
SELECT * FROM qleaf_fdw_get_connections();
SELECT count(*) FROM items;
SELECT server_name, valid FROM qleaf_fdw_get_connections();

-- so does ALTER USER MAPPING
ALTER USER MAPPING FOR CURRENT_USER SERVER conn_srv
  OPTIONS (ADD auth_source 'admin');
SELECT * FROM qleaf_fdw_get_connections();
ALTER USER MAPPING FOR CURRENT_USER SERVER conn_srv
  OPTIONS (DROP auth_source);
SELECT count(*) FROM items;

-- a connection in use by an open cursor is neither closed by disconnect
-- nor by invalidation; it goes when the cursor releases it
BEGIN;
DECLARE c CURSOR FOR SELECT _id FROM items ORDER BY _id;
FETCH 2 FROM c;
SELECT qleaf_fdw_disconnect('conn_srv');
SELECT qleaf_fdw_disconnect_all();
ALTER SERVER conn_srv OPTIONS (SET database 'qleaf_regress_connection');
SELECT server_name, valid FROM qleaf_fdw_get_connections();
FETCH 2 FROM c;
CLOSE c;
SELECT * FROM qleaf_fdw_get_connections();
COMMIT;
SELECT count(*) FROM items;

-- a non-superuser needs a password in the user mapping
CREATE ROLE regress_qleaf_conn;
GRANT USAGE ON FOREIGN SERVER conn_srv TO regress_qleaf_conn;
GRANT SELECT ON items TO regress_qleaf_conn;
CREATE USER MAPPING FOR regress_qleaf_conn SERVER conn_srv
  OPTIONS (username 'someone');
SET ROLE regress_qleaf_conn;
SELECT count(*) FROM items;
SELECT count(*) FROM qleaf_fdw_get_connections() WHERE user_name = current_user;
RESET ROLE;
-- unless a superuser waives it for that mapping
ALTER USER MAPPING FOR regress_qleaf_conn SERVER conn_srv
  OPTIONS (DROP username, ADD password_required 'false');
SET ROLE regress_qleaf_conn;
SELECT count(*) FROM items;
SELECT server_name, user_name = current_user AS my_mapping, valid
FROM qleaf_fdw_get_connections() ORDER BY 1, 2;
RESET ROLE;

-- nothing listens at port 1: the connection is refused, at once
CREATE SERVER conn_down FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri 'mongodb://127.0.0.1:1/', database 'qleaf_regress_connection');
CREATE USER MAPPING FOR CURRENT_USER SERVER conn_down
  OPTIONS (username 'app', password 'never-shown-pw');
CREATE FOREIGN TABLE items_down (_id int) SERVER conn_down
  OPTIONS (collection 'items');
SELECT * FROM items_down;
\x on
SELECT * FROM conn_error('SELECT * FROM items_down');
\x off
-- a failed connection is not kept
SELECT server_name FROM qleaf_fdw_get_connections() ORDER BY 1;

-- a host name that does not resolve (.invalid never does, RFC 6761)
CREATE SERVER conn_dns FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri 'mongodb://qleaf-no-such-host.invalid:27017/', database 'x');
CREATE USER MAPPING FOR CURRENT_USER SERVER conn_dns;
CREATE FOREIGN TABLE items_dns (_id int) SERVER conn_dns
  OPTIONS (collection 'items');
SELECT * FROM items_dns;
\x on
SELECT * FROM conn_error('SELECT * FROM items_dns');
\x off

-- a user name in the server's URI is not shown in messages either
ALTER SERVER conn_down OPTIONS (SET uri 'mongodb://someone@127.0.0.1:1/?connectTimeoutMS=2000');
SELECT * FROM items_down;

-- errors MongoDB returns keep their code and get a matching SQLSTATE;
-- the fail point only hits this extension's connections (appName)
\x on
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["aggregate"], "errorCode": 13, "appName": "qleaf_fdw"}}'
SELECT * FROM conn_error('SELECT count(*) FROM items');
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["aggregate"], "errorCode": 26, "appName": "qleaf_fdw"}}'
SELECT * FROM conn_error('SELECT count(*) FROM items');
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["aggregate"], "errorCode": 50, "appName": "qleaf_fdw"}}'
SELECT * FROM conn_error('SELECT count(*) FROM items');
\! test/mongo-cmd '{"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["aggregate"], "errorCode": 2, "appName": "qleaf_fdw"}}'
SELECT * FROM conn_error('SELECT count(*) FROM items');
\x off
-- a server error leaves the connection usable
SELECT count(*) FROM items;
SELECT server_name, user_name = current_user AS my_mapping, valid
FROM qleaf_fdw_get_connections() ORDER BY 1, 2;

-- a database name MongoDB refuses
ALTER SERVER conn_pub OPTIONS (SET database 'bad/name');
SELECT count(*) FROM items_pub;

SET client_min_messages = warning;
DROP SERVER conn_srv, conn_pub, conn_down, conn_dns CASCADE;
RESET client_min_messages;
DROP ROLE regress_qleaf_conn;
DROP FUNCTION conn_error;

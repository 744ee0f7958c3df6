--
-- Options of servers, user mappings, foreign tables and columns: each is
-- checked when it is set, with a hint for misspelled names.
--
\! /usr/bin/python3 test/fixtures/load.py options
\getenv uri QLEAF_MONGODB_URI

-- server: uri and database
CREATE SERVER opt_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_options');
CREATE SERVER bad FOREIGN DATA WRAPPER qleaf_fdw OPTIONS (url 'mongodb://h/');
CREATE SERVER bad FOREIGN DATA WRAPPER qleaf_fdw OPTIONS (databse 'x');
CREATE SERVER bad FOREIGN DATA WRAPPER qleaf_fdw OPTIONS (collection 'x');
CREATE SERVER bad FOREIGN DATA WRAPPER qleaf_fdw OPTIONS (zzzzzzzz 'x');
CREATE SERVER bad FOREIGN DATA WRAPPER qleaf_fdw OPTIONS (database '');
-- any connection string libmongoc accepts
CREATE SERVER ok1 FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri 'mongodb://db1.example.com,db2.example.com:27018,db3.example.com/?replicaSet=rs0&readPreference=secondaryPreferred');
CREATE SERVER ok2 FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri 'mongodb+srv://cluster0.example.com/shop?retryWrites=true&w=majority');
CREATE SERVER ok3 FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri 'mongodb://127.0.0.1:27017/?tls=true&tlsCAFile=/etc/ssl/certs/ca-certificates.crt&tlsAllowInvalidHostnames=true&connectTimeoutMS=2000&socketTimeoutMS=30000&serverSelectionTimeoutMS=5000');
CREATE SERVER ok4 FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri 'mongodb://app@db1.example.com/?authSource=admin');
-- and refuses what it does not
CREATE SERVER bad FOREIGN DATA WRAPPER qleaf_fdw OPTIONS (uri 'postgresql://h/');
CREATE SERVER bad FOREIGN DATA WRAPPER qleaf_fdw OPTIONS (uri 'mongodb://h:99999/');
CREATE SERVER bad FOREIGN DATA WRAPPER qleaf_fdw OPTIONS (uri 'mongodb://');
CREATE SERVER bad FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri 'mongodb+srv://a.example.com,b.example.com/');
-- a password in the URI is refused, and the message does not show it
CREATE SERVER bad FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri 'mongodb://app:s3cret@db1.example.com/');
ALTER SERVER ok1 OPTIONS (SET uri 'mongodb://app:s3cret@db1.example.com/');
SELECT srvname, srvoptions FROM pg_foreign_server
WHERE srvname IN ('ok1', 'ok2', 'ok3', 'ok4') ORDER BY srvname;
ALTER SERVER ok1 OPTIONS (ADD database 'shop', SET uri 'mongodb://db9.example.com/');
ALTER SERVER ok1 OPTIONS (ADD uri 'mongodb://db9.example.com/');
DROP SERVER ok1, ok2, ok3, ok4;

-- user mappings
CREATE USER MAPPING FOR CURRENT_USER SERVER opt_srv
  OPTIONS (username 'app', password 'secret', auth_source 'admin',
           auth_mechanism 'SCRAM-SHA-256');
ALTER USER MAPPING FOR CURRENT_USER SERVER opt_srv
  OPTIONS (ADD pasword 'x');
ALTER USER MAPPING FOR CURRENT_USER SERVER opt_srv
  OPTIONS (SET auth_mechanism 'scram');
ALTER USER MAPPING FOR CURRENT_USER SERVER opt_srv
  OPTIONS (ADD uri 'mongodb://h/');
ALTER USER MAPPING FOR CURRENT_USER SERVER opt_srv
  OPTIONS (SET username '');
ALTER USER MAPPING FOR CURRENT_USER SERVER opt_srv
  OPTIONS (ADD password_required 'maybe');
ALTER USER MAPPING FOR CURRENT_USER SERVER opt_srv
  OPTIONS (DROP username, DROP password, DROP auth_source, DROP auth_mechanism);
-- only a superuser may waive the password
CREATE ROLE regress_qleaf_opt_user;
GRANT USAGE ON FOREIGN SERVER opt_srv TO regress_qleaf_opt_user;
SET ROLE regress_qleaf_opt_user;
CREATE USER MAPPING FOR CURRENT_USER SERVER opt_srv
  OPTIONS (password_required 'false');
CREATE USER MAPPING FOR CURRENT_USER SERVER opt_srv
  OPTIONS (username 'u', password 'p');
ALTER USER MAPPING FOR CURRENT_USER SERVER opt_srv
  OPTIONS (ADD password_required 'false');
-- nobody else sees the password
RESET ROLE;
CREATE ROLE regress_qleaf_other;
SET ROLE regress_qleaf_other;
SELECT srvname, usename, umoptions FROM pg_user_mappings
WHERE srvname = 'opt_srv' ORDER BY usename;
RESET ROLE;
-- a superuser may waive it for another role's mapping
ALTER USER MAPPING FOR regress_qleaf_opt_user SERVER opt_srv
  OPTIONS (DROP username, DROP password, ADD password_required 'false');
DROP USER MAPPING FOR regress_qleaf_opt_user SERVER opt_srv;

-- foreign tables: collection (default: the table's name), database
CREATE FOREIGN TABLE widgets (_id int, name text) SERVER opt_srv;
SELECT * FROM widgets ORDER BY _id;
CREATE FOREIGN TABLE w2 (_id int, name text) SERVER opt_srv
  OPTIONS (collection 'gadgets');
SELECT * FROM w2;
ALTER FOREIGN TABLE w2 OPTIONS (SET collection 'widgets',
  ADD database 'qleaf_regress_options_other');
SELECT * FROM w2;
ALTER FOREIGN TABLE w2 OPTIONS (DROP database);
SELECT * FROM w2 ORDER BY _id;
CREATE FOREIGN TABLE bad (a int) SERVER opt_srv OPTIONS (colection 'x');
CREATE FOREIGN TABLE bad (a int) SERVER opt_srv OPTIONS (uri 'x');
CREATE FOREIGN TABLE bad (a int) SERVER opt_srv OPTIONS (collection '');
CREATE FOREIGN TABLE bad (a int) SERVER opt_srv OPTIONS (collection 'a$b');
CREATE FOREIGN TABLE bad (a int) SERVER opt_srv OPTIONS (batch_size '0');
CREATE FOREIGN TABLE bad (a int) SERVER opt_srv OPTIONS (batch_size '-5');
CREATE FOREIGN TABLE bad (a int) SERVER opt_srv OPTIONS (batch_size '10 docs');
CREATE FOREIGN TABLE bad (a int) SERVER opt_srv OPTIONS (batch_size '99999999999');
CREATE FOREIGN TABLE bad (a int) SERVER opt_srv OPTIONS (on_conversion_error 'ignore');
CREATE FOREIGN TABLE bad (a int) SERVER opt_srv
  OPTIONS (batch_size '500', on_conversion_error 'null');
DROP FOREIGN TABLE bad;

-- columns: field (a dotted path, or $$ROOT), on_conversion_error
CREATE FOREIGN TABLE wf (
  id int OPTIONS (field '_id'),
  size int OPTIONS (field 'spec.size', on_conversion_error 'null'),
  doc jsonb OPTIONS (field '$$ROOT')
) SERVER opt_srv OPTIONS (collection 'widgets');
SELECT * FROM wf ORDER BY id;
ALTER FOREIGN TABLE wf ALTER COLUMN size OPTIONS (SET field 'spec..size');
ALTER FOREIGN TABLE wf ALTER COLUMN size OPTIONS (SET field '.spec');
ALTER FOREIGN TABLE wf ALTER COLUMN size OPTIONS (SET field 'spec.');
ALTER FOREIGN TABLE wf ALTER COLUMN size OPTIONS (SET field '');
ALTER FOREIGN TABLE wf ALTER COLUMN size OPTIONS (SET field '$size');
ALTER FOREIGN TABLE wf ALTER COLUMN size OPTIONS (SET field 'spec.$size');
ALTER FOREIGN TABLE wf ALTER COLUMN size OPTIONS (SET field '$$CURRENT');
ALTER FOREIGN TABLE wf ALTER COLUMN size OPTIONS (ADD feild 'x');
ALTER FOREIGN TABLE wf ALTER COLUMN size OPTIONS (ADD collection 'x');
ALTER FOREIGN TABLE wf ALTER COLUMN size OPTIONS (SET on_conversion_error 'skip');
-- unicode and spaces are fine in field names
ALTER FOREIGN TABLE wf ALTER COLUMN size OPTIONS (SET field 'spéc.größe mm');
SELECT id, size FROM wf ORDER BY id;

-- a database must come from somewhere: the table, the server, or the URI
CREATE SERVER nodb_srv FOREIGN DATA WRAPPER qleaf_fdw OPTIONS (uri :'uri');
CREATE USER MAPPING FOR CURRENT_USER SERVER nodb_srv;
CREATE FOREIGN TABLE nodb (_id int) SERVER nodb_srv OPTIONS (collection 'widgets');
SELECT * FROM nodb;
ALTER FOREIGN TABLE nodb OPTIONS (ADD database 'qleaf_regress_options');
SELECT * FROM nodb ORDER BY _id;
ALTER FOREIGN TABLE nodb OPTIONS (DROP database);
-- the URI's path names the database
SELECT regexp_replace(:'uri', '^(mongodb(\+srv)?://[^/?]*)/?[^?]*',
                      '\1/qleaf_regress_options') AS uri_db \gset
ALTER SERVER nodb_srv OPTIONS (SET uri :'uri_db');
SELECT * FROM nodb ORDER BY _id;

-- options of the wrapper itself: none
ALTER FOREIGN DATA WRAPPER qleaf_fdw OPTIONS (ADD uri 'mongodb://h/');

DROP SERVER opt_srv, nodb_srv CASCADE;
DROP ROLE regress_qleaf_opt_user, regress_qleaf_other;

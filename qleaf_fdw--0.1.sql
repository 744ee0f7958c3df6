/* qleaf_fdw--0.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION qleaf_fdw" to load this file. \quit

CREATE FUNCTION qleaf_fdw_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FUNCTION qleaf_fdw_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER qleaf_fdw
  HANDLER qleaf_fdw_handler
  VALIDATOR qleaf_fdw_validator;

COMMENT ON FOREIGN DATA WRAPPER qleaf_fdw IS 'foreign data wrapper for MongoDB';

-- The connections this backend holds open, one per user mapping: the
-- server, the mapping's user ("public" for a PUBLIC mapping), and whether
-- the connection is still usable.
CREATE FUNCTION qleaf_fdw_get_connections (OUT server_name text,
    OUT user_name text, OUT valid boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT PARALLEL RESTRICTED;

-- Close this backend's connections to one server, or to all of them.
CREATE FUNCTION qleaf_fdw_disconnect (text)
RETURNS bool
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT PARALLEL RESTRICTED;

CREATE FUNCTION qleaf_fdw_disconnect_all ()
RETURNS bool
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT PARALLEL RESTRICTED;

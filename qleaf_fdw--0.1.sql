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

-- ----------------------------------------------------------------------
-- Streams: background workers that turn change streams into rows of an
-- event table and NOTIFY (src/launcher.c, src/worker.c, src/stream_api.c).
-- ----------------------------------------------------------------------
CREATE SCHEMA qleaf;
GRANT USAGE ON SCHEMA qleaf TO PUBLIC;

-- The default event table.  id is the global order of the events.
CREATE TABLE qleaf.event_store (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream text NOT NULL,
    resume_token text COLLATE "C" NOT NULL,
    operation_type text NOT NULL,
    database text,
    collection text,
    document_key jsonb,
    full_document jsonb,
    full_document_before_change jsonb,
    update_description jsonb,
    cluster_time timestamptz,
    cluster_timestamp bigint,
    wall_time timestamptz,
    txn_number bigint,
    lsid jsonb,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream, resume_token)
);
CREATE INDEX event_store_stream_id ON qleaf.event_store (stream, id);
CREATE INDEX event_store_document_key ON qleaf.event_store (document_key, id);

-- The definitions, one row per stream.  Written only through the
-- functions below; no credentials here (they stay in user mappings).
CREATE TABLE qleaf.streams (
    name text PRIMARY KEY
        CHECK (name <> '' AND length(name) < 64),
    owner regrole NOT NULL,
    server text NOT NULL,
    database text,
    collection text,
    pipeline jsonb CHECK (jsonb_typeof(pipeline) = 'array'),
    "where" text,
    where_stages jsonb CHECK (jsonb_typeof(where_stages) = 'array'),
    full_document text NOT NULL DEFAULT 'updateLookup'
        CHECK (full_document IN ('default', 'updateLookup', 'whenAvailable', 'required')),
    full_document_before_change text NOT NULL DEFAULT 'off'
        CHECK (full_document_before_change IN ('off', 'whenAvailable', 'required')),
    channel text CHECK (channel <> '' AND length(channel) < 64),
    event_table regclass NOT NULL DEFAULT 'qleaf.event_store',
    payload text NOT NULL DEFAULT 'event'
        CHECK (payload IN ('event', 'key', 'reference')),
    batch_size int NOT NULL DEFAULT 1000
        CHECK (batch_size BETWEEN 1 AND 100000),
    on_error text NOT NULL DEFAULT 'stop'
        CHECK (on_error IN ('stop', 'dead_letter')),
    refresh_views regclass[],
    refresh_interval interval NOT NULL DEFAULT '1 second'
        CHECK (refresh_interval >= '0'),
    retention interval CHECK (retention > '0'),
    enabled boolean NOT NULL DEFAULT true,
    snapshot boolean NOT NULL DEFAULT false,
    version int NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON qleaf.streams TO PUBLIC;

-- Where each stream is: the committed resume token (written in the same
-- transaction as the events it covers), the start point while there is
-- no token yet, and a state that needs an explicit reset.
CREATE TABLE qleaf.stream_state (
    stream text PRIMARY KEY REFERENCES qleaf.streams (name) ON DELETE CASCADE,
    resume_token text COLLATE "C",
    start_timestamp bigint,
    start_after text,
    state text NOT NULL DEFAULT 'ok'
        CHECK (state IN ('ok', 'failed', 'history_lost', 'invalidated')),
    last_error text,
    last_error_at timestamptz,
    last_event_cluster_time timestamptz,
    last_event_cluster_timestamp bigint,
    updated_at timestamptz,
    -- the initial snapshot (src/snapshot.c): pending until its worker
    -- takes the start time (start_timestamp), running while it reads,
    -- done after; the position is the collection being read and the last
    -- _id stored (canonical Extended JSON of {"_id": ...}), written in
    -- the transaction of the batch that stored it
    snapshot text CHECK (snapshot IN ('pending', 'running', 'done')),
    snapshot_collection text,
    snapshot_last_id text,
    snapshot_documents bigint NOT NULL DEFAULT 0,
    snapshot_started_at timestamptz,
    snapshot_finished_at timestamptz
);
GRANT SELECT ON qleaf.stream_state TO PUBLIC;

-- Events that could not be stored, with stream option on_error
-- 'dead_letter'.
CREATE TABLE qleaf.dead_letter (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream text NOT NULL,
    resume_token text COLLATE "C" NOT NULL,
    event jsonb NOT NULL,
    error text NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letter_stream ON qleaf.dead_letter (stream, id);

SELECT pg_catalog.pg_extension_config_dump('qleaf.streams', '');
SELECT pg_catalog.pg_extension_config_dump('qleaf.stream_state', '');
SELECT pg_catalog.pg_extension_config_dump('qleaf.event_store', '');
SELECT pg_catalog.pg_extension_config_dump('qleaf.dead_letter', '');

-- The one writer of qleaf.streams and qleaf.stream_state: checks that
-- the library is preloaded and that the caller owns the stream (or is a
-- superuser), applies op, and wakes the launcher at commit.
CREATE FUNCTION qleaf._stream_apply(op text, name text, def jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'qleaf_stream_apply'
LANGUAGE C;

-- The counters of the running streams, from shared memory.
CREATE FUNCTION qleaf._stream_runtime(OUT stream text, OUT state text,
    OUT pid int, OUT events_total bigint, OUT batches_total bigint,
    OUT errors_total bigint, OUT restarts bigint, OUT last_error text,
    OUT last_error_at timestamptz, OUT started_at timestamptz,
    OUT last_batch_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'qleaf_stream_runtime'
LANGUAGE C STRICT;

-- The $match stage of a stream's "where": the condition over the
-- columns of a changes table, translated by the pushdown code (EXPLAIN
-- of a scan of a temporary changes table on the stream's server; nothing
-- runs).  Every condition must go to MongoDB exactly.
CREATE FUNCTION qleaf._stream_where(server text, database text,
    collection text, cond text)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
    opts text := 'changes ''true''';
    plan jsonb;
    stages jsonb;
    pipeline text;
BEGIN
    IF collection IS NOT NULL THEN
        opts := opts || format(', collection %L', collection);
    END IF;
    IF database IS NOT NULL THEN
        opts := opts || format(', database %L', database);
    END IF;
    EXECUTE format('CREATE FOREIGN TABLE pg_temp.qleaf_stream_where ('
        'resume_token text COLLATE "C", operation_type text, database text, '
        'collection text, document_key jsonb, full_document jsonb, '
        'full_document_before_change jsonb, update_description jsonb, '
        'updated_fields jsonb, removed_fields jsonb, truncated_arrays jsonb, '
        'cluster_time timestamptz, cluster_timestamp bigint, '
        'wall_time timestamptz, txn_number bigint, lsid jsonb) '
        'SERVER %I OPTIONS (%s)', server, opts);
    BEGIN
        EXECUTE 'EXPLAIN (VERBOSE, FORMAT JSON) SELECT 1 FROM pg_temp.qleaf_stream_where WHERE '
            || cond INTO plan;
    EXCEPTION WHEN OTHERS THEN
        DROP FOREIGN TABLE pg_temp.qleaf_stream_where;
        RAISE;
    END;
    DROP FOREIGN TABLE pg_temp.qleaf_stream_where;
    plan := plan->0->'Plan';
    pipeline := plan->>'Pipeline';
    IF plan->>'Node Type' <> 'Foreign Scan' OR plan ? 'Filter'
       OR pipeline IS NULL OR pipeline LIKE '%"$param"%' THEN
        RAISE EXCEPTION 'stream option "where" must be evaluated entirely by MongoDB'
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = coalesce('Not translated exactly: '
                      || (SELECT string_agg(r, '; ') FROM jsonb_array_elements_text(plan->'Local Filter Reasons') r)
                      || '.', 'It needs values known only when a query runs, or a plan that is no single scan.'),
                  HINT = 'Compare the changes-table columns (operation_type, document_key, full_document, ...) with constants, or give the stages in option "pipeline".';
    END IF;
    SELECT jsonb_agg(st ORDER BY n) INTO stages
    FROM jsonb_array_elements(pipeline::jsonb) WITH ORDINALITY AS e(st, n)
    WHERE n > 1 AND st ? '$match';
    RETURN coalesce(stages, '[]');
END
$$;

-- Checks shared by create_stream and alter_stream; returns the option
-- values as jsonb.
CREATE FUNCTION qleaf._stream_check(name text, server text, database text,
    collection text, pipeline jsonb, "where" text, full_document text,
    full_document_before_change text, channel text, event_table regclass,
    payload text, batch_size int, on_error text, refresh_views regclass[],
    refresh_interval interval, retention interval, enabled boolean,
    owner regrole)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    def jsonb := '{}';
    missing text;
BEGIN
    IF NOT (SELECT rolcanlogin FROM pg_roles WHERE oid = owner::oid) THEN
        RAISE EXCEPTION 'role "%" cannot own a stream: it cannot log in', owner
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'A stream''s worker connects as the stream''s owner: give the role LOGIN, or create the stream as a role that has it.';
    END IF;
    IF server IS NOT NULL THEN
        IF NOT EXISTS (SELECT FROM pg_foreign_server s
                       JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
                       WHERE s.srvname = server AND w.fdwname = 'qleaf_fdw') THEN
            RAISE EXCEPTION 'server "%" does not exist or is not a qleaf_fdw server', server
                USING ERRCODE = 'undefined_object',
                      HINT = 'Create it with CREATE SERVER ... FOREIGN DATA WRAPPER qleaf_fdw.';
        END IF;
        IF NOT EXISTS (SELECT FROM pg_user_mappings m
                       WHERE m.srvname = server
                         AND (m.umuser = owner::oid OR m.umuser = 0)) THEN
            RAISE EXCEPTION 'role "%" has no user mapping for server "%"', owner, server
                USING ERRCODE = 'undefined_object',
                      HINT = 'The stream''s worker connects with its owner''s user mapping: create one with CREATE USER MAPPING.';
        END IF;
        def := def || jsonb_build_object('server', server);
    END IF;
    IF pipeline IS NOT NULL AND jsonb_typeof(pipeline) <> 'array' THEN
        RAISE EXCEPTION 'stream option "pipeline" must be a JSON array of stages'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example ''[{"$match": {"operationType": "insert"}}]''.';
    END IF;
    IF full_document IS NOT NULL AND full_document NOT IN ('default', 'updateLookup', 'whenAvailable', 'required') THEN
        RAISE EXCEPTION 'invalid value for stream option "full_document": "%"', full_document
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Valid values are "default", "updateLookup", "whenAvailable" and "required".';
    END IF;
    IF full_document_before_change IS NOT NULL AND full_document_before_change NOT IN ('off', 'whenAvailable', 'required') THEN
        RAISE EXCEPTION 'invalid value for stream option "full_document_before_change": "%"', full_document_before_change
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Valid values are "off", "whenAvailable" and "required".';
    END IF;
    IF payload IS NOT NULL AND payload NOT IN ('event', 'key', 'reference') THEN
        RAISE EXCEPTION 'invalid value for stream option "payload": "%"', payload
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Valid values are "event", "key" and "reference".';
    END IF;
    IF on_error IS NOT NULL AND on_error NOT IN ('stop', 'dead_letter') THEN
        RAISE EXCEPTION 'invalid value for stream option "on_error": "%"', on_error
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Valid values are "stop" and "dead_letter".';
    END IF;
    IF batch_size IS NOT NULL AND batch_size NOT BETWEEN 1 AND 100000 THEN
        RAISE EXCEPTION 'invalid value for stream option "batch_size": %', batch_size
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give a number of events between 1 and 100000.';
    END IF;
    IF event_table IS NOT NULL THEN
        SELECT string_agg(c, ', ') INTO missing
        FROM unnest(ARRAY['stream', 'resume_token', 'operation_type', 'database',
                          'collection', 'document_key', 'full_document',
                          'full_document_before_change', 'update_description',
                          'cluster_time', 'cluster_timestamp', 'wall_time',
                          'txn_number', 'lsid', 'received_at', 'id']) AS c
        WHERE NOT EXISTS (SELECT FROM pg_attribute a
                          WHERE a.attrelid = event_table AND a.attname = c
                            AND a.attnum > 0 AND NOT a.attisdropped);
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'table "%" cannot be an event table', event_table
                USING ERRCODE = 'wrong_object_type',
                      DETAIL = format('It lacks the column(s) %s.', missing),
                      HINT = 'Create it with CREATE TABLE ... (LIKE qleaf.event_store INCLUDING ALL).';
        END IF;
        IF NOT has_table_privilege(owner::oid, event_table, 'INSERT') THEN
            RAISE EXCEPTION 'role "%" cannot insert into table "%"', owner, event_table
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'The stream''s worker writes as its owner: GRANT INSERT on the event table to the owner.';
        END IF;
        def := def || jsonb_build_object('event_table', event_table::oid::regclass::text);
    END IF;
    IF refresh_views IS NOT NULL AND EXISTS (
        SELECT FROM unnest(refresh_views) v JOIN pg_class c ON c.oid = v
        WHERE c.relkind <> 'm') THEN
        RAISE EXCEPTION 'stream option "refresh_views" names a relation that is not a materialized view'
            USING ERRCODE = 'wrong_object_type';
    END IF;
    IF refresh_views IS NOT NULL THEN
        def := def || jsonb_build_object('refresh_views',
            (SELECT jsonb_agg(v::oid::regclass::text) FROM unnest(refresh_views) v));
    END IF;
    RETURN def || jsonb_strip_nulls(jsonb_build_object(
        'database', database, 'collection', collection, 'pipeline', pipeline,
        'full_document', full_document,
        'full_document_before_change', full_document_before_change,
        'channel', channel, 'payload', payload, 'batch_size', batch_size,
        'on_error', on_error, 'refresh_interval', refresh_interval,
        'retention', retention, 'enabled', enabled));
END
$$;

-- A snapshot starts where its worker starts: no start point with it, and
-- no filter (the snapshot copies every document; a pipeline or "where"
-- filters change events, which a find cannot reproduce exactly).
CREATE FUNCTION qleaf._stream_snapshot_check(snapshot boolean,
    has_start boolean, has_filter boolean)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF snapshot AND has_start THEN
        RAISE EXCEPTION 'a stream that starts with a snapshot takes no start point'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The change stream continues from the time the snapshot begins.',
                  HINT = 'Leave out start_at, start_timestamp and start_after, or snapshot.';
    END IF;
    IF snapshot AND has_filter THEN
        RAISE EXCEPTION 'a stream with option "pipeline" or "where" cannot start with a snapshot'
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'The snapshot copies every document of the collection; the filter applies to change events.',
                  HINT = 'Create the stream without the filter, and filter the event table in SQL.';
    END IF;
END
$$;

CREATE FUNCTION qleaf.create_stream(name text, server text,
    database text DEFAULT NULL, collection text DEFAULT NULL,
    pipeline jsonb DEFAULT NULL, "where" text DEFAULT NULL,
    full_document text DEFAULT 'updateLookup',
    full_document_before_change text DEFAULT 'off',
    channel text DEFAULT NULL,
    event_table regclass DEFAULT 'qleaf.event_store',
    payload text DEFAULT 'event', batch_size int DEFAULT 1000,
    start_at timestamptz DEFAULT NULL, start_timestamp bigint DEFAULT NULL,
    start_after text DEFAULT NULL, on_error text DEFAULT 'stop',
    refresh_views regclass[] DEFAULT NULL,
    refresh_interval interval DEFAULT '1 second',
    retention interval DEFAULT NULL, enabled boolean DEFAULT true,
    snapshot boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    def jsonb;
    starts int := (start_at IS NOT NULL)::int + (start_timestamp IS NOT NULL)::int
                  + (start_after IS NOT NULL)::int;
BEGIN
    IF server IS NULL THEN
        RAISE EXCEPTION 'a stream needs a server' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF starts > 1 THEN
        RAISE EXCEPTION 'give at most one of start_at, start_timestamp and start_after'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM qleaf._stream_snapshot_check(snapshot, starts > 0,
        pipeline IS NOT NULL OR "where" IS NOT NULL);
    def := qleaf._stream_check(name, server, database, collection, pipeline,
        "where", full_document, full_document_before_change, channel,
        event_table, payload, batch_size, on_error, refresh_views,
        refresh_interval, retention, enabled, current_user::regrole);
    IF "where" IS NOT NULL THEN
        def := def || jsonb_build_object('where', "where", 'where_stages',
            qleaf._stream_where(server, database, collection, "where"));
    END IF;
    IF start_at IS NOT NULL THEN
        start_timestamp := floor(extract(epoch FROM start_at))::bigint << 32;
    END IF;
    def := def || jsonb_strip_nulls(jsonb_build_object(
        'start_timestamp', start_timestamp, 'start_after', start_after))
        || jsonb_build_object('snapshot', coalesce(snapshot, false));
    PERFORM qleaf._stream_apply('create', name, def);
END
$$;

CREATE FUNCTION qleaf.alter_stream(name text, server text DEFAULT NULL,
    database text DEFAULT NULL, collection text DEFAULT NULL,
    pipeline jsonb DEFAULT NULL, "where" text DEFAULT NULL,
    full_document text DEFAULT NULL,
    full_document_before_change text DEFAULT NULL,
    channel text DEFAULT NULL, event_table regclass DEFAULT NULL,
    payload text DEFAULT NULL, batch_size int DEFAULT NULL,
    on_error text DEFAULT NULL, refresh_views regclass[] DEFAULT NULL,
    refresh_interval interval DEFAULT NULL, retention interval DEFAULT NULL,
    enabled boolean DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cur qleaf.streams;
    def jsonb;
BEGIN
    SELECT * INTO cur FROM qleaf.streams s WHERE s.name = alter_stream.name;
    def := qleaf._stream_check(name, server, database, collection, pipeline,
            "where", full_document, full_document_before_change, channel,
            event_table, payload, batch_size, on_error, refresh_views,
            refresh_interval, retention, enabled,
            coalesce(cur.owner, current_user::regrole));
    IF "where" = '' THEN
        def := def || '{"where": null, "where_stages": null}';
    ELSIF "where" IS NOT NULL AND cur.name IS NOT NULL THEN
        def := def || jsonb_build_object('where', "where", 'where_stages',
            qleaf._stream_where(coalesce(server, cur.server),
                coalesce(database, cur.database),
                coalesce(collection, cur.collection), "where"));
    END IF;
    PERFORM qleaf._stream_apply('alter', name, def);
END
$$;

CREATE FUNCTION qleaf.pause_stream(name text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$ SELECT qleaf._stream_apply('alter', name, '{"enabled": false}') $$;

CREATE FUNCTION qleaf.resume_stream(name text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$ SELECT qleaf._stream_apply('alter', name, '{"enabled": true}') $$;

CREATE FUNCTION qleaf.drop_stream(name text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$ SELECT qleaf._stream_apply('drop', name, '{}') $$;

CREATE FUNCTION qleaf.reset_stream(name text, start_at timestamptz DEFAULT NULL,
    start_timestamp bigint DEFAULT NULL, snapshot boolean DEFAULT false)
RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
AS $$
SELECT qleaf._stream_snapshot_check(snapshot,
    start_at IS NOT NULL OR start_timestamp IS NOT NULL,
    (SELECT s.pipeline IS NOT NULL OR s."where" IS NOT NULL
     FROM qleaf.streams s WHERE s.name = reset_stream.name));
SELECT qleaf._stream_apply('reset', name, jsonb_strip_nulls(jsonb_build_object(
    'start_timestamp', coalesce(start_timestamp,
        floor(extract(epoch FROM start_at))::bigint << 32),
    'snapshot', coalesce(snapshot, false))))
$$;

-- What each stream is doing: its definition's state joined with the
-- running worker's counters (shared memory; zero after a server restart).
-- The progress of running snapshots, from shared memory: the estimated
-- number of documents (MongoDB's count metadata) and documents per
-- second since the worker started.
CREATE FUNCTION qleaf._stream_snapshot_runtime(OUT stream text,
    OUT total bigint, OUT rate float8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'qleaf_stream_snapshot_runtime'
LANGUAGE C STRICT;

CREATE VIEW qleaf.stream_status AS
SELECT s.name AS stream,
       CASE WHEN st.state <> 'ok' THEN st.state
            WHEN NOT s.enabled THEN 'paused'
            WHEN r.pid IS NOT NULL THEN r.state
            -- no slot while every slot holds a stream that runs
            WHEN r.stream IS NULL AND
                 (SELECT count(*) FROM qleaf._stream_runtime()) >=
                 current_setting('qleaf_fdw.max_streams', true)::int
              THEN 'waiting_for_slot'
            ELSE 'stopped' END AS state,
       r.pid,
       st.last_event_cluster_time,
       now() - st.last_event_cluster_time AS lag,
       NULL::bigint AS events_behind,
       coalesce(r.events_total, 0) AS events_total,
       coalesce(r.batches_total, 0) AS batches_total,
       coalesce(r.errors_total, 0) AS errors_total,
       coalesce(r.restarts, 0) AS restarts,
       coalesce(r.last_error, st.last_error) AS last_error,
       CASE WHEN r.last_error IS NOT NULL THEN r.last_error_at
            ELSE st.last_error_at END AS last_error_at,
       st.resume_token,
       r.started_at,
       r.last_batch_at,
       st.snapshot,
       st.snapshot_documents,
       sr.total AS snapshot_total,
       sr.rate AS snapshot_rate
FROM qleaf.streams s
JOIN qleaf.stream_state st ON st.stream = s.name
LEFT JOIN qleaf._stream_runtime() r ON r.stream = s.name
LEFT JOIN qleaf._stream_snapshot_runtime() sr ON sr.stream = s.name;
GRANT SELECT ON qleaf.stream_status TO PUBLIC;

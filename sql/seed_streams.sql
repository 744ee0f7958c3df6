--
-- The shop's scenarios over qleaf.event_store: a stream of the whole
-- database keeps every event; the views of test/seed_scenarios.sql read
-- them there.  test/traffic.py writes the same 600 changes as in
-- seed_changes (same seed, same anchor), so every scenario's result is the
-- one expected/seed_changes.out shows.  A listening session sees the
-- stream's NOTIFY messages; the user profile projection is a materialized
-- view the stream refreshes; the stream health alert reads
-- qleaf.stream_status.  Waits poll, up to a time limit.
--
-- Without the stream worker in this build the test says so and skips
-- (expected/seed_streams_1.out).
\set ECHO none
SELECT to_regproc('qleaf.create_stream') IS NOT NULL AS have_streams \gset
\if :have_streams
\set ECHO all
\! /usr/bin/python3 test/fixtures/load.py seed
\getenv uri QLEAF_MONGODB_URI

-- Streams live in the launcher's database (qleaf_fdw.database): the test
-- moves there, creating the extension if it is not there yet, and the
-- listening session connects there too.
\set ECHO none
SELECT current_setting('qleaf_fdw.database') AS stream_db,
       current_database() AS regress_db \gset
\c :stream_db
SELECT NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'qleaf_fdw') AS need_ext \gset
\if :need_ext
CREATE EXTENSION qleaf_fdw;
\endif
\setenv PGDATABASE :stream_db
\set ECHO all

CREATE SERVER seed_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_seed');
CREATE USER MAPPING FOR CURRENT_USER SERVER seed_srv;
CREATE FOREIGN TABLE inventory (
  sku text OPTIONS (field '_id'), name text,
  stock_level int OPTIONS (field 'stockLevel')
) SERVER seed_srv OPTIONS (collection 'inventory');
CREATE FOREIGN TABLE user_aggregates (_id bigint, version int)
  SERVER seed_srv OPTIONS (collection 'user_aggregates');

-- true once the query returns true, false after the time limit
CREATE FUNCTION wait_until(query text, time_limit interval DEFAULT '60 seconds')
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  deadline timestamptz := clock_timestamp() + time_limit;
  ok boolean;
BEGIN
  LOOP
    EXECUTE query INTO ok;
    IF ok THEN
      RETURN true;
    END IF;
    IF clock_timestamp() > deadline THEN
      RETURN false;
    END IF;
    PERFORM pg_sleep(0.1);
  END LOOP;
END
$$;

-- the events of stream "seed_shop", with the columns the views read
CREATE VIEW shop_events AS
SELECT resume_token, operation_type, collection, document_key, full_document,
       full_document_before_change,
       update_description->'updatedFields' AS updated_fields,
       cluster_time, cluster_timestamp
FROM qleaf.event_store WHERE stream = 'seed_shop';

\set ECHO none
\i test/seed_scenarios.sql
\i test/seed_stream_health.sql
\set ECHO all

-- the stream starts right after the server's time before the traffic
\set start `/usr/bin/python3 test/traffic.py --db qleaf_regress_seed --seed 19 --events 0 --print-start`
SELECT qleaf.create_stream('seed_shop', server => 'seed_srv',
                           full_document_before_change => 'whenAvailable',
                           channel => 'seed_shop', payload => 'key',
                           start_timestamp => :start + 1,
                           refresh_views => ARRAY['user_profiles'::regclass]);
SELECT name, server, database, collection, full_document,
       full_document_before_change, channel, payload, refresh_views, enabled
FROM qleaf.streams;

-- a stream on a collection nobody writes to
SELECT qleaf.create_stream('seed_quiet', server => 'seed_srv',
                           collection => 'returns');
SELECT wait_until($$SELECT count(*) = 2 FROM qleaf.stream_status
                    WHERE state = 'running'$$) AS both_running;

-- a listening session: it LISTENs, then runs the traffic, and shows the
-- first notifications (payload 'key': no documents, no ids shown here)
\! /usr/bin/python3 test/listen.py seed_shop --count 4 --timeout 60 --fields stream,op,coll,key -- /usr/bin/python3 test/traffic.py --db qleaf_regress_seed --seed 19 --events 600 --anchor 2026-05-01T10:00:00Z --quiet

SELECT wait_until($$SELECT count(*) = 600 FROM qleaf.event_store
                    WHERE stream = 'seed_shop'$$) AS all_events_stored;

-- what the traffic wrote, as the stream stored it
SELECT collection, operation_type, count(*)
FROM shop_events GROUP BY 1, 2 ORDER BY 1, 2;

-- in MongoDB's order: ids follow the resume tokens, one row per token
SELECT count(*) AS events, count(DISTINCT resume_token) AS tokens,
       bool_and(ordered) AS ids_follow_tokens
FROM (SELECT resume_token, resume_token > lag(resume_token) OVER (ORDER BY id)
               OR lag(resume_token) OVER (ORDER BY id) IS NULL AS ordered
      FROM qleaf.event_store WHERE stream = 'seed_shop') e;

--
-- the scenarios, as over the changes table in seed_changes
--
SELECT sku, name, stock_before, stock, change, alert, severity, message
FROM inventory_alerts ORDER BY cluster_timestamp;

SELECT count(*) AS products_changed,
       count(*) FILTER (WHERE last.stock = i.stock_level) AS agree
FROM (SELECT DISTINCT ON (document_key->>'_id')
             document_key->>'_id' AS sku,
             (updated_fields->>'stockLevel')::int AS stock
      FROM shop_events
      WHERE collection = 'inventory' AND updated_fields ? 'stockLevel'
      ORDER BY document_key->>'_id', cluster_timestamp DESC) last
JOIN inventory i USING (sku);

SELECT engagement_level, count(*) AS session_windows,
       count(*) FILTER (WHERE converted) AS converted,
       sum(activities) AS activities, sum(clicks) AS clicks
FROM user_sessions GROUP BY 1 ORDER BY 1;

SELECT stage, count(*) AS events, count(DISTINCT order_id) AS orders
FROM order_stages GROUP BY 1
ORDER BY array_position(ARRAY['pending', 'confirmed', 'in_transit', 'completed',
                            'cancelled', 'refunded'], stage);

SELECT stage, count(*) AS orders FROM order_current_stage GROUP BY 1 ORDER BY 1;

SELECT * FROM saga_health;

--
-- the user profile projection, refreshed by the stream
--
SELECT wait_until($$SELECT relispopulated FROM pg_class
                    WHERE oid = 'user_profiles'::regclass$$) AS populated;
SELECT wait_until($$SELECT count(*) = 33 AND sum(version) = 48
                    FROM user_profiles$$) AS up_to_date;
SELECT user_segment, subscription_status, count(*) AS users,
       sum(total_orders) AS orders, sum(lifetime_value) AS value
FROM user_profiles GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) AS profiles, count(u._id) AS in_mongodb,
       count(*) FILTER (WHERE u.version = p.version) AS latest
FROM user_profiles p LEFT JOIN user_aggregates u ON u._id = p.user_id;

--
-- stream health
--
SELECT stream, state, events_total > 0 AS has_events,
       last_event_cluster_time IS NOT NULL AS has_last_event,
       resume_token IS NOT NULL AS has_token
FROM qleaf.stream_status ORDER BY stream;

-- the quiet stream alerts; the busy one is healthy
SELECT stream, state, health_status, severity, message
FROM stream_health_alerts;

-- a paused stream alerts too
SELECT qleaf.pause_stream('seed_shop');
SELECT wait_until($$SELECT state = 'paused' FROM qleaf.stream_status
                    WHERE stream = 'seed_shop'$$) AS paused;
SELECT stream, state, health_status, severity, message
FROM stream_health_alerts;

--
-- NOTIFY's 8000-byte limit: a larger event is notified by reference
--
\set start `/usr/bin/python3 test/traffic.py --db qleaf_regress_seed --seed 19 --events 0 --print-start`
SELECT qleaf.create_stream('seed_notes', server => 'seed_srv',
                           collection => 'notes', channel => 'seed_notes',
                           start_timestamp => :start + 1);
\! /usr/bin/python3 test/listen.py seed_notes --count 2 --timeout 60 --fields stream,op,doc -- /usr/bin/python3 -c "import os, pymongo; pymongo.MongoClient(os.environ['QLEAF_MONGODB_URI']).qleaf_regress_seed.notes.insert_many([{'_id': 1, 'text': 'short'}, {'_id': 2, 'text': 'x' * 9000}])"
SELECT wait_until($$SELECT count(*) = 2 FROM qleaf.event_store
                    WHERE stream = 'seed_notes'$$) AS stored;
-- the row holds the whole document
SELECT document_key, length(full_document->>'text') AS text_length
FROM qleaf.event_store WHERE stream = 'seed_notes' ORDER BY id;

SELECT qleaf.drop_stream('seed_notes');
SELECT qleaf.drop_stream('seed_shop');
SELECT qleaf.drop_stream('seed_quiet');
SELECT count(*) AS streams_left FROM qleaf.streams;
DELETE FROM qleaf.event_store WHERE stream IN ('seed_shop', 'seed_quiet', 'seed_notes');

SET client_min_messages = warning;
DROP VIEW shop_events CASCADE;
DROP VIEW stream_health_alerts;
DROP FUNCTION wait_until(text, interval);
DROP SERVER seed_srv CASCADE;
RESET client_min_messages;
\set ECHO none
\if :need_ext
DROP EXTENSION qleaf_fdw;
\endif
\c :regress_db
\else
\echo 'skipped: this build has no streams (qleaf.create_stream)'
\endif

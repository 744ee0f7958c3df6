-- test/demo.sql - what qleaf_fdw does, on the shop data set
--
-- Run by test/demo (psql --echo-all, the URI in :uri, cwd = the source
-- tree).  Sections that need a feature not built yet say so and are skipped;
-- the feature checks themselves run with ECHO off.
\set ECHO none
\set QUIET on
\pset null '(null)'
SELECT current_setting('qleaf_fdw.enable_pushdown', true) IS NOT NULL AS have_pushdown_guc
\gset
\set QUIET off
\set ECHO all

-- ======================================================================
-- 1. Connect PostgreSQL to MongoDB
-- ======================================================================
-- One server per MongoDB deployment.  Credentials, when MongoDB wants them,
-- go in the user mapping (username, password), never in the URI.
CREATE EXTENSION qleaf_fdw;
CREATE SERVER shop FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'shop');
CREATE USER MAPPING FOR CURRENT_USER SERVER shop;

-- Collections become tables.  A column reads the field of its name, or the
-- dotted path in its "field" option; a missing field reads as NULL.
CREATE FOREIGN TABLE orders (
  _id         text,                 -- ObjectId as 24 hex digits
  customer_id bigint,
  status      text,
  total       numeric,              -- Decimal128, exact
  currency    text,
  created_at  timestamptz,
  city        text OPTIONS (field 'shipping.address.city'),
  country     text OPTIONS (field 'shipping.address.country'),
  coupon      text,                 -- only some orders have one
  items       jsonb                 -- an array of subdocuments
) SERVER shop OPTIONS (collection 'orders');

CREATE FOREIGN TABLE order_events (
  _id         text,
  order_id    text,
  event_type  text,
  customer_id bigint,
  at          timestamptz,
  payload     jsonb
) SERVER shop OPTIONS (collection 'order_events');

CREATE FOREIGN TABLE user_activities (
  _id           text,
  user_id       bigint,
  activity_type text,
  status        text,
  device        text OPTIONS (field 'activity_data.device'),
  activity_data jsonb,
  created_at    timestamptz
) SERVER shop OPTIONS (collection 'user_activities');

-- The inventory service writes camelCase fields; the table speaks SQL.
CREATE FOREIGN TABLE inventory (
  sku           text OPTIONS (field '_id'),
  name          text,
  category      text,
  warehouse     text,
  stock_level   integer OPTIONS (field 'stockLevel'),
  reorder_level integer OPTIONS (field 'reorderLevel'),
  price         numeric,
  tags          text[],
  updated_at    timestamptz
) SERVER shop OPTIONS (collection 'inventory');

CREATE FOREIGN TABLE sagas (
  _id          text,
  order_id     text,
  status       text,
  current_step text,
  steps        jsonb,
  started_at   timestamptz,
  updated_at   timestamptz
) SERVER shop OPTIONS (collection 'sagas');

-- A whole document as one jsonb value: the field '$$ROOT'.
CREATE FOREIGN TABLE order_documents (
  doc jsonb OPTIONS (field '$$ROOT')
) SERVER shop OPTIONS (collection 'orders');

-- ======================================================================
-- 2. Query collections with plain SQL
-- ======================================================================
-- The newest orders, with a nested field (city) as a column.
SELECT _id, customer_id, status, total, created_at, city
FROM orders ORDER BY created_at DESC LIMIT 5;

-- Orders and revenue of the last 7 days by status.
SELECT status, count(*) AS orders, sum(total) AS revenue
FROM orders
WHERE created_at > now() - interval '7 days'
GROUP BY status ORDER BY orders DESC;

-- Where orders ship to.  E-book orders have no shipping address: NULL city.
SELECT city, country, count(*) AS orders, round(avg(total), 2) AS avg_total
FROM orders GROUP BY city, country ORDER BY orders DESC, city NULLS FIRST;

-- Arrays of subdocuments are jsonb: the week's best sellers.
SELECT item->>'sku' AS sku, item->>'name' AS name,
       sum((item->>'qty')::int) AS units
FROM orders, jsonb_array_elements(items) AS item
WHERE created_at > now() - interval '7 days' AND status <> 'cancelled'
GROUP BY 1, 2 ORDER BY units DESC, sku LIMIT 5;

-- Stock below its reorder level, with a BSON array as text[].
SELECT sku, name, warehouse, stock_level, reorder_level, tags
FROM inventory WHERE stock_level < reorder_level
ORDER BY stock_level, sku LIMIT 8;

-- Joins across collections run in PostgreSQL: low-stock products that sold
-- in the last 7 days, most urgent first.
SELECT i.sku, i.name, i.stock_level, sum((item->>'qty')::int) AS sold_7d
FROM inventory i
JOIN (SELECT jsonb_array_elements(items) AS item FROM orders
      WHERE created_at > now() - interval '7 days') o
  ON o.item->>'sku' = i.sku
WHERE i.stock_level < i.reorder_level
GROUP BY i.sku, i.name, i.stock_level
ORDER BY i.stock_level, sold_7d DESC LIMIT 5;

-- ======================================================================
-- 3. The event-driven shop: order events, sagas, user activity
-- ======================================================================
-- The order funnel, from the event log.
SELECT event_type, count(*) AS events, count(DISTINCT order_id) AS orders
FROM order_events GROUP BY event_type ORDER BY events DESC;

-- One refunded order's history, event by event.
SELECT e.event_type, e.at, e.payload
FROM order_events e
WHERE e.order_id = (SELECT _id FROM orders WHERE status = 'refunded'
                    ORDER BY created_at DESC LIMIT 1)
ORDER BY e.at;

-- Saga health: where checkouts stand, and the ones that failed.
SELECT status, coalesce(current_step, '-') AS step, count(*) AS sagas
FROM sagas GROUP BY 1, 2 ORDER BY 1, 2;

SELECT s._id, s.current_step, o.total, o.city, s.updated_at
FROM sagas s JOIN orders o ON o._id = s.order_id
WHERE s.status = 'failed'
ORDER BY s.updated_at DESC LIMIT 5;

-- User activity of the last 24 hours by kind and device.
SELECT activity_type, device, count(*) AS activities,
       count(DISTINCT user_id) AS users
FROM user_activities
WHERE created_at > now() - interval '1 day'
GROUP BY 1, 2 ORDER BY activities DESC LIMIT 8;

-- A whole order document.
SELECT jsonb_pretty(doc) AS "order"
FROM order_documents WHERE doc->>'coupon' = 'VIP' LIMIT 1;

-- ======================================================================
-- 4. What is sent to MongoDB: EXPLAIN VERBOSE shows the pipeline
-- ======================================================================
-- Only the columns the query needs are fetched ($project).
EXPLAIN (VERBOSE, COSTS OFF)
SELECT status, count(*) FROM orders
WHERE created_at > now() - interval '1 day' GROUP BY status;

EXPLAIN (VERBOSE, COSTS OFF)
SELECT sku, stock_level FROM inventory
WHERE warehouse = 'north' AND stock_level < 10;

-- ANALYZE adds what came back: documents, round trips, bytes.
EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT count(*) FROM user_activities WHERE activity_type = 'purchase';

-- Round trips follow the table's batch_size option (documents per batch).
ALTER FOREIGN TABLE user_activities OPTIONS (ADD batch_size '500');
EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT count(*) FROM user_activities WHERE activity_type = 'purchase';
ALTER FOREIGN TABLE user_activities OPTIONS (DROP batch_size);

\set ECHO none
\if :have_pushdown_guc
\set ECHO all
-- The same with pushdown off: PostgreSQL checks every condition itself.
SET qleaf_fdw.enable_pushdown = off;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT sku, stock_level FROM inventory
WHERE warehouse = 'north' AND stock_level < 10;
RESET qleaf_fdw.enable_pushdown;
\set ECHO none
\else
\echo '-- not in this build yet: the qleaf_fdw.enable_pushdown setting'
\endif
\set ECHO all

-- ======================================================================
-- 5. A value that does not fit its column
-- ======================================================================
-- Order totals are decimals; read as integer, the first one with cents
-- fails, and the error says which column, field, BSON type and document.
CREATE FOREIGN TABLE orders_as_integers (_id text, total integer)
  SERVER shop OPTIONS (collection 'orders');
DO $$
DECLARE
  msg text;
  detail text;
BEGIN
  PERFORM sum(total) FROM orders_as_integers;
EXCEPTION WHEN others THEN
  GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
  RAISE NOTICE E'the scan failed as it should:\n  ERROR %\n  DETAIL %', msg, detail;
END
$$;

-- With on_conversion_error 'null' such values read as NULL instead.
ALTER FOREIGN TABLE orders_as_integers
  ALTER COLUMN total OPTIONS (ADD on_conversion_error 'null');
SELECT count(*) AS orders, count(total) AS whole_euro_totals
FROM orders_as_integers;

-- ======================================================================
-- 6. Always live: a write in MongoDB shows in the next query
-- ======================================================================
SELECT sku, name, stock_level FROM inventory WHERE sku = 'SKU-0001';
\! /usr/bin/python3 test/mongo-cmd --db shop '{"update": "inventory", "updates": [{"q": {"_id": "SKU-0001"}, "u": {"$inc": {"stockLevel": 100}}}]}'
SELECT sku, name, stock_level FROM inventory WHERE sku = 'SKU-0001';

-- The connection this session keeps open to the server.
SELECT * FROM qleaf_fdw_get_connections();

-- ======================================================================
-- 7. Live traffic, read as change events
-- ======================================================================
-- A changes table reads a change stream as rows.  Without a collection it
-- follows the whole database; pre-images (the document before the change)
-- come from the collections that keep them (inventory).
CREATE FOREIGN TABLE shop_changes (
  resume_token   text COLLATE "C",
  operation_type text,
  collection     text,
  document_key   jsonb,
  full_document  jsonb,
  full_document_before_change jsonb,
  updated_fields jsonb,
  cluster_time   timestamptz,
  cluster_timestamp bigint
) SERVER shop OPTIONS (changes 'true', full_document 'updateLookup',
                       full_document_before_change 'whenAvailable');

-- test/traffic.py plays the shop's services: sessions, orders and their
-- checkout sagas, stock moves, user aggregates.  It prints the server's
-- time before its first write; the scenarios read the events after it.
\set start `/usr/bin/python3 test/traffic.py --db shop --seed 1 --events 1500 --print-start`
CREATE TABLE scenario_start AS SELECT :start::bigint AS cluster_timestamp;
CREATE VIEW shop_events AS
SELECT resume_token, operation_type, collection, document_key, full_document,
       full_document_before_change, updated_fields, cluster_time,
       cluster_timestamp
FROM shop_changes
WHERE cluster_timestamp > (SELECT cluster_timestamp FROM scenario_start);

-- What the services wrote, as the change stream tells it.
SELECT collection, operation_type, count(*) AS events
FROM shop_events GROUP BY 1, 2 ORDER BY 1, 2;

-- The scenarios are plain views over shop_events: test/seed_scenarios.sql
-- defines inventory_alerts, user_sessions, order_stages,
-- order_current_stage, saga_progress, saga_health and the materialized view
-- user_profiles.
\set ECHO none
\set QUIET on
\i test/seed_scenarios.sql
\set QUIET off
\set ECHO all

-- Inventory alerts, from the stock level before and after each change.
SELECT sku, name, stock_before, stock, alert, severity, message
FROM inventory_alerts ORDER BY cluster_timestamp DESC LIMIT 8;
SELECT alert, severity, count(*) AS alerts
FROM inventory_alerts GROUP BY 1, 2 ORDER BY 1;

-- User sessions per 5-minute window, with an engagement level.
SELECT engagement_level, count(*) AS session_windows,
       count(*) FILTER (WHERE converted) AS with_purchase,
       round(avg(activities), 1) AS avg_activities
FROM user_sessions GROUP BY 1 ORDER BY 2 DESC;
SELECT user_id, session_id, time_window, activities, clicks, purchases,
       duration, engagement_level
FROM user_sessions WHERE engagement_level IN ('engaged', 'highly_engaged')
ORDER BY first_at DESC LIMIT 5;

-- Order events as order stages: the funnel, and where orders stand now.
SELECT stage, count(DISTINCT order_id) AS orders
FROM order_stages GROUP BY 1
ORDER BY array_position(ARRAY['pending', 'confirmed', 'in_transit',
                              'completed', 'cancelled', 'refunded'], stage);
SELECT stage, count(*) AS orders FROM order_current_stage GROUP BY 1 ORDER BY 2 DESC;

-- Checkout sagas: health, and the ones that need a person.
SELECT * FROM saga_health;
SELECT saga_id, status, current_step, progress_pct, duration, error
FROM saga_progress WHERE status_category IN ('error', 'warning')
ORDER BY saga_id LIMIT 5;

-- The event-sourced user profile: the latest version of each user
-- aggregate, a CQRS read model as a materialized view.
REFRESH MATERIALIZED VIEW user_profiles;
SELECT user_segment, count(*) AS users, sum(total_orders) AS orders,
       sum(lifetime_value) AS lifetime_value
FROM user_profiles GROUP BY 1 ORDER BY 1;
SELECT user_id, version, full_name, subscription_status, total_orders,
       lifetime_value, user_segment
FROM user_profiles ORDER BY lifetime_value DESC, user_id LIMIT 5;

-- ======================================================================
-- 8. Streams: a background worker keeps every event
-- ======================================================================
\set ECHO none
SELECT to_regproc('qleaf.create_stream') IS NOT NULL AS have_streams \gset
\if :have_streams
\set QUIET on
-- waits (quietly) until a query returns true, up to 60 seconds
CREATE FUNCTION wait_until(query text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  deadline timestamptz := clock_timestamp() + interval '60 seconds';
  ok boolean;
BEGIN
  LOOP
    EXECUTE query INTO ok;
    EXIT WHEN ok OR clock_timestamp() > deadline;
    PERFORM pg_sleep(0.1);
  END LOOP;
  RETURN ok;
END
$$;
\i test/seed_stream_health.sql
\set QUIET off
\set ECHO all
-- One stream follows the shop's database for good: each batch of events is
-- stored in qleaf.event_store, notified on channel shop_events and its
-- resume token saved, in one transaction.  It starts where section 7
-- started, so it first catches up with the history MongoDB kept.  Each
-- batch also refreshes the user_profiles projection.
SELECT qleaf.create_stream('shop', server => 'shop',
                           full_document_before_change => 'whenAvailable',
                           channel => 'shop_events', payload => 'key',
                           start_timestamp => :start + 1,
                           refresh_views => ARRAY['user_profiles'::regclass]);
SELECT wait_until($$SELECT count(*) >= 1500 FROM qleaf.event_store
                    WHERE stream = 'shop'$$) AS caught_up;

-- The scenario views now read the event store instead of the change
-- stream: the same view, another source.
CREATE OR REPLACE VIEW shop_events AS
SELECT resume_token, operation_type, collection, document_key, full_document,
       full_document_before_change,
       update_description->'updatedFields' AS updated_fields,
       cluster_time, cluster_timestamp
FROM qleaf.event_store WHERE stream = 'shop';

-- A listening session (another connection) runs LISTEN shop_events, then
-- the shop's services write 600 more changes, 300 a second; it shows the
-- first notifications (payload 'key': event id, operation, collection, key).
\! /usr/bin/python3 test/listen.py shop_events --count 6 --timeout 30 -- /usr/bin/python3 test/traffic.py --db shop --seed 2 --events 600 --rate 300 --quiet
SELECT wait_until($$SELECT count(*) >= 2100 FROM qleaf.event_store
                    WHERE stream = 'shop'$$) AS all_stored;

-- The newest events, as stored.
SELECT id, operation_type, collection, document_key, cluster_time
FROM qleaf.event_store WHERE stream = 'shop' ORDER BY id DESC LIMIT 5;

-- The scenarios over the event store: alerts, orders, sagas.
SELECT alert, severity, count(*) AS alerts
FROM inventory_alerts GROUP BY 1, 2 ORDER BY 1;
SELECT stage, count(*) AS orders FROM order_current_stage GROUP BY 1 ORDER BY 2 DESC;
SELECT * FROM saga_health;

-- The projection was refreshed by the stream (no REFRESH here).
SELECT wait_until($$SELECT count(*) = (SELECT count(DISTINCT document_key)
                                       FROM shop_events
                                       WHERE collection = 'user_aggregates')
                    FROM user_profiles$$) AS projection_current;
SELECT user_segment, count(*) AS users, sum(total_orders) AS orders,
       sum(lifetime_value) AS lifetime_value
FROM user_profiles GROUP BY 1 ORDER BY 1;

-- Stream health: the figures, then the alert query (no row: all healthy).
SELECT stream, state, events_total, batches_total, errors_total, restarts,
       date_trunc('second', lag) AS since_last_event
FROM qleaf.stream_status;
SELECT stream, state, health_status, severity, message FROM stream_health_alerts;

-- A paused stream shows in the alert query; resumed, it goes on from its
-- last committed resume token.
SELECT qleaf.pause_stream('shop');
SELECT wait_until($$SELECT state = 'paused' FROM qleaf.stream_status
                    WHERE stream = 'shop'$$) AS paused;
SELECT stream, state, health_status, severity, message FROM stream_health_alerts;
SELECT qleaf.resume_stream('shop');
SELECT wait_until($$SELECT state = 'running' FROM qleaf.stream_status
                    WHERE stream = 'shop'$$) AS running;
SELECT qleaf.drop_stream('shop');
\set ECHO none
\else
\echo '-- not in this build yet: the stream worker (qleaf.create_stream, qleaf.event_store, NOTIFY, qleaf.stream_status)'
\endif

--
-- The shop's scenarios (test/seed_scenarios.sql) over a changes table of the
-- whole database: inventory alerts, user sessions per 5-minute window,
-- order stages, saga progress and health, the user profile projection.
-- test/traffic.py writes 600 changes from a fixed seed and anchor, after a
-- start point it prints; the changes table reads from that point on.
--
\! /usr/bin/python3 test/fixtures/load.py seed
\getenv uri QLEAF_MONGODB_URI

CREATE SERVER seed_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_seed');
CREATE USER MAPPING FOR CURRENT_USER SERVER seed_srv;

-- every change of the database, with pre-images where the collection keeps
-- them (inventory)
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
) SERVER seed_srv
  OPTIONS (changes 'true', full_document 'updateLookup',
           full_document_before_change 'whenAvailable');

CREATE FOREIGN TABLE inventory (
  sku text OPTIONS (field '_id'), name text,
  stock_level int OPTIONS (field 'stockLevel'),
  reorder_level int OPTIONS (field 'reorderLevel')
) SERVER seed_srv OPTIONS (collection 'inventory');

CREATE FOREIGN TABLE user_aggregates (_id bigint, version int)
  SERVER seed_srv OPTIONS (collection 'user_aggregates');
CREATE FOREIGN TABLE user_activities (_id text, session_id text)
  SERVER seed_srv OPTIONS (collection 'user_activities');

CREATE TABLE scenario_start (cluster_timestamp bigint NOT NULL);
\set start `/usr/bin/python3 test/traffic.py --db qleaf_regress_seed --seed 19 --events 600 --anchor 2026-05-01T10:00:00Z --print-start`
INSERT INTO scenario_start VALUES (:start);

CREATE VIEW shop_events AS
SELECT resume_token, operation_type, collection, document_key, full_document,
       full_document_before_change, updated_fields, cluster_time,
       cluster_timestamp
FROM shop_changes
WHERE cluster_timestamp > (SELECT cluster_timestamp FROM scenario_start);

\set ECHO none
\i test/seed_scenarios.sql
\set ECHO all

-- what the traffic wrote, as the stream saw it
SELECT collection, operation_type, count(*)
FROM shop_events GROUP BY 1, 2 ORDER BY 1, 2;

--
-- inventory alerts
--
SELECT sku, name, stock_before, stock, change, alert, severity, message
FROM inventory_alerts ORDER BY cluster_timestamp;

SELECT alert, severity, count(*) FROM inventory_alerts GROUP BY 1, 2 ORDER BY 1;

-- the stock after each product's last change is what MongoDB holds now
SELECT count(*) AS products_changed,
       count(*) FILTER (WHERE last.stock = i.stock_level) AS agree
FROM (SELECT DISTINCT ON (document_key->>'_id')
             document_key->>'_id' AS sku,
             (updated_fields->>'stockLevel')::int AS stock
      FROM shop_events
      WHERE collection = 'inventory' AND updated_fields ? 'stockLevel'
      ORDER BY document_key->>'_id', cluster_timestamp DESC) last
JOIN inventory i USING (sku);

--
-- user sessions per 5-minute window
--
SELECT engagement_level, count(*) AS session_windows,
       count(*) FILTER (WHERE converted) AS converted,
       sum(activities) AS activities, sum(clicks) AS clicks
FROM user_sessions GROUP BY 1 ORDER BY 1;

SELECT user_id, session_id, time_window, activities, page_views, clicks,
       cart_adds, purchases, pages, duration, engagement_level
FROM user_sessions
WHERE engagement_level IN ('engaged', 'highly_engaged')
ORDER BY first_at DESC, session_id LIMIT 8;

-- every activity MongoDB holds is in exactly one session window
SELECT (SELECT sum(activities) FROM user_sessions) AS in_windows,
       (SELECT count(*) FROM user_activities) AS in_mongodb,
       (SELECT count(DISTINCT session_id) FROM user_sessions) AS sessions,
       (SELECT count(DISTINCT session_id) FROM user_activities) AS sessions_in_mongodb;

-- a session spread over windows: one row per window
SELECT session_id, time_window, activities, duration
FROM user_sessions
WHERE session_id = (SELECT session_id FROM user_sessions
                    GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1)
ORDER BY time_window;

--
-- order stages
--
SELECT stage, count(*) AS events, count(DISTINCT order_id) AS orders
FROM order_stages GROUP BY 1
ORDER BY array_position(ARRAY['pending', 'confirmed', 'in_transit', 'completed',
                            'cancelled', 'refunded'], stage);

SELECT stage, count(*) AS orders FROM order_current_stage GROUP BY 1 ORDER BY 1;

SELECT order_id, string_agg(stage, ' > ' ORDER BY cluster_timestamp) AS stages
FROM order_stages
GROUP BY order_id ORDER BY order_id LIMIT 6;

--
-- saga progress and health
--
SELECT saga_id, status, current_step, steps_done, total_steps, progress_pct,
       duration, status_category, error
FROM saga_progress ORDER BY saga_id LIMIT 8;

SELECT * FROM saga_health;

-- every saga reached by the stream is an order of the traffic, and the
-- sagas that completed are the orders whose last stage is completed
SELECT count(*) AS sagas,
       count(*) FILTER (WHERE p.status = 'completed') AS completed,
       count(*) FILTER (WHERE p.status = 'completed'
                        AND o.stage = 'completed') AS completed_agree
FROM saga_progress p
JOIN order_current_stage o ON p.saga_id = 'saga-' || o.order_id;

--
-- the user profile projection (latest version per aggregate)
--
REFRESH MATERIALIZED VIEW user_profiles;
SELECT user_segment, subscription_status, count(*) AS users,
       sum(total_orders) AS orders, sum(lifetime_value) AS value
FROM user_profiles GROUP BY 1, 2 ORDER BY 1, 2;

SELECT user_id, version, full_name, subscription_status, total_orders,
       lifetime_value, user_segment
FROM user_profiles ORDER BY version DESC, user_id LIMIT 5;

-- each profile holds its aggregate's latest version, the one MongoDB holds
SELECT count(*) AS profiles, count(u._id) AS in_mongodb,
       count(*) FILTER (WHERE u.version = p.version) AS latest
FROM user_profiles p LEFT JOIN user_aggregates u ON u._id = p.user_id;

SET client_min_messages = warning;
DROP SERVER seed_srv CASCADE;
DROP TABLE scenario_start;
RESET client_min_messages;

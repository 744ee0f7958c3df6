-- test/seed_scenarios.sql - the shop's event-driven scenarios as SQL views
--
-- Read with \i by test/demo.sql and by the sql/seed_*.sql tests, after they
-- create "shop_events": one row per change event of the shop's database with
-- the columns of a changes table (and of qleaf.event_store):
--
--   resume_token text COLLATE "C", operation_type text, collection text,
--   document_key jsonb, full_document jsonb (the document after an update,
--   looked up), full_document_before_change jsonb (pre-images, kept by
--   inventory), updated_fields jsonb, cluster_time timestamptz,
--   cluster_timestamp bigint
--
-- Documents arrive as MongoDB Extended JSON (relaxed): dates are
-- {"$date": "..."}, decimals {"$numberDecimal": "..."}.  Every view reads
-- shop_events afresh, so it shows the events up to the moment it runs.

-- Inventory alerts, from the stock level before (the pre-image) and after
-- (the update's own new value) each change: only changes that cross a line
-- alert, so a product that stays low does not alert again.
CREATE VIEW inventory_alerts AS
SELECT cluster_timestamp, cluster_time AS event_time, sku, name,
       stock_before, stock, stock - stock_before AS change, alert,
       CASE alert WHEN 'OUT_OF_STOCK' THEN 'critical'
                  WHEN 'LOW_STOCK' THEN 'warning'
                  ELSE 'info' END AS severity,
       CASE alert
         WHEN 'OUT_OF_STOCK' THEN format('%s is out of stock', name)
         WHEN 'LOW_STOCK' THEN format('%s is running low (%s left, reorder at %s)',
                                      name, stock, reorder_level)
         ELSE format('%s is back in stock (%s units)', name, stock)
       END AS message
FROM (SELECT cluster_timestamp, cluster_time,
             document_key->>'_id' AS sku,
             full_document_before_change->>'name' AS name,
             (full_document_before_change->>'stockLevel')::int AS stock_before,
             (updated_fields->>'stockLevel')::int AS stock,
             (full_document_before_change->>'reorderLevel')::int AS reorder_level
      FROM shop_events
      WHERE collection = 'inventory' AND operation_type = 'update'
        AND updated_fields ? 'stockLevel') s,
     LATERAL (SELECT CASE
                WHEN stock = 0 AND stock_before > 0 THEN 'OUT_OF_STOCK'
                WHEN stock > 0 AND stock <= reorder_level
                     AND stock_before > reorder_level THEN 'LOW_STOCK'
                WHEN stock > reorder_level
                     AND stock_before <= reorder_level THEN 'RESTOCKED'
              END AS alert) a
WHERE alert IS NOT NULL;

-- User sessions per 5-minute window (by the activity's own time), with an
-- engagement level.
CREATE VIEW user_sessions AS
SELECT user_id, session_id,
       date_bin('5 minutes', at, timestamptz '2000-01-01 00:00:00+00') AS time_window,
       count(*) AS activities,
       count(*) FILTER (WHERE activity_type = 'page_view') AS page_views,
       count(*) FILTER (WHERE activity_type = 'click') AS clicks,
       count(*) FILTER (WHERE activity_type = 'add_to_cart') AS cart_adds,
       count(*) FILTER (WHERE activity_type = 'purchase') AS purchases,
       count(DISTINCT page) AS pages,
       min(at) AS first_at,
       max(at) - min(at) AS duration,
       CASE
         WHEN max(at) - min(at) >= interval '3 minutes'
              AND count(*) FILTER (WHERE activity_type = 'click') >= 4 THEN 'highly_engaged'
         WHEN max(at) - min(at) >= interval '1 minute'
              AND count(*) FILTER (WHERE activity_type = 'click') >= 2 THEN 'engaged'
         WHEN max(at) - min(at) >= interval '30 seconds' THEN 'browsing'
         ELSE 'quick_visit'
       END AS engagement_level,
       count(*) FILTER (WHERE activity_type = 'purchase') > 0 AS converted
FROM (SELECT (full_document->>'user_id')::bigint AS user_id,
             full_document->>'session_id' AS session_id,
             full_document->>'activity_type' AS activity_type,
             full_document->'activity_data'->>'page' AS page,
             (full_document->'created_at'->>'$date')::timestamptz AS at
      FROM shop_events
      WHERE collection = 'user_activities' AND operation_type = 'insert') a
GROUP BY user_id, session_id, 3;

-- Order events as order stages, in the order they happened.
CREATE VIEW order_stages AS
SELECT cluster_timestamp, order_id, event_type, at,
       CASE event_type
         WHEN 'order_created' THEN 'pending'
         WHEN 'payment_processed' THEN 'confirmed'
         WHEN 'order_shipped' THEN 'in_transit'
         WHEN 'order_delivered' THEN 'completed'
         WHEN 'order_cancelled' THEN 'cancelled'
         WHEN 'refund_processed' THEN 'refunded'
         ELSE 'unknown'
       END AS stage,
       CASE WHEN event_type IN ('payment_processed', 'order_cancelled',
                                'refund_processed') THEN 1
            WHEN event_type = 'order_created' THEN 2
            ELSE 3 END AS priority
FROM (SELECT cluster_timestamp,
             full_document->>'order_id' AS order_id,
             full_document->>'event_type' AS event_type,
             (full_document->'at'->>'$date')::timestamptz AS at
      FROM shop_events
      WHERE collection = 'order_events' AND operation_type = 'insert') e;

-- The current stage of each order: its latest event.
CREATE VIEW order_current_stage AS
SELECT DISTINCT ON (order_id) order_id, stage, at AS since
FROM order_stages
ORDER BY order_id, cluster_timestamp DESC;

-- Saga progress: the latest state of each saga.
CREATE VIEW saga_progress AS
SELECT saga_id, saga_type, status, current_step, steps_done, total_steps,
       CASE WHEN status = 'completed' THEN 100.0
            WHEN total_steps > 0 THEN round(100.0 * steps_done / total_steps, 1)
            ELSE 0.0 END AS progress_pct,
       started_at, updated_at - started_at AS duration,
       CASE status
         WHEN 'completed' THEN 'success'
         WHEN 'failed' THEN 'error'
         WHEN 'compensating' THEN 'warning'
         WHEN 'compensated' THEN 'warning'
         WHEN 'started' THEN 'in_progress'
         WHEN 'running' THEN 'in_progress'
         ELSE 'unknown'
       END AS status_category,
       error
FROM (SELECT DISTINCT ON (document_key->'_id')
             document_key->>'_id' AS saga_id,
             full_document->>'type' AS saga_type,
             full_document->>'status' AS status,
             full_document->>'current_step' AS current_step,
             (SELECT count(*) FROM jsonb_array_elements(full_document->'steps') s
              WHERE s->>'status' = 'done') AS steps_done,
             jsonb_array_length(full_document->'steps') AS total_steps,
             (full_document->'started_at'->>'$date')::timestamptz AS started_at,
             (full_document->'updated_at'->>'$date')::timestamptz AS updated_at,
             full_document->>'error' AS error
      FROM shop_events
      WHERE collection = 'sagas'
        AND operation_type IN ('insert', 'update', 'replace')
        AND full_document IS NOT NULL
      ORDER BY document_key->'_id', cluster_timestamp DESC) s;

-- Saga health per saga type.
CREATE VIEW saga_health AS
SELECT saga_type, count(*) AS sagas,
       count(*) FILTER (WHERE status_category = 'success') AS succeeded,
       count(*) FILTER (WHERE status_category = 'error') AS failed,
       count(*) FILTER (WHERE status_category = 'warning') AS compensated,
       count(*) FILTER (WHERE status_category = 'in_progress') AS in_progress,
       round(avg(progress_pct), 1) AS avg_progress_pct,
       round(avg(extract(epoch FROM duration))
             FILTER (WHERE status_category = 'success'), 0) AS avg_success_secs,
       count(*) FILTER (WHERE duration > interval '15 minutes') AS slow,
       CASE
         WHEN count(*) FILTER (WHERE status_category <> 'in_progress') = 0 THEN 0.0
         ELSE round(100.0 * count(*) FILTER (WHERE status_category = 'success')
                    / count(*) FILTER (WHERE status_category <> 'in_progress'), 1)
       END AS success_rate_pct,
       CASE
         WHEN count(*) FILTER (WHERE status_category = 'error')
              > count(*) FILTER (WHERE status_category = 'success') THEN 'unhealthy'
         WHEN count(*) FILTER (WHERE status_category IN ('error', 'warning'))
              > 0.2 * count(*) THEN 'degraded'
         ELSE 'healthy'
       END AS health_status
FROM saga_progress
GROUP BY saga_type;

-- The event-sourced user profile: the latest version of each user
-- aggregate, as a read model (CQRS).  A materialized view: REFRESH it, or let
-- a stream refresh it.
CREATE MATERIALIZED VIEW user_profiles AS
SELECT user_id, version, email, full_name, subscription_status,
       total_orders, lifetime_value, updated_at,
       CASE WHEN lifetime_value > 1000 THEN 'premium'
            WHEN total_orders > 10 THEN 'loyal'
            WHEN total_orders > 0 THEN 'customer'
            ELSE 'prospect' END AS user_segment
FROM (SELECT DISTINCT ON (document_key->'_id')
             (document_key->>'_id')::bigint AS user_id,
             (full_document->>'version')::int AS version,
             full_document->>'email' AS email,
             concat_ws(' ', full_document->>'first_name',
                       full_document->>'last_name') AS full_name,
             full_document->>'subscription_status' AS subscription_status,
             (full_document->>'total_orders')::int AS total_orders,
             (full_document->'lifetime_value'->>'$numberDecimal')::numeric AS lifetime_value,
             (full_document->'updated_at'->>'$date')::timestamptz AS updated_at
      FROM shop_events
      WHERE collection = 'user_aggregates'
        AND operation_type IN ('insert', 'update', 'replace')
        AND full_document IS NOT NULL
      ORDER BY document_key->'_id', (full_document->>'version')::int DESC,
               cluster_timestamp DESC) p
WITH NO DATA;
CREATE UNIQUE INDEX ON user_profiles (user_id);

--
-- Changes tables in plain SQL: stock alerts from the documents before and
-- after each change, user activity per user per 5-minute window, order
-- events mapped to order stages.  Reads start after a point taken here.
-- test/fixtures/changes.py write prints the server's time (the start
-- point, in cluster_timestamp's form), then runs the writes after it.
--
\! /usr/bin/python3 test/fixtures/load.py changes
\getenv uri QLEAF_MONGODB_URI

CREATE SERVER scen_srv FOREIGN DATA WRAPPER qleaf_fdw
  OPTIONS (uri :'uri', database 'qleaf_regress_changes');
CREATE USER MAPPING FOR CURRENT_USER SERVER scen_srv;

--
-- inventory stock alerts: the stock level before and after each change
-- (pre- and post-images of the collection)
--
CREATE FOREIGN TABLE stock_changes (
  operation_type    text,
  cluster_timestamp bigint,
  sku      text OPTIONS (field 'documentKey._id'),
  name     text OPTIONS (field 'fullDocument.name'),
  stock    int  OPTIONS (field 'fullDocument.stockLevel'),
  reorder  int  OPTIONS (field 'fullDocument.reorderLevel'),
  stock_before int OPTIONS (field 'fullDocumentBeforeChange.stockLevel')
) SERVER scen_srv
  OPTIONS (changes 'true', collection 'inventory',
           full_document 'whenAvailable',
           full_document_before_change 'whenAvailable');

-- kettle 12 -> 3 (reorder level 5), teapot 3 -> 0, spoon 0 -> 25 (reorder
-- level 20), mug 40 -> 35, kettle 3 -> 2, teapot 0 -> 0 (a rename)
\set start `/usr/bin/python3 test/fixtures/changes.py write '{"update": "inventory", "updates": [{"q": {"_id": "SKU-1"}, "u": {"$set": {"stockLevel": 3}}}]}' '{"update": "inventory", "updates": [{"q": {"_id": "SKU-2"}, "u": {"$set": {"stockLevel": 0}}}]}' '{"update": "inventory", "updates": [{"q": {"_id": "SKU-4"}, "u": {"$inc": {"stockLevel": 25}}}]}' '{"update": "inventory", "updates": [{"q": {"_id": "SKU-3"}, "u": {"$inc": {"stockLevel": -5}}}]}' '{"update": "inventory", "updates": [{"q": {"_id": "SKU-1"}, "u": {"$inc": {"stockLevel": -1}}}]}' '{"update": "inventory", "updates": [{"q": {"_id": "SKU-2"}, "u": {"$set": {"name": "teapot, large"}}}]}'`

SELECT sku, name, stock_before, stock,
       CASE
         WHEN stock = 0 AND stock_before > 0 THEN 'out of stock'
         WHEN stock > 0 AND stock <= reorder AND stock_before > reorder THEN 'low stock'
         WHEN stock > reorder AND stock_before <= reorder THEN 'restocked'
       END AS alert
FROM stock_changes
WHERE cluster_timestamp > :start
  AND operation_type IN ('update', 'replace')
  AND stock IS DISTINCT FROM stock_before
ORDER BY cluster_timestamp;

-- only the alerts, as a consumer would poll them
SELECT alert, string_agg(sku, ', ' ORDER BY sku) AS skus
FROM (SELECT sku,
             CASE
               WHEN stock = 0 AND stock_before > 0 THEN 'out of stock'
               WHEN stock > 0 AND stock <= reorder AND stock_before > reorder THEN 'low stock'
               WHEN stock > reorder AND stock_before <= reorder THEN 'restocked'
             END AS alert
      FROM stock_changes
      WHERE cluster_timestamp > :start AND operation_type = 'update') s
WHERE alert IS NOT NULL
GROUP BY alert ORDER BY alert;

--
-- user activity per user per 5-minute window
--
CREATE FOREIGN TABLE activity_changes (
  operation_type    text,
  cluster_timestamp bigint,
  wall_time         timestamptz,
  user_id  int  OPTIONS (field 'fullDocument.user_id'),
  activity text OPTIONS (field 'fullDocument.type'),
  at       timestamptz OPTIONS (field 'fullDocument.at')
) SERVER scen_srv OPTIONS (changes 'true', collection 'activities');

\set start `/usr/bin/python3 test/fixtures/changes.py write '{"insert": "activities", "documents": [{"user_id": 1, "type": "login", "at": {"$date": "2024-05-01T10:00:10Z"}}, {"user_id": 1, "type": "page_view", "at": {"$date": "2024-05-01T10:01:00Z"}}, {"user_id": 2, "type": "login", "at": {"$date": "2024-05-01T10:02:00Z"}}, {"user_id": 1, "type": "add_to_cart", "at": {"$date": "2024-05-01T10:04:59Z"}}, {"user_id": 1, "type": "purchase", "at": {"$date": "2024-05-01T10:05:00Z"}}]}' '{"insert": "activities", "documents": [{"user_id": 2, "type": "page_view", "at": {"$date": "2024-05-01T10:07:30Z"}}, {"user_id": 2, "type": "logout", "at": {"$date": "2024-05-01T10:09:59Z"}}, {"user_id": 3, "type": "login", "at": {"$date": "2024-05-01T10:12:00Z"}}]}' '{"update": "activities", "updates": [{"q": {"user_id": 3}, "u": {"$set": {"type": "login_failed"}}}]}'`

SELECT user_id,
       date_bin('5 minutes', at, '2024-01-01') AS window_start,
       count(*) AS activities,
       string_agg(activity, ', ' ORDER BY at) AS what
FROM activity_changes
WHERE cluster_timestamp > :start AND operation_type = 'insert'
GROUP BY 1, 2 ORDER BY 1, 2;

-- by the time MongoDB recorded them: every insert falls in some window
SELECT sum(n) AS activities, bool_and(n > 0) AS windows_ok
FROM (SELECT user_id, date_bin('5 minutes', wall_time, '2024-01-01') AS w,
             count(*) AS n
      FROM activity_changes
      WHERE cluster_timestamp > :start AND operation_type = 'insert'
      GROUP BY 1, 2) s;

--
-- order events mapped to order stages
--
CREATE FOREIGN TABLE order_changes (
  operation_type    text,
  cluster_timestamp bigint,
  order_id text OPTIONS (field 'documentKey._id'),
  updated_fields jsonb,
  status   text OPTIONS (field 'fullDocument.status')
) SERVER scen_srv OPTIONS (changes 'true', collection 'orders',
                           full_document 'updateLookup');

\set start `/usr/bin/python3 test/fixtures/changes.py write '{"insert": "orders", "documents": [{"_id": "O-1", "status": "created", "total": 30}]}' '{"insert": "orders", "documents": [{"_id": "O-2", "status": "created", "total": 12}]}' '{"update": "orders", "updates": [{"q": {"_id": "O-1"}, "u": {"$set": {"status": "paid"}}}]}' '{"update": "orders", "updates": [{"q": {"_id": "O-2"}, "u": {"$set": {"status": "cancelled"}}}]}' '{"update": "orders", "updates": [{"q": {"_id": "O-1"}, "u": {"$set": {"status": "shipped", "carrier": "post"}}}]}' '{"update": "orders", "updates": [{"q": {"_id": "O-1"}, "u": {"$set": {"note": "left at the door"}}}]}' '{"update": "orders", "updates": [{"q": {"_id": "O-1"}, "u": {"$set": {"status": "delivered"}}}]}' '{"delete": "orders", "deletes": [{"q": {"_id": "O-2"}, "limit": 1}]}'`

CREATE VIEW order_stages AS
SELECT cluster_timestamp, order_id,
       CASE
         WHEN operation_type = 'insert' THEN 'placed'
         WHEN operation_type = 'delete' THEN 'archived'
         ELSE CASE updated_fields->>'status'
                WHEN 'paid' THEN 'payment'
                WHEN 'shipped' THEN 'fulfilment'
                WHEN 'delivered' THEN 'completed'
                WHEN 'cancelled' THEN 'cancelled'
              END
       END AS stage
FROM order_changes;

SELECT order_id, stage FROM order_stages
WHERE cluster_timestamp > :start AND stage IS NOT NULL
ORDER BY cluster_timestamp;
-- the current stage of each order
SELECT DISTINCT ON (order_id) order_id, stage
FROM order_stages
WHERE cluster_timestamp > :start AND stage IS NOT NULL
ORDER BY order_id, cluster_timestamp DESC;
-- the view's conditions reach the change stream's $match
EXPLAIN (VERBOSE, COSTS OFF)
SELECT order_id FROM order_stages
WHERE cluster_timestamp > 7000000000000000000 AND order_id = 'O-1';

DROP VIEW order_stages;
DROP SERVER scen_srv CASCADE;

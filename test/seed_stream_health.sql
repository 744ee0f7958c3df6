-- test/seed_stream_health.sql - the stream health alert, as a view
--
-- Read with \i by test/demo.sql and sql/seed_streams.sql.  One row per
-- stream that needs attention (a healthy stream has none), most urgent
-- first; qleaf.stream_status has the raw figures.
CREATE VIEW stream_health_alerts AS
SELECT stream, state, health_status, severity,
       CASE health_status
         WHEN 'down' THEN format('stream is %s: %s', state,
                                 coalesce(last_error, 'no error recorded'))
         WHEN 'stopped' THEN 'no worker runs this stream: check the server log and max_worker_processes'
         WHEN 'paused' THEN 'stream is paused: qleaf.resume_stream() starts it again'
         WHEN 'blocked' THEN
           CASE state
             WHEN 'waiting_for_slot' THEN 'every stream slot is taken: raise qleaf_fdw.max_streams (a restart), or pause or drop a stream'
             ELSE 'the notification queue is above qleaf_fdw.notify_queue_limit: a session that listens does not read, or stays in an open transaction'
           END
         WHEN 'never_active' THEN 'no event yet: check the server, the collection and the pipeline'
         WHEN 'stalled' THEN format('no event for %s: check that the services still write',
                                    date_trunc('second', lag))
         WHEN 'error_prone' THEN format('%s errors: see last_error and the server log', errors_total)
         WHEN 'unstable' THEN format('%s restarts: check connectivity and the server log', restarts)
       END AS message,
       last_event_cluster_time, lag, events_total, errors_total, restarts
FROM (SELECT s.*,
             CASE
               WHEN state IN ('failed', 'history_lost', 'invalidated') THEN 'down'
               WHEN state = 'stopped' THEN 'stopped'
               WHEN state = 'paused' THEN 'paused'
               WHEN state IN ('waiting_for_listeners', 'waiting_for_slot') THEN 'blocked'
               WHEN last_event_cluster_time IS NULL THEN 'never_active'
               WHEN lag > interval '5 minutes' THEN 'stalled'
               WHEN errors_total > 5 THEN 'error_prone'
               WHEN restarts > 3 THEN 'unstable'
               ELSE 'healthy'
             END AS health_status
      FROM qleaf.stream_status s) h
CROSS JOIN LATERAL (SELECT CASE health_status
                             WHEN 'down' THEN 'critical'
                             WHEN 'stopped' THEN 'critical'
                             WHEN 'blocked' THEN 'warning'
                             WHEN 'stalled' THEN 'warning'
                             WHEN 'error_prone' THEN 'warning'
                             WHEN 'never_active' THEN 'warning'
                             ELSE 'info'
                           END AS severity) v
WHERE health_status <> 'healthy'
ORDER BY array_position(ARRAY['down', 'stopped', 'blocked', 'stalled', 'error_prone',
                              'never_active', 'unstable', 'paused'], health_status),
         stream;

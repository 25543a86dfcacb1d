package pgdispatch.ui;

import pgdispatch.testing.TestDatabase;

/**
 * A day-in-the-life data set for the screenshots: three queues, an hour of throughput, four nodes (two
 * live, one dead, one stopped), tasks in every status, and one task stuck on the dead node after an
 * earlier attempt failed on another node.
 */
final class DashboardSample {
    private DashboardSample() {}

    static void populate(TestDatabase db) {
        db.exec("""
                INSERT INTO dispatcher_nodes (node_id, incarnation, host, pid, version, queues, kinds, started_at, last_seen_at, stopped_at) VALUES
                  ('worker-1', gen_random_uuid(), 'app-7f9c', 41, '0.1.0', ARRAY['default','emails'], ARRAY['noop','send_email','resize_image'], now() - interval '3 hours', now() - interval '1 second', NULL),
                  ('worker-2', gen_random_uuid(), 'app-2b41', 38, '0.1.0', ARRAY['default','reports'], ARRAY['noop','build_report'], now() - interval '3 hours', now() - interval '2 seconds', NULL),
                  ('worker-3', gen_random_uuid(), 'app-c0d2', 44, '0.1.0', ARRAY['default','emails'], ARRAY['noop','send_email'], now() - interval '2 hours', now() - interval '4 minutes', NULL),
                  ('worker-old', gen_random_uuid(), 'app-0a11', 12, '0.0.9', ARRAY['default'], ARRAY['noop'], now() - interval '1 day', now() - interval '5 hours', now() - interval '5 hours')
                """);
        // an hour of finished work: claimed then succeeded (some failed), spread over the minutes with a rising load
        db.exec("""
                WITH t AS (
                    INSERT INTO tasks (queue, kind, payload, status, attempts, owner_id, lease_token, run_at, started_at, finished_at, created_at, updated_at, result)
                    SELECT q, k, jsonb_build_object('n', g), 'succeeded', 1, w, 1, at, at, at + interval '2 seconds', at, at + interval '2 seconds', '{"ok": true}'::jsonb
                      FROM (SELECT g, (ARRAY['default','emails','reports'])[1 + g % 3] AS q,
                                   (ARRAY['noop','send_email','build_report'])[1 + g % 3] AS k,
                                   (ARRAY['worker-1','worker-2'])[1 + g % 2] AS w,
                                   now() - (59 * 60 - (g * 3540 / 1800)) * interval '1 second' - (g % 7) * interval '1 second' AS at
                              FROM generate_series(1, 1800) g
                             WHERE g % 5 <> 0 OR g > 900) s
                    RETURNING id, owner_id, started_at, finished_at)
                INSERT INTO task_events (task_id, event, owner_id, lease_token, at, detail)
                SELECT id, 'claimed', owner_id, 1, started_at, '{"attempt": 1}'::jsonb FROM t
                UNION ALL SELECT id, 'succeeded', owner_id, 1, finished_at, NULL::jsonb FROM t
                """);
        db.exec("""
                WITH t AS (
                    INSERT INTO tasks (queue, kind, payload, status, attempts, max_attempts, owner_id, lease_token, run_at, started_at, finished_at, created_at, updated_at, last_error)
                    SELECT 'emails', 'send_email', jsonb_build_object('to', 'user' || g || '@example.com'), 'failed', 3, 3, 'worker-1', 3,
                           now() - g * interval '97 seconds', now() - g * interval '97 seconds', now() - g * interval '97 seconds' + interval '1 second',
                           now() - g * interval '97 seconds' - interval '5 minutes', now() - g * interval '97 seconds', 'SMTP 421: too many connections'
                      FROM generate_series(1, 25) g
                    RETURNING id, owner_id, finished_at)
                INSERT INTO task_events (task_id, event, owner_id, lease_token, at, detail)
                SELECT id, 'claimed', owner_id, 3, finished_at - interval '1 second', '{"attempt": 3}'::jsonb FROM t
                UNION ALL SELECT id, 'failed', owner_id, 3, finished_at, '{"attempt": 3, "max_attempts": 3, "error": "SMTP 421: too many connections"}'::jsonb FROM t
                """);
        db.exec("""
                INSERT INTO tasks (queue, kind, payload, status, run_at, created_at)
                SELECT (ARRAY['default','emails','reports'])[1 + g % 3], (ARRAY['noop','send_email','build_report'])[1 + g % 3],
                       jsonb_build_object('n', g), 'pending', now() - (g % 180) * interval '1 second', now() - (g % 180) * interval '1 second'
                  FROM generate_series(1, 140) g
                """);
        db.exec("""
                INSERT INTO tasks (queue, kind, payload, status, attempts, owner_id, lease_token, run_at, started_at, lease_expires_at, last_heartbeat_at, updated_at, progress)
                SELECT 'reports', 'build_report', jsonb_build_object('report', 'monthly-' || g), 'running', 1, 'worker-2', 1,
                       now() - interval '40 seconds', now() - interval '40 seconds', now() + interval '50 seconds', now() - interval '3 seconds', now(),
                       jsonb_build_object('rows_done', g * 1000, 'message', 'aggregating')
                  FROM generate_series(1, 6) g
                """);
        db.exec("""
                INSERT INTO tasks (queue, kind, payload, status, attempts, owner_id, lease_token, run_at, finished_at, updated_at, last_error)
                VALUES ('default', 'noop', '{"id": "q-1"}'::jsonb, 'quarantined', 1, 'worker-2', 2, now() - interval '20 minutes', now() - interval '15 minutes', now() - interval '15 minutes', 'quarantined: requeue budget 3 exhausted'),
                       ('emails', 'send_email', '{"to": "ops@example.com"}'::jsonb, 'cancelled', 0, NULL, 0, now() - interval '10 minutes', now() - interval '9 minutes', now() - interval '9 minutes', 'cancelled by operator: duplicate')
                """);
        // the stuck one: attempt 1 failed on worker-2, attempt 2 was claimed by worker-3, which died mid-task
        db.exec("""
                WITH t AS (
                    INSERT INTO tasks (queue, kind, payload, status, attempts, max_attempts, owner_id, lease_token, run_at, started_at,
                                       lease_expires_at, last_heartbeat_at, updated_at, created_at, last_error, progress, idempotency_key)
                    VALUES ('emails', 'send_email', '{"to": "customer@example.com", "template": "invoice", "invoice_id": 88213}'::jsonb, 'running', 2, 5,
                            'worker-3', 7, now() - interval '6 minutes', now() - interval '5 minutes', now() + interval '1 minute',
                            now() - interval '4 minutes', now() - interval '4 minutes', now() - interval '8 minutes',
                            'SMTP 451: temporary failure', '{"step": "rendered", "message": "connecting to smtp"}'::jsonb, 'invoice-88213')
                    RETURNING id)
                INSERT INTO task_events (task_id, event, owner_id, lease_token, at, detail)
                SELECT id, 'claimed', 'worker-2', 6, now() - interval '7 minutes', '{"attempt": 1}'::jsonb FROM t
                UNION ALL SELECT id, 'retry_scheduled', 'worker-2', 6, now() - interval '6 minutes 58 seconds',
                                 '{"attempt": 1, "max_attempts": 5, "error": "SMTP 451: temporary failure", "retry_in_ms": 60000}'::jsonb FROM t
                UNION ALL SELECT id, 'claimed', 'worker-3', 7, now() - interval '5 minutes', '{"attempt": 2}'::jsonb FROM t
                """);
        db.exec("INSERT INTO dispatcher_queues (queue, paused, changed_at, changed_by, reason)"
                + " VALUES ('reports', true, now() - interval '12 minutes', 'alice', 'warehouse maintenance until 14:00')");
        db.exec("""
                INSERT INTO concurrency_limits (scope, name, max_running, changed_at, changed_by)
                VALUES ('kind', 'build_report', 4, now() - interval '2 hours', 'alice'),
                       ('queue', 'emails', 10, now() - interval '1 day', 'cli:ops')""");
        db.exec("""
                INSERT INTO schedules (name, cron, every_s, time_zone, kind, payload, queue, missed, backfill_max, enabled,
                                       next_fire_at, last_fired_at, changed_by)
                VALUES ('nightly-report', '0 30 2 * * ?', NULL, 'Europe/Berlin', 'build_report', '{"scope": "all"}', 'reports',
                        'backfill', 3, true, date_trunc('day', now()) + interval '1 day 1 hour 30 minutes',
                        date_trunc('day', now()) + interval '1 hour 30 minutes', 'code:worker-1'),
                       ('invoice-reminders', NULL, 900, 'UTC', 'send_email', '{"template": "reminder"}', 'emails', 'skip', 0, false,
                        NULL, now() - interval '3 hours', 'alice')""");
        db.exec("""
                INSERT INTO schedule_fires (schedule, fire_at, action, task_id, skipped_until, skipped_count, node_id, recorded_at)
                VALUES ('nightly-report', date_trunc('day', now()) - interval '3 days' + interval '1 hour 30 minutes', 'skipped', NULL,
                        date_trunc('day', now()) - interval '2 days' + interval '1 hour 30 minutes', 2, 'worker-1', now() - interval '1 day'),
                       ('nightly-report', date_trunc('day', now()) - interval '1 day' + interval '1 hour 30 minutes', 'backfilled', 9001, NULL, NULL, 'worker-1', now() - interval '1 day'),
                       ('nightly-report', date_trunc('day', now()) + interval '1 hour 30 minutes', 'fired', 9002, NULL, NULL, 'worker-2', now())""");
        db.exec("VACUUM ANALYZE tasks");
    }

    /** The task stuck on the dead node. */
    static long stuckTask(TestDatabase db) {
        return ((Number) db.rows("SELECT id FROM tasks WHERE idempotency_key = 'invoice-88213'").get(0).get("id")).longValue();
    }
}

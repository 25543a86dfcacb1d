-- V5: the nodes of the cluster, and the append-only audit trail of every task transition.
CREATE TABLE dispatcher_nodes (
    node_id      text PRIMARY KEY,
    incarnation  uuid        NOT NULL,
    host         text        NOT NULL,
    pid          bigint      NOT NULL,
    version      text        NOT NULL,
    queues       text[]      NOT NULL DEFAULT '{}',
    kinds        text[]      NOT NULL DEFAULT '{}',
    started_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    stopped_at   timestamptz
);

-- Event names are a stable contract that ops queries and alerts rely on (docs/TASK_LEASES.md).
CREATE TABLE task_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id     bigint      NOT NULL,
    event       text        NOT NULL CHECK (event IN (
                    'claimed', 'succeeded', 'retry_scheduled', 'failed', 'requeued',
                    'quarantined', 'lease_lost', 'completion_refused', 'recovered_on_startup',
                    'released', 'cancelled', 'retried_by_operator')),
    owner_id    text,
    lease_token bigint,
    at          timestamptz NOT NULL DEFAULT now(),
    detail      jsonb
);
-- no foreign key to tasks: events outlive nothing, retention deletes both, and the FK check would
-- cost every transition a lookup
CREATE INDEX task_events_task_idx ON task_events (task_id, id);
CREATE INDEX task_events_at_idx ON task_events (at);

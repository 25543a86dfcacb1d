-- V11_4: cluster-wide concurrency limits. At most max_running tasks of a kind (scope 'kind') or of a
-- queue (scope 'queue') run at once across every node. The claim enforces it (TaskStore.claimDue): a
-- claimer takes a transaction-scoped advisory lock per limit it serves, then counts the running tasks
-- in the same transaction, so concurrent claimers of a limit take turns and none over-claims; a claimer
-- that does not hold a limit's lock takes no task the limit covers.
CREATE TABLE concurrency_limits (
    scope       text        NOT NULL CHECK (scope IN ('kind', 'queue')),
    name        text        NOT NULL
                CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]*$' AND char_length(name) <= 200),
    -- 0: none of these tasks starts (those running finish)
    max_running integer     NOT NULL CHECK (max_running BETWEEN 0 AND 100000),
    changed_at  timestamptz NOT NULL DEFAULT now(),
    changed_by  text,
    PRIMARY KEY (scope, name)
);

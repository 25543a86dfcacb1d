-- V8_5: what a node's readiness says, stored on its row so that `pgdispatch status` shows it for every
-- node, not only to the node's own /health/ready. NULL = ready; else the problems, one per part
-- ("claimer: no claim cycle completed for 12.3s (bound 6.0s); ..."). Written by the node when it
-- changes (after a renewal tick), so a node whose renewals stopped keeps its last word and shows its
-- age in last_seen_at. health_at is when it was written (the database clock).
ALTER TABLE dispatcher_nodes
    ADD COLUMN health    text,
    ADD COLUMN health_at timestamptz,
    -- a bounded text: a reason is a line or two; NOT VALID like the other guards (no scan of old rows)
    ADD CONSTRAINT dispatcher_nodes_health_length CHECK (char_length(health) <= 2000) NOT VALID;

package pgdispatch.ui;

import java.util.List;
import java.util.Optional;

/** The operator actions, each the transition the {@code tasks} command runs. */
enum Operation {
    RETRY("retry", "Retry", List.of("succeeded", "failed", "cancelled", "quarantined", "compensated"),
            "The task goes back to pending with a fresh attempt series (attempts and requeue count reset); any node serving its queue claims it. Event: retried_by_operator."),
    CANCEL("cancel", "Cancel", List.of("waiting", "pending", "running"),
            "The task becomes cancelled. A running handler learns it at its next lease renewal and its result is refused; tasks waiting for it are cancelled too. Event: cancelled."),
    QUARANTINE("quarantine", "Quarantine", List.of("waiting", "pending", "running", "failed", "compensating"),
            "The task is set aside for inspection (never claimed, never pruned) until an operator retries it. Event: quarantined.");

    final String name;
    final String label;
    final List<String> allowedFrom;
    final String explanation;

    Operation(String name, String label, List<String> allowedFrom, String explanation) {
        this.name = name;
        this.label = label;
        this.allowedFrom = allowedFrom;
        this.explanation = explanation;
    }

    static Optional<Operation> named(String name) {
        for (Operation o : values()) if (o.name.equals(name)) return Optional.of(o);
        return Optional.empty();
    }
}

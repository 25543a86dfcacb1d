package pgdispatch.spring;

import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.actuate.health.AbstractHealthIndicator;
import org.springframework.boot.actuate.health.Health;

/** The node's readiness as Actuator health: up when registered, its database reachable and its schema current. */
public class PgdispatchHealthIndicator extends AbstractHealthIndicator {
    private final ObjectProvider<PgdispatchNode> node;

    public PgdispatchHealthIndicator(ObjectProvider<PgdispatchNode> node) {
        super("pgdispatch health check failed");
        this.node = node;
    }

    @Override
    protected void doHealthCheck(Health.Builder builder) {
        PgdispatchNode n = node.getIfAvailable();
        if (n == null) {
            builder.unknown().withDetail("reason", "no node in this application (pgdispatch.enabled=false)");
            return;
        }
        var d = n.dispatcher();
        builder.withDetail("node", d.nodeId()).withDetail("held", d.held());
        if (!n.isRunning()) {
            builder.outOfService().withDetail("reason", "node not running");
            return;
        }
        String problem = d.readinessProblem();
        if (problem == null) {
            builder.up();
        } else {
            builder.down().withDetail("reason", problem);
        }
    }
}

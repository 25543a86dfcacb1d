package pgdispatch.runtime;

import java.net.InetAddress;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.store.NodeStore;

/**
 * Takes the node id for a new incarnation: at once when it is free, stopped, timed out, or left by a
 * process of this host that is gone; after the old heartbeat times out when the holder's liveness cannot
 * be known from here (another host), saying so; never from a live holder unless forced.
 */
final class NodeRegistration {
    private static final Logger log = LoggerFactory.getLogger(Dispatcher.class);

    private NodeRegistration() {}

    /** {@code cancelled}: the dispatcher was asked to stop while this waits for an old heartbeat to age. */
    static NodeStore.Registration.Registered register(NodeStore nodes, DispatcherConfig config, List<String> kinds,
                                                       String version, boolean force, Runnable checkCancelled)
            throws InterruptedException {
        String host = hostName();
        long pid = ProcessHandle.current().pid();
        java.time.OffsetDateTime firstSeen = null;
        long waitUntil = 0;
        while (true) {
            boolean previousDead = nodes.find(config.nodeId(), config.nodeTimeout())
                    .map(n -> n.host().equals(host) && n.pid() != pid && ProcessHandle.of(n.pid()).isEmpty())
                    .orElse(false);
            var r = nodes.register(config.nodeId(), host, pid, version, config.queues(), kinds, config.nodeTimeout(),
                    previousDead, force);
            if (r instanceof NodeStore.Registration.Registered ok) {
                ok.previous().ifPresent(p -> log.info("dispatcher: node={} took over from incarnation {} (host {} pid {}, {})",
                        config.nodeId(), p.incarnation(), p.host(), p.pid(),
                        p.stoppedAt() != null ? "stopped" : p.alive() ? "forced or its process is gone" : "heartbeat timed out"));
                return ok;
            }
            var holder = ((NodeStore.Registration.HeldByLive) r).holder();
            if (holder.host().equals(host) && ProcessHandle.of(holder.pid()).isPresent() && holder.pid() != pid) {
                throw new Dispatcher.NodeIdInUseException(config.nodeId(), holder.host(), holder.pid(), "it is alive on this host");
            }
            if (firstSeen == null) {
                firstSeen = holder.lastSeenAt();
                long leftMs = Math.max(0, config.nodeTimeout().toMillis() - (long) (holder.secondsSinceSeen() * 1000));
                waitUntil = System.currentTimeMillis() + leftMs + config.renewInterval().toMillis();
                log.warn("dispatcher: node id {} is held by incarnation {} on host {} (pid {}), last seen {}s ago; cannot tell "
                        + "whether it is alive from here, waiting up to {}s for its heartbeat to time out (or use --force)",
                        config.nodeId(), holder.incarnation(), holder.host(), holder.pid(),
                        Math.round(holder.secondsSinceSeen()), (leftMs + config.renewInterval().toMillis()) / 1000);
            } else if (holder.lastSeenAt().isAfter(firstSeen)) {
                throw new Dispatcher.NodeIdInUseException(config.nodeId(), holder.host(), holder.pid(), "it is still heartbeating");
            }
            if (System.currentTimeMillis() > waitUntil) {
                throw new Dispatcher.NodeIdInUseException(config.nodeId(), holder.host(), holder.pid(), "its heartbeat did not time out");
            }
            checkCancelled.run();
            Thread.sleep(Math.min(200, config.renewInterval().toMillis())); // waiting for the old incarnation's heartbeat to age
        }
    }

    private static String hostName() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (Exception e) {
            return "unknown";
        }
    }

}

package pgdispatch.chaos;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A TCP proxy on 127.0.0.1 between one node and PostgreSQL whose network the chaos run (or a test)
 * breaks on purpose. Modes:
 * <ul>
 *   <li>{@link Mode#PASS}: bytes flow both ways.</li>
 *   <li>{@link Mode#DROP}: every open connection is closed at once (the node sees a reset) and new ones
 *       are closed as soon as they are accepted: a server or route that is gone.</li>
 *   <li>{@link Mode#STALL}: connections stay open but no byte moves; back in PASS they flow again,
 *       late: a partition that heals before any TCP timeout (a statement that committed answers late).</li>
 *   <li>{@link Mode#BLACKHOLE}: bytes are swallowed; connections that saw the blackhole are closed when
 *       it ends: a partition that lasted long enough for the connections to die (a committed
 *       statement's answer is never seen).</li>
 * </ul>
 * Connections are accepted even while broken, as a kernel would, so the node's own timeouts decide.
 */
public final class ChaosProxy implements AutoCloseable {
    /** What the proxy does to bytes now. */
    public enum Mode { PASS, DROP, STALL, BLACKHOLE }

    private final String name;
    private final InetSocketAddress upstream;
    private final ServerSocket server;
    private final Set<Link> links = ConcurrentHashMap.newKeySet();
    private final Object gate = new Object();
    private final AtomicLong accepted = new AtomicLong();
    private volatile Mode mode = Mode.PASS;
    private volatile boolean closed;

    /** Listens on an ephemeral port of 127.0.0.1, forwarding to {@code upstreamHost:upstreamPort}. */
    public ChaosProxy(String name, String upstreamHost, int upstreamPort) throws IOException {
        this.name = name;
        this.upstream = new InetSocketAddress(upstreamHost, upstreamPort);
        this.server = new ServerSocket(0, 128, InetAddress.getLoopbackAddress());
        Thread.ofPlatform().daemon().name("chaos-proxy-" + name).start(this::acceptLoop);
    }

    public int port() {
        return server.getLocalPort();
    }

    public Mode mode() {
        return mode;
    }

    public long acceptedConnections() {
        return accepted.get();
    }

    /**
     * The local ports of this proxy's connections to PostgreSQL: {@code pg_stat_activity.client_port}
     * of the node's backends, so a chaos run terminates exactly this node's sessions.
     */
    public Set<Integer> upstreamPorts() {
        Set<Integer> out = new java.util.HashSet<>();
        for (Link l : links) {
            Socket s = l.server;
            if (s != null && s.isConnected() && !s.isClosed()) out.add(s.getLocalPort());
        }
        return out;
    }

    /** Switches mode; leaving BLACKHOLE closes the connections that saw it. */
    public void set(Mode next) {
        Mode before;
        synchronized (gate) {
            before = mode;
            mode = next;
            gate.notifyAll();
        }
        if (next == Mode.DROP) {
            for (Link l : links) l.close();
        }
        if (before == Mode.BLACKHOLE && next != Mode.BLACKHOLE) {
            for (Link l : links) {
                if (l.doomed) l.close();
            }
        }
    }

    private void acceptLoop() {
        while (!closed) {
            Socket client;
            try {
                client = server.accept();
            } catch (IOException e) {
                if (closed) return;
                continue;
            }
            accepted.incrementAndGet();
            if (mode == Mode.DROP) {
                closeQuietly(client);
                continue;
            }
            Link link = new Link(client);
            links.add(link);
            // platform threads: a stalled pump waits in Object.wait, which pins a virtual thread on JDK 21
            Thread.ofPlatform().daemon().name("chaos-link-" + name).start(link::open);
        }
    }

    /** One proxied connection: the node's socket, PostgreSQL's socket and a pump each way. */
    private final class Link {
        final Socket client;
        volatile Socket server;
        volatile boolean doomed;
        private volatile boolean done;

        Link(Socket client) {
            this.client = client;
        }

        void open() {
            try {
                Socket s = new Socket();
                s.connect(upstream, 5000);
                s.setTcpNoDelay(true);
                client.setTcpNoDelay(true);
                server = s;
                if (done) {
                    close();
                    return;
                }
                Thread.ofPlatform().daemon().name("chaos-pump-" + name).start(() -> pump(client, s));
                pump(s, client);
            } catch (IOException e) {
                close();
            }
        }

        private void pump(Socket from, Socket to) {
            byte[] buf = new byte[16 * 1024];
            try {
                InputStream in = from.getInputStream();
                OutputStream out = to.getOutputStream();
                int n;
                while ((n = in.read(buf)) >= 0) {
                    if (!pass()) continue; // swallowed by a blackhole
                    out.write(buf, 0, n);
                    out.flush();
                }
            } catch (IOException | InterruptedException e) {
                // the other side or the proxy closed it; close both below
            }
            close();
        }

        /** Waits out a stall; false when the bytes must be swallowed. */
        private boolean pass() throws InterruptedException, IOException {
            synchronized (gate) {
                while (mode == Mode.STALL && !done) gate.wait();
                if (done || mode == Mode.DROP) throw new IOException("dropped");
                if (mode == Mode.BLACKHOLE) {
                    doomed = true;
                    return false;
                }
                return true;
            }
        }

        void close() {
            done = true;
            links.remove(this);
            closeQuietly(client);
            Socket s = server;
            if (s != null) closeQuietly(s);
            synchronized (gate) {
                gate.notifyAll();
            }
        }
    }

    private static void closeQuietly(Socket s) {
        try {
            s.close();
        } catch (IOException ignored) {
            // closing a socket already broken on purpose
        }
    }

    @Override
    public void close() {
        closed = true;
        try {
            server.close();
        } catch (IOException ignored) {
            // shutting down
        }
        for (Link l : links) l.close();
    }
}

package pgdispatch.ui;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Executors;

/**
 * A reverse proxy as a deployment puts in front of the dashboard: {@code /ops/pgd/...} here is
 * {@code /...} on the upstream, with {@code X-Forwarded-Prefix: /ops/pgd} (as nginx, Traefik or an
 * ingress send it). Requests, cookies and redirects pass through unchanged.
 */
final class PrefixProxy implements AutoCloseable {
    static final String PREFIX = "/ops/pgd";
    private static final List<String> REQUEST_HEADERS = List.of("Cookie", "Content-Type", "Accept");
    private static final List<String> RESPONSE_HEADERS = List.of("Content-Type", "Location", "Set-Cookie",
            "Content-Security-Policy", "Cache-Control");

    private final HttpServer server;
    private final HttpClient client = HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NEVER)
            .connectTimeout(Duration.ofSeconds(5)).build();

    PrefixProxy(String upstream) throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 16);
        server.setExecutor(Executors.newFixedThreadPool(4));
        server.createContext(PREFIX + "/", ex -> forward(ex, upstream));
        server.start();
    }

    String url(String path) {
        return "http://127.0.0.1:" + server.getAddress().getPort() + PREFIX + path;
    }

    private void forward(HttpExchange ex, String upstream) throws IOException {
        try {
            String path = ex.getRequestURI().getRawPath().substring(PREFIX.length());
            String query = ex.getRequestURI().getRawQuery();
            HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(upstream + path + (query == null ? "" : "?" + query)))
                    .timeout(Duration.ofSeconds(20)).header("X-Forwarded-Prefix", PREFIX)
                    .method(ex.getRequestMethod(), HttpRequest.BodyPublishers.ofByteArray(ex.getRequestBody().readAllBytes()));
            for (String h : REQUEST_HEADERS) {
                String v = ex.getRequestHeaders().getFirst(h);
                if (v != null) b.header(h, v);
            }
            HttpResponse<byte[]> r = client.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
            for (String h : RESPONSE_HEADERS) {
                r.headers().allValues(h).forEach(v -> ex.getResponseHeaders().add(h, v));
            }
            ex.sendResponseHeaders(r.statusCode(), r.body().length == 0 ? -1 : r.body().length);
            try (OutputStream o = ex.getResponseBody()) {
                o.write(r.body());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            ex.sendResponseHeaders(502, -1);
        } finally {
            ex.close();
        }
    }

    @Override
    public void close() {
        server.stop(0);
        ((java.util.concurrent.ExecutorService) server.getExecutor()).shutdownNow();
    }
}

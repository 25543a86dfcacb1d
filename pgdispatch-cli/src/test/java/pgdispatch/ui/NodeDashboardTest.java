package pgdispatch.ui;

import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.http.HttpEndpoint;
import pgdispatch.runtime.Dispatcher;
import pgdispatch.testing.TestDatabase;

/** The dashboard on a node's own HTTP port, as {@code run} serves it: beside /metrics, before and after the node starts. */
class NodeDashboardTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private final HttpClient client = HttpClient.newHttpClient();

    @Test
    void servedBesideTheProbesSayingWhyUntilTheNodeHasADatabase() throws Exception {
        DispatcherConfig cfg = db.config().withHttpPort(0);
        var registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        AtomicReference<Dispatcher> node = new AtomicReference<>();
        Dashboard ui = Dashboard.forNode(node::get, () -> "database unreachable: SQLState 08001", cfg, null);
        HttpEndpoint http = HttpEndpoint.startIfEnabled(cfg, registry, node::get, () -> "starting", List.of(ui::addTo));
        try {
            HttpResponse<String> early = get(http, "/ui/");
            assertThat(early.statusCode()).isEqualTo(503);
            assertThat(early.body()).contains("the node has not started: database unreachable: SQLState 08001");

            node.set(Dispatcher.builder(cfg).meterRegistry(registry).build().start());
            HttpResponse<String> overview = get(http, "/ui/");
            assertThat(overview.statusCode()).isEqualTo(200);
            assertThat(overview.body()).contains("<h1>Overview</h1>");
            assertThat(overview.headers().firstValue("Content-Security-Policy")).hasValueSatisfying(csp ->
                    assertThat(csp).contains("script-src 'self'", "frame-ancestors 'none'"));
            assertThat(get(http, "/ui/nodes").body()).contains("node-a");
            assertThat(get(http, "/metrics").statusCode()).isEqualTo(200);
            assertThat(get(http, "/health/ready").statusCode()).isEqualTo(200);
            HttpResponse<String> root = get(http, "/");
            assertThat(root.statusCode()).isEqualTo(302);
            assertThat(root.headers().firstValue("Location")).hasValue("/ui/");
            assertThat(get(http, "/ui/tasks/abc").body()).contains("task id abc must be a whole number from 1 to 9223372036854775807");
            assertThat(get(http, "/ui/tasks/999").statusCode()).isEqualTo(404);
            assertThat(get(http, "/ui/assets/../../etc/passwd").statusCode()).isEqualTo(404);
            assertThat(get(http, "/ui/assets/uPlot.iife.min.js").body()).contains("uPlot");
        } finally {
            if (node.get() != null) node.get().stop();
            http.stop();
        }
    }

    private HttpResponse<String> get(HttpEndpoint http, String path) throws Exception {
        return client.send(HttpRequest.newBuilder(URI.create(http.baseUrl() + path)).build(), HttpResponse.BodyHandlers.ofString());
    }
}

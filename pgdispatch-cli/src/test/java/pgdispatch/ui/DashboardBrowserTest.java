package pgdispatch.ui;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.openqa.selenium.By;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.WebElement;
import pgdispatch.api.TaskClient;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.http.HttpEndpoint;
import pgdispatch.runtime.Dispatcher;
import pgdispatch.store.Schedule;
import pgdispatch.store.ScheduleStore;
import pgdispatch.store.TaskStore;
import pgdispatch.testing.TaskRows;
import pgdispatch.testing.TestDatabase;

/**
 * The dashboard in a real browser (headless Chromium, one for the whole class): an operator finds a
 * stuck task from the overview, reads its timeline, acts on it and watches it succeed; user data stays
 * inert text; a read-only dashboard and a wrong token refuse; bad filters say what is wrong; pages work
 * through a reverse proxy under a path prefix. Screenshots of each page go to target/dashboard (and to
 * the folder {@code -Dpgdispatch.screenshots} names, e.g. docs/dashboard).
 */
class DashboardBrowserTest {
    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    static final String TOKEN = "operator-token-0123456789";
    static final Duration STALE = Duration.ofSeconds(60);
    static final Duration NODE_TIMEOUT = Duration.ofSeconds(30);

    static WebDriver browser;
    static HttpEndpoint readOnly;
    static HttpEndpoint withToken;
    final HttpClient http = HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NEVER).build();

    @BeforeAll
    static void start() {
        DispatcherConfig cfg = db.config().withTimings(Duration.ofSeconds(30), Duration.ofSeconds(10), STALE, NODE_TIMEOUT);
        readOnly = new Dashboard(db::database, cfg, null).serve("127.0.0.1", 0);
        withToken = new Dashboard(db::database, cfg, TOKEN).serve("127.0.0.1", 0);
        browser = Browser.start();
    }

    @AfterAll
    static void stop() {
        if (browser != null) browser.quit();
        if (readOnly != null) readOnly.stop();
        if (withToken != null) withToken.stop();
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(Thread.getAllStackTraces().keySet())
                .filteredOn(t -> t.isAlive() && t.getName().startsWith("pgdispatch-")).isEmpty());
    }

    @BeforeEach
    void clean() {
        db.exec("TRUNCATE tasks, task_event_log, dispatcher_nodes, dispatcher_queues, concurrency_limits, schedules, schedule_fires");
        browser.manage().deleteAllCookies();
    }

    @Test
    void aStuckTaskFoundFromTheOverviewIsQuarantinedRetriedAndSucceeds() throws Exception {
        TaskRows.node(db, "node-gone", Duration.ofMinutes(5));
        long id = TaskRows.running(db, "node-gone");
        TaskRows.update(db, id, "kind = 'noop', lease_token = 4");
        db.exec("INSERT INTO task_events (task_id, event, owner_id, lease_token, detail) VALUES (" + id
                + ", 'claimed', 'node-gone', 4, '{\"attempt\": 1}')");
        signIn(withToken);

        browser.get(withToken.baseUrl() + "/ui/");
        WebElement stuckRow = browser.findElement(By.cssSelector("#stuck tbody tr"));
        assertThat(stuckRow.getText()).contains("#" + id, "node-gone", "owner node node-gone not seen since", "the reaper will requeue it");
        assertThat(stuckRow.getAttribute("class")).isEqualTo("alert");
        Browser.open(browser, By.linkText("#" + id));

        assertThat(Browser.text(browser, "#stuck-reason")).startsWith("Stuck: owner node node-gone not seen since")
                .endsWith("; the reaper will requeue it");
        assertThat(Browser.text(browser, "#timeline")).contains("attempt 1: node-gone, lease token 4");
        assertThat(Browser.text(browser, "#lease")).contains("node-gone", "4");
        assertThat(browser.findElements(By.id("action-retry"))).as("a running task cannot be retried").isEmpty();

        act("quarantine", "node-gone is gone for good");
        assertThat(Browser.text(browser, "#flash")).isEqualTo("Quarantine done.");
        assertThat(Browser.text(browser, "#task-status")).isEqualTo("quarantined");
        act("retry", "handler fixed");
        assertThat(Browser.text(browser, "#task-status")).isEqualTo("pending");
        assertThat(db.rows("SELECT event || ' ' || coalesce(detail->>'reason', '-') AS e FROM task_events WHERE task_id = " + id
                + " ORDER BY id")).extracting(r -> r.get("e")).containsExactly("claimed -",
                "quarantined node-gone is gone for good (dashboard)", "retried_by_operator handler fixed (dashboard)");

        Dispatcher node = Dispatcher.builder(db.config().withHttpPort(DispatcherConfig.HTTP_OFF)).build().start();
        try {
            await().atMost(Duration.ofSeconds(30)).until(() -> db.count("tasks WHERE status = 'succeeded' AND id = " + id) == 1);
        } finally {
            node.stop();
        }
        browser.navigate().refresh();
        assertThat(Browser.text(browser, "#task-status")).isEqualTo("succeeded");
        assertThat(Browser.text(browser, "#timeline")).contains("attempt 1: node-a, lease token 5", "succeeded");
    }

    @Test
    void pausingAQueueStopsItsClaimsAndResumingRestartsThem() throws Exception {
        DispatcherConfig cfg = db.config().withNode("node-a", List.of("mail", "default"), 4).withHttpPort(DispatcherConfig.HTTP_OFF);
        Dispatcher node = Dispatcher.builder(cfg).build().start();
        try {
            signIn(withToken);
            browser.get(withToken.baseUrl() + "/ui/");
            Browser.open(browser, By.id("pause-mail"));
            assertThat(Browser.text(browser, "h1")).isEqualTo("Pause queue mail?");
            browser.findElement(By.id("reason")).sendKeys("smtp provider down");
            Browser.open(browser, By.id("confirm"));
            assertThat(Browser.text(browser, "#flash")).isEqualTo("Queue paused.");
            assertThat(browser.findElement(By.id("paused-mail")).getAttribute("title")).endsWith("by dashboard: smtp provider down");

            // the paused queue's tasks go in first: had the node claimed from it, they would have run first
            TaskClient client = new TaskClient(new TaskStore(db.database()), 1 << 20);
            for (int i = 0; i < 3; i++) client.enqueue(TaskClient.Enqueue.of("noop", "{}").queue("mail"));
            for (int i = 0; i < 3; i++) client.enqueue(TaskClient.Enqueue.of("noop", "{}"));
            await().atMost(Duration.ofSeconds(30)).until(() -> db.count("tasks WHERE queue = 'default' AND status = 'succeeded'") == 3);
            assertThat(db.count("tasks WHERE queue = 'mail' AND status = 'pending'")).isEqualTo(3);
            assertThat(db.count("task_events e JOIN tasks t ON t.id = e.task_id WHERE t.queue = 'mail'")).as("no claim").isZero();

            browser.navigate().refresh();
            Browser.open(browser, By.id("resume-mail"));
            browser.findElement(By.id("reason")).sendKeys("provider is back");
            Browser.open(browser, By.id("confirm"));
            assertThat(Browser.text(browser, "#flash")).isEqualTo("Queue resumed.");
            assertThat(browser.findElements(By.id("paused-mail"))).isEmpty();
            await().atMost(Duration.ofSeconds(30)).until(() -> db.count("tasks WHERE queue = 'mail' AND status = 'succeeded'") == 3);
        } finally {
            node.stop();
        }
    }

    @Test
    void aLimitSetOnTheLimitsPageHoldsItsKindBackAndClearingItReleasesIt() throws Exception {
        DispatcherConfig cfg = db.config().withNode("node-a", List.of("default"), 4).withHttpPort(DispatcherConfig.HTTP_OFF);
        signIn(withToken);
        browser.get(withToken.baseUrl() + "/ui/");
        assertThat(browser.findElements(By.id("overview-limits"))).as("no limit, no section").isEmpty();
        Browser.open(browser, By.id("nav-limits"));
        assertThat(Browser.text(browser, "#no-limits")).startsWith("No limit is set");

        // a refused value is named, and what was typed is shown again
        browser.findElement(By.id("limit-name")).sendKeys("echo");
        browser.findElement(By.id("limit-max")).sendKeys("-1");
        Browser.open(browser, By.id("limit-set"));
        assertThat(Browser.text(browser, "#errors")).isEqualTo("MAX=-1 must be from 0 to 100000 (0: none starts; `limits clear` removes the limit)");
        assertThat(browser.findElement(By.id("limit-name")).getAttribute("value")).isEqualTo("echo");

        browser.findElement(By.id("limit-max")).clear();
        browser.findElement(By.id("limit-max")).sendKeys("0");
        Browser.open(browser, By.id("limit-set"));
        assertThat(Browser.text(browser, "#flash")).isEqualTo("Limit set.");
        assertThat(Browser.text(browser, "#limit-kind-echo")).startsWith("kind echo 0 0").contains("dashboard");
        browser.get(withToken.baseUrl() + "/ui/");
        assertThat(Browser.text(browser, "#overview-limits tbody")).isEqualTo("kind echo 0 0");

        Dispatcher node = Dispatcher.builder(cfg).build().start();
        try {
            // the held kind's tasks go in first: had the node claimed them, they would have run first
            TaskClient client = new TaskClient(new TaskStore(db.database()), 1 << 20);
            for (int i = 0; i < 3; i++) client.enqueue(TaskClient.Enqueue.of("echo", "{}"));
            for (int i = 0; i < 3; i++) client.enqueue(TaskClient.Enqueue.of("noop", "{}"));
            await().atMost(Duration.ofSeconds(30)).until(() -> db.count("tasks WHERE kind = 'noop' AND status = 'succeeded'") == 3);
            assertThat(db.count("tasks WHERE kind = 'echo' AND status = 'pending'")).isEqualTo(3);

            browser.get(withToken.baseUrl() + "/ui/limits");
            Browser.open(browser, By.id("clear-kind-echo"));
            assertThat(Browser.text(browser, "#flash")).isEqualTo("Limit cleared.");
            assertThat(browser.findElements(By.id("limit-kind-echo"))).isEmpty();
            await().atMost(Duration.ofSeconds(30)).until(() -> db.count("tasks WHERE kind = 'echo' AND status = 'succeeded'") == 3);
        } finally {
            node.stop();
        }
    }

    @Test
    void aReadOnlyDashboardShowsLimitsButRefusesToSetThem() throws Exception {
        db.exec("INSERT INTO concurrency_limits (scope, name, max_running, changed_at, changed_by) VALUES ('queue', 'mail', 2, now(), 'cli:ops')");
        browser.get(readOnly.baseUrl() + "/ui/limits");
        assertThat(Browser.text(browser, "#limit-queue-mail")).startsWith("queue mail 2 0").endsWith("cli:ops");
        assertThat(browser.findElements(By.id("limit-form"))).isEmpty();
        assertThat(browser.findElements(By.id("clear-queue-mail"))).isEmpty();
        assertThat(post(readOnly, "/ui/limits", "scope=kind&name=echo&max=1", null).statusCode()).isEqualTo(403);
        assertThat(post(readOnly, "/ui/limits/queue/mail/clear", "", null).statusCode()).isEqualTo(403);
        assertThat(post(withToken, "/ui/limits/queue/mail/clear", "csrf=forged", "forged-session").statusCode()).isEqualTo(403);
        assertThat(db.count("concurrency_limits")).isEqualTo(1);
    }

    @Test
    void aScheduleIsRunNowDisabledAndEnabledFromTheSchedulesPage() {
        ScheduleStore store = new ScheduleStore(db.database().dataSource());
        store.add(Schedule.cron("nightly", "0 30 2 * * ?", "noop").zone("Europe/Berlin").backfill(3), true, "cli:ops");
        store.placeAfterNow("nightly", store.find("nightly").orElseThrow().definition().recurrence());
        signIn(withToken);
        browser.get(withToken.baseUrl() + "/ui/");
        Browser.open(browser, By.id("nav-schedules"));
        assertThat(Browser.text(browser, "#schedule-nightly")).startsWith("nightly enabled cron 0 30 2 * * ? Europe/Berlin noop@default backfill 3 20")
                .contains("cli:ops");

        Browser.open(browser, By.id("run-nightly"));
        assertThat(Browser.text(browser, "#flash")).isEqualTo("One task of the schedule enqueued.");
        long task = ((Number) db.rows("SELECT task_id FROM schedule_fires WHERE action = 'run_now'").get(0).get("task_id")).longValue();
        assertThat(db.count("tasks WHERE id = " + task + " AND kind = 'noop'")).isOne();
        assertThat(Browser.text(browser, "#schedule-nightly")).contains(": task " + task + " (dashboard)");

        Browser.open(browser, By.id("toggle-nightly"));
        assertThat(Browser.text(browser, "#flash")).isEqualTo("Schedule disabled.");
        assertThat(Browser.text(browser, "#schedule-nightly")).startsWith("nightly disabled").contains(" disabled ").contains("dashboard");
        assertThat(db.count("schedules WHERE NOT enabled AND next_fire_at IS NULL AND changed_by = 'dashboard'")).isOne();
        Browser.open(browser, By.id("toggle-nightly"));
        assertThat(Browser.text(browser, "#flash")).startsWith("Schedule enabled");
        assertThat(db.count("schedules WHERE enabled AND next_fire_at > now()")).isOne();
        assertThat(browser.findElement(By.id("toggle-nightly")).getText()).isEqualTo("Disable");
    }

    @Test
    void aReadOnlyDashboardShowsSchedulesButRefusesToChangeThem() throws Exception {
        new ScheduleStore(db.database().dataSource()).add(Schedule.every("tick", Duration.ofMinutes(5), "noop"), true, "cli:ops");
        browser.get(readOnly.baseUrl() + "/ui/schedules");
        assertThat(Browser.text(browser, "#schedule-tick")).startsWith("tick enabled every 300s noop@default skip");
        assertThat(browser.findElements(By.id("toggle-tick"))).isEmpty();
        assertThat(browser.findElements(By.id("run-tick"))).isEmpty();
        assertThat(post(readOnly, "/ui/schedules/tick/disable", "", null).statusCode()).isEqualTo(403);
        assertThat(post(readOnly, "/ui/schedules/tick/run-now", "", null).statusCode()).isEqualTo(403);
        assertThat(post(withToken, "/ui/schedules/tick/run-now", "csrf=forged", "forged-session").statusCode()).isEqualTo(403);
        assertThat(db.count("schedules WHERE enabled")).isOne();
        assertThat(db.count("tasks")).isZero();
    }

    @Test
    void userDataIsRenderedAsInertText() throws Exception {
        String script = "<script>window.__xss = 1</script>";
        String img = "<img src=x onerror=\"window.__xss = 2\">";
        long id = new TaskClient(new TaskStore(db.database()), 1 << 20).enqueue(
                TaskClient.Enqueue.of("noop", "{\"note\": \"" + script + "\", \"html\": \"" + img.replace("\"", "\\\"") + "\"}"));
        db.exec("UPDATE tasks SET status = 'failed', finished_at = now(), last_error = '" + img.replace("x", "y")
                + "', progress = '{\"message\": \"<svg onload=window.__xss=3>\"}' WHERE id = " + id);
        db.exec("INSERT INTO task_events (task_id, event, detail) VALUES (" + id + ", 'failed', '{\"error\": \"<b onmouseover=x>\"}')");

        for (String page : List.of("/ui/tasks/" + id, "/ui/tasks", "/ui/")) {
            browser.get(readOnly.baseUrl() + page);
            assertThat(((JavascriptExecutor) browser).executeScript("return typeof window.__xss")).as(page).isEqualTo("undefined");
            assertThat(browser.findElements(By.cssSelector("main img, main script, main svg, main b"))).as(page).isEmpty();
        }
        browser.get(readOnly.baseUrl() + "/ui/tasks/" + id);
        assertThat(Browser.text(browser, "#payload")).contains(script, "<img src=x onerror=\\\"window.__xss = 2\\\">");
        assertThat(Browser.text(browser, "#last-error")).isEqualTo(img.replace("x", "y"));
        assertThat(Browser.text(browser, "#progress")).contains("<svg onload=window.__xss=3>");
        assertThat(Browser.text(browser, "#timeline")).contains("<b onmouseover=x>");
    }

    @Test
    void aReadOnlyDashboardOffersNoActionAndRefusesOne() throws Exception {
        long id = TaskRows.terminal(db, pgdispatch.store.TaskStatus.FAILED);
        browser.get(readOnly.baseUrl() + "/ui/tasks/" + id);
        assertThat(Browser.text(browser, "#read-only")).isEqualTo("read-only");
        assertThat(browser.findElements(By.cssSelector("[id^=action-]"))).isEmpty();
        assertThat(Browser.text(browser, ".actions")).contains("set PGDISPATCH_UI_TOKEN");

        browser.get(readOnly.baseUrl() + "/ui/tasks/" + id + "/retry");
        assertThat(Browser.text(browser, "#message")).isEqualTo("actions are disabled: this dashboard is read-only (set PGDISPATCH_UI_TOKEN to enable them)");

        HttpResponse<String> post = post(readOnly, "/ui/tasks/" + id + "/retry", "reason=x&csrf=x", null);
        assertThat(post.statusCode()).isEqualTo(403);
        assertThat(db.count("tasks WHERE status = 'failed' AND id = " + id)).isEqualTo(1);
        assertThat(db.count("task_events WHERE task_id = " + id)).isZero();
    }

    @Test
    void aWrongTokenAMissingSessionAndAForgedFormAreRefused() throws Exception {
        long id = TaskRows.terminal(db, pgdispatch.store.TaskStatus.FAILED);
        browser.get(withToken.baseUrl() + "/ui/login");
        browser.findElement(By.id("token")).sendKeys("not-the-token-0123456789");
        Browser.open(browser, By.id("login"));
        assertThat(Browser.text(browser, "#login-error")).isEqualTo("That is not the PGDISPATCH_UI_TOKEN of this dashboard.");
        browser.get(withToken.baseUrl() + "/ui/tasks/" + id);
        assertThat(browser.findElements(By.cssSelector("[id^=action-]"))).isEmpty();

        assertThat(post(withToken, "/ui/tasks/" + id + "/retry", "reason=x", null).body())
                .contains("sign in with PGDISPATCH_UI_TOKEN to act on tasks");
        signIn(withToken);
        String session = browser.manage().getCookieNamed(UiAccess.COOKIE).getValue();
        HttpResponse<String> forged = post(withToken, "/ui/tasks/" + id + "/retry", "reason=x&csrf=0123", session);
        assertThat(forged.statusCode()).isEqualTo(403);
        assertThat(forged.body()).contains("the form's token does not match your session (CSRF check)");
        assertThat(db.count("tasks WHERE status = 'failed' AND id = " + id)).isEqualTo(1);
        assertThat(db.count("task_events WHERE task_id = " + id)).isZero();
    }

    @Test
    void aBadFilterValueIsNamedAndFiltersAreBoundNotSpliced() {
        TaskRows.pending(db);
        browser.get(withToken.baseUrl() + "/ui/tasks?status=bogus&id=12x&from=yesterday");
        assertThat(Browser.text(browser, "#filter-errors")).isEqualTo(String.join("\n",
                "id=12x must be a task id: a whole number from 1 to 9223372036854775807",
                "status=bogus is not a task status; valid: waiting, pending, running, succeeded, failed, cancelled, quarantined, compensating, compensated",
                "from=yesterday must be a time like 2026-11-28T10:15 (UTC) or 2026-11-28T10:15:00+01:00"));
        assertThat(browser.findElement(By.name("id")).getAttribute("value")).as("the form keeps what was typed").isEqualTo("12x");

        browser.get(withToken.baseUrl() + "/ui/tasks?queue=" + java.net.URLEncoder.encode("x' OR '1'='1", java.nio.charset.StandardCharsets.UTF_8));
        assertThat(Browser.text(browser, "main")).contains("No task matches.");
        browser.get(withToken.baseUrl() + "/ui/tasks?queue=default&status=pending");
        assertThat(browser.findElements(By.cssSelector("#tasks tbody tr"))).hasSize(1);
    }

    @Test
    void theListingPagesByKeysetNewestFirst() {
        db.exec("INSERT INTO tasks (kind) SELECT 'noop' FROM generate_series(1, 120)");
        long newest = db.rows("SELECT max(id) AS m FROM tasks").get(0).get("m") instanceof Long l ? l : 0;
        browser.get(withToken.baseUrl() + "/ui/tasks?kind=noop");
        assertThat(ids()).hasSize(50).startsWith(newest);
        Browser.open(browser, By.id("next"));
        assertThat(ids()).hasSize(50).startsWith(newest - 50);
        Browser.open(browser, By.id("next"));
        assertThat(ids()).hasSize(20).startsWith(newest - 100).endsWith(newest - 119);
        assertThat(browser.findElements(By.id("next"))).isEmpty();
        assertThat(browser.getCurrentUrl()).contains("kind=noop", "before=" + (newest - 99));
    }

    @Test
    void worksBehindAReverseProxyUnderAPathPrefix() throws Exception {
        long id = TaskRows.pending(db);
        db.exec("INSERT INTO task_events (task_id, event, owner_id, lease_token, detail)"
                + " SELECT " + id + ", 'claimed', 'node-a', 1, '{}' FROM generate_series(1, 5)");
        try (PrefixProxy proxy = new PrefixProxy(withToken.baseUrl())) {
            browser.get(proxy.url("/ui/login"));
            browser.findElement(By.id("token")).sendKeys(TOKEN);
            Browser.open(browser, By.id("login"));
            assertThat(browser.getCurrentUrl()).isEqualTo(proxy.url("/ui/"));
            assertThat(browser.findElements(By.cssSelector("#throughput canvas"))).as("uPlot loaded through the prefix").isNotEmpty();
            assertThat(browser.findElements(By.id("sign-out"))).as("the session cookie's path is the prefixed one").hasSize(1);
            Browser.open(browser, By.linkText("Tasks"));
            assertThat(browser.getCurrentUrl()).isEqualTo(proxy.url("/ui/tasks"));
            Browser.open(browser, By.linkText("#" + id));
            Browser.open(browser, By.id("action-cancel"));
            browser.findElement(By.id("reason")).sendKeys("through the proxy");
            Browser.open(browser, By.id("confirm"));
            assertThat(browser.getCurrentUrl()).isEqualTo(proxy.url("/ui/tasks/" + id + "?done=cancel"));
            assertThat(Browser.text(browser, "#task-status")).isEqualTo("cancelled");
        }
    }

    @Test
    void screenshotsOfEachPage() throws Exception {
        DashboardSample.populate(db);
        signIn(withToken);
        Path out = Path.of(System.getProperty("pgdispatch.screenshots", "pgdispatch-cli/target/dashboard"));
        browser.get(withToken.baseUrl() + "/ui/");
        assertThat(browser.findElements(By.cssSelector("#throughput canvas"))).isNotEmpty();
        assertThat(browser.findElement(By.cssSelector("#overview-limits tbody tr")).getAttribute("class"))
                .as("build_report: 6 running of a limit of 4").isEqualTo("alert");
        assertThat(browser.findElements(By.cssSelector("#stuck tbody tr"))).isNotEmpty();
        Browser.screenshot(browser, out.resolve("overview.png"));
        browser.get(withToken.baseUrl() + "/ui/tasks");
        Browser.screenshot(browser, out.resolve("tasks.png"));
        long stuck = DashboardSample.stuckTask(db);
        browser.get(withToken.baseUrl() + "/ui/tasks/" + stuck);
        assertThat(Browser.text(browser, "#timeline")).contains("attempt 2");
        Browser.screenshot(browser, out.resolve("task.png"));
        Browser.open(browser, By.id("action-quarantine"));
        Browser.screenshot(browser, out.resolve("confirm.png"));
        browser.get(withToken.baseUrl() + "/ui/nodes");
        assertThat(browser.findElements(By.cssSelector("#nodes tbody tr"))).hasSizeGreaterThanOrEqualTo(3);
        Browser.screenshot(browser, out.resolve("nodes.png"));
        browser.get(withToken.baseUrl() + "/ui/tasks?status=bogus");
        Browser.screenshot(browser, out.resolve("bad-filter.png"));
        browser.get(withToken.baseUrl() + "/ui/limits");
        assertThat(browser.findElements(By.cssSelector("#limits tbody tr"))).isNotEmpty();
        Browser.screenshot(browser, out.resolve("limits.png"));
        browser.get(withToken.baseUrl() + "/ui/schedules");
        assertThat(browser.findElements(By.cssSelector("#schedules tbody tr"))).hasSize(2);
        assertThat(Browser.text(browser, "#schedule-nightly-report")).contains("skipped 2 missed fire times from");
        Browser.screenshot(browser, out.resolve("schedules.png"));
    }

    // ------------------------------------------------------------------ helpers

    private void signIn(HttpEndpoint server) {
        browser.get(server.baseUrl() + "/ui/login");
        browser.findElement(By.id("token")).sendKeys(TOKEN);
        Browser.open(browser, By.id("login"));
        assertThat(browser.findElements(By.id("sign-out"))).hasSize(1);
    }

    /** On a task page: the action's button, its confirmation page, the reason, confirm. */
    private void act(String action, String reason) {
        Browser.open(browser, By.id("action-" + action));
        browser.findElement(By.id("reason")).sendKeys(reason);
        Browser.open(browser, By.id("confirm"));
    }

    private List<Long> ids() {
        return browser.findElements(By.cssSelector("#tasks tbody tr td:first-child")).stream()
                .map(e -> Long.parseLong(e.getText().substring(1))).toList();
    }

    private HttpResponse<String> post(HttpEndpoint server, String path, String form, String session) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(server.baseUrl() + path))
                .header("Content-Type", "application/x-www-form-urlencoded").POST(HttpRequest.BodyPublishers.ofString(form));
        if (session != null) b.header("Cookie", UiAccess.COOKIE + "=" + session);
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }
}

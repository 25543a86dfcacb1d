package pgdispatch.ui;

import com.fasterxml.jackson.databind.ObjectMapper;
import gg.jte.ContentType;
import gg.jte.TemplateEngine;
import gg.jte.output.StringOutput;
import io.javalin.config.JavalinConfig;
import io.javalin.http.Context;
import io.javalin.http.HttpStatus;
import java.io.IOException;
import java.io.InputStream;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.http.HttpEndpoint;
import pgdispatch.runtime.Dispatcher;
import pgdispatch.store.Database;
import pgdispatch.store.LimitStore;
import pgdispatch.store.NodeStore;
import pgdispatch.store.QueueStore;
import pgdispatch.store.ScheduleStore;
import pgdispatch.store.TaskQueries;
import pgdispatch.store.TaskQueries.TaskView;
import pgdispatch.store.TaskStore;
import pgdispatch.ui.UiError.BadRequest;
import pgdispatch.ui.UiError.Forbidden;
import pgdispatch.ui.UiError.NotFound;
import pgdispatch.ui.UiError.Refused;
import pgdispatch.ui.UiError.Unavailable;
import pgdispatch.ui.Views.Action;
import pgdispatch.ui.Views.Page;

/**
 * The web dashboard under {@code /ui/}: overview, task listing, task detail with its event timeline,
 * nodes, and the operator actions (retry, cancel, quarantine) through the same {@link TaskStore}
 * transitions as the {@code tasks} command. Pages are server-rendered from precompiled jte templates
 * (HTML-escaped by the engine); the chart is uPlot, served from the jar like every other asset.
 *
 * <p>Behind a reverse proxy that serves it under a path prefix, the proxy sends {@code X-Forwarded-Prefix}
 * and every link and form target carries that prefix.
 */
public final class Dashboard {
    private static final Logger log = LoggerFactory.getLogger(Dashboard.class);

    /** Where the dashboard is mounted on the HTTP port. */
    public static final String MOUNT = "/ui";

    /** A prefix a proxy may announce: path segments of unreserved characters, nothing that leaves the site. */
    private static final Pattern PREFIX = Pattern.compile("(/[A-Za-z0-9._~-]+)*");
    private static final Map<String, String> ASSETS = Map.of(
            "uPlot.iife.min.js", "META-INF/resources/webjars/uplot/1.6.30/dist/uPlot.iife.min.js",
            "uPlot.min.css", "META-INF/resources/webjars/uplot/1.6.30/dist/uPlot.min.css",
            "dashboard.js", "pgdispatch/ui/dashboard.js",
            "dashboard.css", "pgdispatch/ui/dashboard.css");
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Supplier<Database> database;
    private final DispatcherConfig config;
    private final UiAccess access;
    private final TemplateEngine templates = TemplateEngine.createPrecompiled(ContentType.Html);

    /**
     * {@code database} supplies the pool (and schema) to read and act through (it may throw while the node has no
     * database yet: the page then says why); {@code config}'s reaper settings (stale bound, node timeout,
     * requeue budget) decide what "stuck" means, so the dashboard shows what the reaper will do;
     * {@code token} is {@code PGDISPATCH_UI_TOKEN} (null: read-only).
     */
    public Dashboard(Supplier<Database> database, DispatcherConfig config, String token) {
        this.database = database;
        this.config = config;
        this.access = UiAccess.of(token);
    }

    /** Adds the dashboard's routes to a server being configured. */
    public void addTo(JavalinConfig c) {
        c.routes.before(MOUNT + "/*", Dashboard::securityHeaders);
        c.routes.get("/", ctx -> ctx.redirect(prefix(ctx) + MOUNT + "/", HttpStatus.FOUND));
        c.routes.get(MOUNT, ctx -> ctx.redirect(prefix(ctx) + MOUNT + "/", HttpStatus.FOUND));
        c.routes.get(MOUNT + "/", ctx -> show(ctx, "overview.jte", () -> new OverviewView(this).build(page(ctx, "Overview", "overview"))));
        c.routes.get(MOUNT + "/tasks", this::tasks);
        c.routes.get(MOUNT + "/tasks/{id}", this::task);
        c.routes.get(MOUNT + "/tasks/{id}/{action}", this::confirm);
        c.routes.post(MOUNT + "/tasks/{id}/{action}", this::act);
        c.routes.get(MOUNT + "/queues/{queue}/{action}", this::confirmQueue);
        c.routes.post(MOUNT + "/queues/{queue}/{action}", this::actOnQueue);
        c.routes.get(MOUNT + "/limits", ctx -> limits(ctx, List.of(), new Views.LimitForm("kind", "", "")));
        c.routes.post(MOUNT + "/limits", this::setLimit);
        c.routes.post(MOUNT + "/limits/{scope}/{name}/clear", this::clearLimit);
        c.routes.get(MOUNT + "/schedules", this::schedules);
        c.routes.post(MOUNT + "/schedules/{name}/{action}", this::actOnSchedule);
        c.routes.get(MOUNT + "/nodes", ctx -> show(ctx, "nodes.jte", () -> new OverviewView(this).nodes(page(ctx, "Nodes", "nodes"))));
        c.routes.get(MOUNT + "/login", ctx -> show(ctx, "login.jte", () -> new Views.Login(page(ctx, "Sign in", ""), null)));
        c.routes.post(MOUNT + "/login", this::login);
        c.routes.post(MOUNT + "/logout", this::logout);
        c.routes.get(MOUNT + "/assets/{name}", Dashboard::asset);
        c.routes.exception(UiError.class, (e, ctx) -> message(ctx, e.status, e.title, e.getMessage()));
        c.routes.exception(RuntimeException.class, (e, ctx) -> {
            log.warn("ui: {} {} failed: {}", ctx.method(), ctx.path(), e.toString());
            if (!ctx.path().startsWith(MOUNT)) {
                ctx.status(500).contentType("text/plain; charset=utf-8").result("internal error\n");
                return;
            }
            message(ctx, 500, "Something went wrong", oneLine(String.valueOf(e.getMessage()), 500));
        });
    }

    /** The dashboard alone on {@code host:port} ({@code pgdispatch ui}). */
    public HttpEndpoint serve(String host, int port) {
        return HttpEndpoint.start(host, port, HttpEndpoint.IDLE_TIMEOUT, this::addTo);
    }

    /** The dashboard's routes for a node started by {@code run}: reads through the node's pool once it has one. */
    public static Dashboard forNode(Supplier<Dispatcher> node, Supplier<String> startupProblem, DispatcherConfig config,
                                    String token) {
        return new Dashboard(() -> {
            Dispatcher d = node.get();
            if (d == null) throw new Unavailable("the node has not started: " + startupProblem.get());
            return d.database();
        }, config, token);
    }

    TaskQueries queries() {
        return new TaskQueries(database.get());
    }

    QueueStore queues() {
        return new QueueStore(database.get().dataSource());
    }

    NodeStore nodes() {
        return new NodeStore(database.get());
    }

    TaskStore store() {
        return new TaskStore(database.get());
    }

    DispatcherConfig config() {
        return config;
    }

    /** What the reaper's next sweep would do to stale running tasks (its own statement, so one rule), at most {@code limit}. */
    List<pgdispatch.store.StaleTask> stale(int limit) {
        return store().planStale(config.stale(), config.nodeTimeout(), config.maxRequeue(), limit);
    }

    // ------------------------------------------------------------------ pages

    private void tasks(Context ctx) {
        TaskFilters.Parsed parsed = TaskFilters.parse(ctx::queryParam);
        Page page = page(ctx, "Tasks", "tasks");
        Views.FilterForm form = new Views.FilterForm(q(ctx, "id"), q(ctx, "queue"), q(ctx, "kind"), q(ctx, "status"),
                q(ctx, "owner"), q(ctx, "from"), q(ctx, "to"), TaskFilters.STATUSES);
        if (!parsed.errors().isEmpty()) {
            ctx.status(400);
            render(ctx, "tasks.jte", new Views.TaskList(page, form, parsed.errors(), List.of(), null, null));
            return;
        }
        show(ctx, "tasks.jte", () -> {
            TaskQueries.TaskPage result = queries().page(parsed.filter(), parsed.before(), TaskFilters.PAGE);
            List<Views.TaskRow> rows = result.tasks().stream().map(t -> new Views.TaskRow(t.id(), page.url("/tasks/" + t.id()),
                    t.queue(), t.kind(), t.status(), t.attempts() + "/" + t.maxAttempts(), t.owner() == null ? "" : t.owner(),
                    Views.time(t.createdAt()), t.lastError() == null ? "" : oneLine(t.lastError(), 120))).toList();
            String query = filterQuery(form);
            String next = result.nextBefore() == null ? null : page.url("/tasks?" + query + (query.isEmpty() ? "" : "&") + "before=" + result.nextBefore());
            String first = parsed.before() == null ? null : page.url("/tasks" + (query.isEmpty() ? "" : "?" + query));
            return new Views.TaskList(page, form, List.of(), rows, next, first);
        });
    }

    private void task(Context ctx) {
        long id = taskId(ctx);
        Page page = page(ctx, "Task " + id, "tasks");
        show(ctx, "task.jte", () -> new TaskDetailView(this).build(page, id)
                .orElseThrow(() -> new NotFound("task " + id + " not found (pruned, or never enqueued)")));
    }

    /** The confirmation step: what the action will do, and the operator's reason. */
    private void confirm(Context ctx) {
        long id = taskId(ctx);
        Operation op = operation(ctx);
        Page page = page(ctx, op.label + " task " + id, "tasks");
        requireCanAct(ctx, page);
        show(ctx, "confirm.jte", () -> {
            TaskView t = queries().task(id).orElseThrow(() -> new NotFound("task " + id + " not found"));
            if (!op.allowedFrom.contains(t.status())) {
                throw new Refused("task " + id + " is " + t.status() + ": " + op.name + " is allowed only for " + String.join(", ", op.allowedFrom));
            }
            return new Views.Confirm(page, "task #" + id, t.status(), new Action(op.name, op.label, page.url("/tasks/" + id + "/" + op.name)),
                    op.explanation, page.url("/tasks/" + id));
        });
    }

    private void act(Context ctx) {
        long id = taskId(ctx);
        Operation op = operation(ctx);
        Page page = page(ctx, op.label + " task " + id, "tasks");
        String why = reason(ctx, page, op.name + " this task") + " (dashboard)";
        TaskStore store = store();
        boolean done = switch (op) {
            case RETRY -> store.retry(id, why);
            case CANCEL -> store.cancel(id, why);
            case QUARANTINE -> store.quarantine(id, why);
        };
        if (!done) {
            String now = queries().task(id).map(TaskView::status).orElse(null);
            if (now == null) throw new NotFound("task " + id + " not found");
            throw new Refused("task " + id + " is " + now + ": " + op.name + " is allowed only for " + String.join(", ", op.allowedFrom));
        }
        ctx.redirect(page.url("/tasks/" + id + "?done=" + op.name), HttpStatus.SEE_OTHER);
    }

    /** The limits page; {@code errors} and {@code form}: a refused set, shown again with what was typed (status 400). */
    private void limits(Context ctx, List<String> errors, Views.LimitForm form) {
        Page page = page(ctx, "Limits", "limits");
        if (!errors.isEmpty()) ctx.status(400);
        show(ctx, "limits.jte", () -> new Views.Limits(page, limitRows(page), errors, form));
    }

    /** Every concurrency limit with its running count, as the limits page and the overview show them. */
    List<Views.LimitRow> limitRows(Page page) {
        return new LimitStore(database.get().dataSource()).list().stream()
                .map(l -> new Views.LimitRow(l.scope().sql(), l.name(), l.maxRunning(), l.running(), l.running() > l.maxRunning(),
                        Views.time(l.changedAt()), l.changedBy() == null ? "" : l.changedBy(),
                        page.url("/tasks?status=running&" + l.scope().sql() + "=" + URLEncoder.encode(l.name(), StandardCharsets.UTF_8)),
                        page.url("/limits/" + l.scope().sql() + "/" + URLEncoder.encode(l.name(), StandardCharsets.UTF_8) + "/clear")))
                .toList();
    }

    /** Sets a limit from the page's form, as {@code limits set}: recorded as set by the dashboard. */
    private void setLimit(Context ctx) {
        Page page = page(ctx, "Limits", "limits");
        checkForm(ctx, page);
        Views.LimitForm form = new Views.LimitForm(String.valueOf(ctx.formParam("scope")), String.valueOf(ctx.formParam("name")).strip(),
                String.valueOf(ctx.formParam("max")).strip());
        LimitStore.Scope scope;
        int max;
        try {
            scope = limitScope(form.scope());
            max = Integer.parseInt(form.max());
            LimitStore.check(scope, form.name(), max);
        } catch (NumberFormatException e) {
            limits(ctx, List.of("at most '" + oneLine(form.max(), 40) + "' must be a whole number from 0 to " + LimitStore.MAX), form);
            return;
        } catch (IllegalArgumentException e) {
            limits(ctx, List.of(e.getMessage()), form);
            return;
        }
        new LimitStore(database.get().dataSource()).set(scope, form.name(), max, "dashboard");
        ctx.redirect(page.url("/limits?done=limit_set"), HttpStatus.SEE_OTHER);
    }

    private void clearLimit(Context ctx) {
        Page page = page(ctx, "Limits", "limits");
        checkForm(ctx, page);
        LimitStore.Scope scope = limitScope(ctx.pathParam("scope"));
        String name = ctx.pathParam("name");
        if (!new LimitStore(database.get().dataSource()).clear(scope, name)) {
            throw new NotFound("no limit on " + scope.sql() + " " + oneLine(name, 200) + " (cleared already?)");
        }
        ctx.redirect(page.url("/limits?done=limit_cleared"), HttpStatus.SEE_OTHER);
    }

    private static LimitStore.Scope limitScope(String raw) {
        for (LimitStore.Scope s : LimitStore.Scope.values()) if (s.sql().equals(raw)) return s;
        throw new BadRequest("scope '" + oneLine(String.valueOf(raw), 40) + "' must be kind or queue");
    }

    /** The schedules page: every schedule with its timing, task, policy, next and last fire and latest history. */
    private void schedules(Context ctx) {
        Page page = page(ctx, "Schedules", "schedules");
        show(ctx, "schedules.jte", () -> {
            ScheduleStore store = new ScheduleStore(database.get().dataSource());
            return new Views.Schedules(page, store.list().stream().map(s -> {
                String url = "/schedules/" + URLEncoder.encode(s.name(), StandardCharsets.UTF_8).replace("+", "%20");
                String next = !s.enabled() ? "disabled" : s.nextFireAt() == null ? "at the next scheduler run" : Views.time(s.nextFireAt());
                List<String> history = store.history(s.name(), 5).stream().map(Dashboard::historyLine).toList();
                return new Views.ScheduleRow(s.name(), s.enabled(), s.timing(), s.kind() + "@" + s.queue(), s.missedPolicy(), next,
                        Views.time(s.lastFiredAt()), s.changedBy() == null ? "" : s.changedBy(), history,
                        page.url(url + (s.enabled() ? "/disable" : "/enable")), page.url(url + "/run-now"));
            }).toList());
        });
    }

    private static String historyLine(ScheduleStore.Fire f) {
        String at = Views.time(f.fireAt());
        return switch (f.action()) {
            case "skipped" -> "skipped " + f.skippedCount() + " missed fire time" + (f.skippedCount() == 1 ? "" : "s") + " from " + at
                    + " to " + Views.time(f.skippedUntil());
            case "run_now" -> "run now at " + at + ": task " + f.taskId() + " (" + f.nodeId() + ")";
            default -> f.action() + " " + at + ": task " + f.taskId() + " (" + f.nodeId() + ")";
        };
    }

    /** Enable, disable or run-now from the schedules page, as the CLI's: recorded as done by the dashboard. */
    private void actOnSchedule(Context ctx) {
        Page page = page(ctx, "Schedules", "schedules");
        checkForm(ctx, page);
        String name = ctx.pathParam("name");
        String action = ctx.pathParam("action");
        ScheduleStore store = new ScheduleStore(database.get().dataSource());
        String done = switch (action) {
            case "enable", "disable" -> {
                if (store.setEnabled(name, action.equals("enable"), "dashboard").isEmpty()) throw noSchedule(name);
                yield "schedule_" + action + "d";
            }
            case "run-now" -> {
                if (store.runNow(name, "dashboard").isEmpty()) throw noSchedule(name);
                yield "schedule_run";
            }
            default -> throw new BadRequest("action '" + oneLine(action, 40) + "' must be enable, disable or run-now");
        };
        ctx.redirect(page.url("/schedules?done=" + done), HttpStatus.SEE_OTHER);
    }

    private static NotFound noSchedule(String name) {
        return new NotFound("no schedule " + oneLine(name, 200) + " (removed meanwhile?)");
    }

    /** Pausing or resuming a queue: the confirmation step. */
    private void confirmQueue(Context ctx) {
        String queue = queueName(ctx);
        QueueAction op = queueAction(ctx);
        Page page = page(ctx, op.label + " queue " + queue, "overview");
        requireCanAct(ctx, page);
        show(ctx, "confirm.jte", () -> {
            QueueStore.QueueState s = queues().state(queue);
            if (s.paused() == op.pauses) throw new Refused("queue " + queue + " is " + (s.paused() ? "paused" : "not paused") + " already");
            return new Views.Confirm(page, "queue " + queue, s.paused() ? "paused" : "active",
                    new Action(op.name, op.label, page.url("/queues/" + queue + "/" + op.name)), op.explanation, page.url("/"));
        });
    }

    private void actOnQueue(Context ctx) {
        String queue = queueName(ctx);
        QueueAction op = queueAction(ctx);
        Page page = page(ctx, op.label + " queue " + queue, "overview");
        String why = reason(ctx, page, op.name + " this queue");
        QueueStore.Change c = op.pauses ? queues().pause(queue, "dashboard", why) : queues().resume(queue, "dashboard", why);
        if (!c.changed()) throw new Refused("queue " + queue + " is " + (c.state().paused() ? "paused" : "not paused") + " already");
        ctx.redirect(page.url("/?done=" + op.name), HttpStatus.SEE_OTHER);
    }

    /** Pause and resume, as {@code queues pause|resume}: recorded in dispatcher_queues with who and why. */
    enum QueueAction {
        PAUSE("pause", "Pause", true, "No node claims from this queue from its next claim on; running tasks finish and new"
                + " tasks can still be enqueued. Recorded with your reason (queues list shows it)."),
        RESUME("resume", "Resume", false, "The nodes serving this queue are woken and claim its due tasks at once.");

        final String name;
        final String label;
        final boolean pauses;
        final String explanation;

        QueueAction(String name, String label, boolean pauses, String explanation) {
            this.name = name;
            this.label = label;
            this.pauses = pauses;
            this.explanation = explanation;
        }
    }

    private static String queueName(Context ctx) {
        try {
            return QueueStore.requireName(ctx.pathParam("queue"));
        } catch (IllegalArgumentException e) {
            throw new BadRequest(e.getMessage());
        }
    }

    private static QueueAction queueAction(Context ctx) {
        String name = ctx.pathParam("action");
        for (QueueAction a : QueueAction.values()) if (a.name.equals(name)) return a;
        throw new NotFound("no queue action " + name + "; queue actions: pause, resume");
    }

    /** An action's checks after sign-in: the form's CSRF token, then the operator's reason, returned as stored. */
    private String reason(Context ctx, Page page, String what) {
        checkForm(ctx, page);
        String reason = ctx.formParam("reason");
        if (reason == null || reason.isBlank()) throw new BadRequest("reason is empty: say why you " + what + " (it is kept in its audit trail)");
        if (reason.length() > 1000) throw new BadRequest("reason is " + reason.length() + " characters long; at most 1000");
        return reason.strip();
    }

    private void login(Context ctx) {
        Page page = page(ctx, "Sign in", "");
        if (!access.actionsEnabled()) throw new Forbidden("actions are disabled: this dashboard is read-only (set PGDISPATCH_UI_TOKEN to enable them)");
        String session = access.signIn(ctx.formParam("token"));
        if (session == null) {
            ctx.status(403);
            render(ctx, "login.jte", new Views.Login(page, "That is not the PGDISPATCH_UI_TOKEN of this dashboard."));
            return;
        }
        ctx.header("Set-Cookie", UiAccess.COOKIE + "=" + session + "; Path=" + page.url("/") + "; HttpOnly; SameSite=Strict"
                + ("https".equals(ctx.header("X-Forwarded-Proto")) ? "; Secure" : ""));
        ctx.redirect(page.url("/"), HttpStatus.SEE_OTHER);
    }

    private void logout(Context ctx) {
        Page page = page(ctx, "Sign out", "");
        if (!access.csrfValid(ctx.cookie(UiAccess.COOKIE), ctx.formParam("csrf"))) throw new Forbidden("the form's token does not match your session (CSRF check)");
        ctx.header("Set-Cookie", UiAccess.COOKIE + "=; Path=" + page.url("/") + "; Max-Age=0; HttpOnly; SameSite=Strict");
        ctx.redirect(page.url("/"), HttpStatus.SEE_OTHER);
    }

    /** Signed in, and the form carries this session's CSRF token. */
    private void checkForm(Context ctx, Page page) {
        requireCanAct(ctx, page);
        if (!access.csrfValid(ctx.cookie(UiAccess.COOKIE), ctx.formParam("csrf"))) {
            throw new Forbidden("the form's token does not match your session (CSRF check); reload the page and try again");
        }
    }

    private void requireCanAct(Context ctx, Page page) {
        if (!access.actionsEnabled()) {
            throw new Forbidden("actions are disabled: this dashboard is read-only (set PGDISPATCH_UI_TOKEN to enable them)");
        }
        if (!page.signedIn()) throw new Forbidden("sign in with PGDISPATCH_UI_TOKEN to act on tasks");
    }

    private static void asset(Context ctx) throws IOException {
        String resource = ASSETS.get(ctx.pathParam("name"));
        if (resource == null) throw new NotFound("no asset " + ctx.pathParam("name"));
        try (InputStream in = Dashboard.class.getClassLoader().getResourceAsStream(resource)) {
            if (in == null) throw new IllegalStateException("asset " + resource + " is missing from the jar");
            ctx.contentType(resource.endsWith(".js") ? "text/javascript; charset=utf-8" : "text/css; charset=utf-8")
                    .header("Cache-Control", "max-age=3600").result(in.readAllBytes());
        }
    }

    // ------------------------------------------------------------------ operations

    List<Action> actionsFor(Page page, long id, String status) {
        List<Action> out = new ArrayList<>();
        for (Operation o : Operation.values()) {
            if (o.allowedFrom.contains(status)) out.add(new Action(o.name, o.label, page.url("/tasks/" + id + "/" + o.name)));
        }
        return out;
    }

    private static Operation operation(Context ctx) {
        String name = ctx.pathParam("action");
        return Operation.named(name).orElseThrow(() -> new NotFound("no action " + name + "; actions: retry, cancel, quarantine"));
    }

    // ------------------------------------------------------------------ plumbing

    private Page page(Context ctx, String title, String nav) {
        String cookie = ctx.cookie(UiAccess.COOKIE);
        boolean signedIn = access.signedIn(cookie);
        String done = ctx.queryParam("done");
        String flash = done == null ? null : Operation.named(done).map(o -> o.label + " done.")
                .orElse(switch (done) {
                    case "pause" -> "Queue paused.";
                    case "resume" -> "Queue resumed.";
                    case "limit_set" -> "Limit set.";
                    case "limit_cleared" -> "Limit cleared.";
                    case "schedule_enabled" -> "Schedule enabled: it fires from its first fire time after now.";
                    case "schedule_disabled" -> "Schedule disabled.";
                    case "schedule_run" -> "One task of the schedule enqueued.";
                    default -> null;
                });
        return new Page(prefix(ctx), title, nav, access.actionsEnabled(), signedIn, access.csrf(cookie), flash, "",
                Dispatcher.VERSION);
    }

    /** Renders {@code template} with the model {@code build} makes; a failure becomes a page that says what went wrong. */
    private void show(Context ctx, String template, Supplier<Object> build) {
        render(ctx, template, build.get());
    }

    private void render(Context ctx, String template, Object model) {
        StringOutput out = new StringOutput();
        templates.render(template, model, out);
        ctx.html(out.toString());
    }

    private void message(Context ctx, int status, String title, String line) {
        ctx.status(status);
        render(ctx, "message.jte", new Views.Message(page(ctx, title, ""), status, title, List.of(line)));
    }

    private static void securityHeaders(Context ctx) {
        // no inline script or style runs even if something slipped through escaping; no framing (clickjacking)
        ctx.header("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
                + " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
        ctx.header("X-Content-Type-Options", "nosniff");
        ctx.header("X-Frame-Options", "DENY");
        ctx.header("Referrer-Policy", "same-origin");
        ctx.header("Cache-Control", "no-store");
    }

    /** {@code X-Forwarded-Prefix} when a proxy sent a well-formed one, else "". */
    static String prefix(Context ctx) {
        String p = ctx.header("X-Forwarded-Prefix");
        if (p == null || p.isEmpty() || p.equals("/")) return "";
        if (p.endsWith("/")) p = p.substring(0, p.length() - 1);
        if (!PREFIX.matcher(p).matches()) {
            throw new BadRequest("X-Forwarded-Prefix=" + oneLine(p, 80) + " must be a path such as /ops/pgdispatch (letters, digits, . _ ~ -)");
        }
        return p;
    }

    private static long taskId(Context ctx) {
        String raw = ctx.pathParam("id");
        try {
            long id = Long.parseLong(raw);
            if (id > 0) return id;
        } catch (NumberFormatException e) {
            // below
        }
        throw new BadRequest("task id " + oneLine(raw, 40) + " must be a whole number from 1 to " + Long.MAX_VALUE);
    }

    private static String q(Context ctx, String name) {
        String v = ctx.queryParam(name);
        return v == null ? "" : v;
    }

    private static String filterQuery(Views.FilterForm f) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("id", f.id());
        m.put("queue", f.queue());
        m.put("kind", f.kind());
        m.put("status", f.status());
        m.put("owner", f.owner());
        m.put("from", f.from());
        m.put("to", f.to());
        StringBuilder sb = new StringBuilder();
        m.forEach((k, v) -> {
            if (v != null && !v.isBlank()) {
                sb.append(sb.isEmpty() ? "" : "&").append(k).append('=').append(URLEncoder.encode(v.strip(), StandardCharsets.UTF_8));
            }
        });
        return sb.toString();
    }

    static String oneLine(String s, int max) {
        String one = s.replace('\n', ' ').replace('\r', ' ');
        return one.length() <= max ? one : one.substring(0, max - 1) + "…";
    }

    static String pretty(String json) {
        if (json == null) return null;
        try {
            return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(JSON.readTree(json));
        } catch (IOException e) {
            return json;
        }
    }
}

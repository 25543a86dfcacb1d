package pgdispatch.spring;

import com.zaxxer.hikari.HikariDataSource;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import javax.sql.DataSource;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.boot.autoconfigure.jdbc.DataSourceProperties;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.jdbc.datasource.TransactionAwareDataSourceProxy;
import pgdispatch.api.RetryPolicy;
import pgdispatch.api.TaskClient;
import pgdispatch.api.TaskHandler;
import pgdispatch.config.ConfigException;
import pgdispatch.config.DatabaseUrl;
import pgdispatch.config.DispatcherConfig;
import pgdispatch.store.Database;
import pgdispatch.store.Schedule;
import pgdispatch.store.TaskStore;

/**
 * pgdispatch in a Spring Boot application: its configuration from {@code pgdispatch.*}, a pool of its
 * own over the application's database (or {@code pgdispatch.database-url}), the migrations at start,
 * a {@link TaskClient} that joins the caller's Spring transaction, and a node that runs every
 * {@link TaskHandler} bean and fires the schedules ({@code pgdispatch.schedules.*}, {@link Schedule}
 * beans), started and stopped (drained) with the context.
 */
@AutoConfiguration(afterName = {
        "org.springframework.boot.autoconfigure.jdbc.DataSourceAutoConfiguration",
        "org.springframework.boot.actuate.autoconfigure.metrics.CompositeMeterRegistryAutoConfiguration",
        "org.springframework.boot.actuate.autoconfigure.metrics.MetricsAutoConfiguration"})
@ConditionalOnClass(DispatcherConfig.class)
@EnableConfigurationProperties(PgdispatchProperties.class)
public class PgdispatchAutoConfiguration {

    /**
     * The node's configuration: {@code pgdispatch.*} read by the same rules as the environment, each
     * problem named by its property; the database from {@code pgdispatch.database-url}, else the
     * application's DataSource settings.
     */
    @Bean
    @ConditionalOnMissingBean
    public DispatcherConfig pgdispatchConfig(PgdispatchProperties properties, ObjectProvider<DataSourceProperties> dsProperties,
                                             ObjectProvider<DataSource> dataSource) {
        Map<String, String> env = properties.toEnv();
        String[] credentials = null;
        if (!env.containsKey("DATABASE_URL")) {
            credentials = applicationDatabase(dsProperties.getIfAvailable(), dataSource.getIfUnique());
            env.put("DATABASE_URL", credentials[0]);
        }
        DispatcherConfig cfg;
        try {
            cfg = DispatcherConfig.fromEnv(env);
        } catch (ConfigException e) {
            throw new ConfigException(e.problems().stream().map(PgdispatchAutoConfiguration::asProperty).toList());
        }
        if (credentials != null) {
            DatabaseUrl u = cfg.databaseUrl();
            cfg = cfg.withDatabaseUrl(new DatabaseUrl(u.host(), u.port(), u.database(),
                    credentials[1] != null ? credentials[1] : u.user(), credentials[2] != null ? credentials[2] : u.password(),
                    u.params()));
        }
        return cfg;
    }

    /** The pool the node and the migrations use; migrated at creation unless {@code pgdispatch.migrate=false}. */
    @Bean(destroyMethod = "close")
    @ConditionalOnMissingBean
    public Database pgdispatchDatabase(DispatcherConfig cfg, PgdispatchProperties properties,
                                       ObjectProvider<MeterRegistry> registry) {
        Database db = Database.open(cfg.databaseUrl(), cfg.poolSize(), "pgdispatch", registry.getIfAvailable(),
                cfg.socketTimeout());
        if (properties.isMigrate()) {
            try {
                db.migrate();
            } catch (RuntimeException e) {
                db.close();
                throw e;
            }
        }
        return db;
    }

    /**
     * Enqueues through the application's DataSource wrapped so that the connection of the current Spring
     * transaction is used: the task exists only if that transaction commits. Tables are named in
     * pgdispatch's schema, whatever the application's search_path.
     */
    @Bean
    @ConditionalOnMissingBean
    public TaskClient pgdispatchTaskClient(DispatcherConfig cfg, Database database, ObjectProvider<DataSource> dataSource) {
        DataSource app = dataSource.getIfUnique();
        DataSource target = app != null ? new TransactionAwareDataSourceProxy(app) : database.dataSource();
        return new TaskClient(new TaskStore(target, cfg.databaseUrl().schema()), cfg.maxPayloadBytes());
    }

    /** The node: every TaskHandler bean, started with the context and drained when it closes. */
    @Bean
    @ConditionalOnMissingBean
    @ConditionalOnProperty(prefix = "pgdispatch", name = "enabled", matchIfMissing = true)
    public PgdispatchNode pgdispatchNode(DispatcherConfig cfg, Database database, PgdispatchProperties properties,
                                         ObjectProvider<TaskHandler> handlers, ObjectProvider<MeterRegistry> registry,
                                         ObjectProvider<RetryPolicy> retryPolicy, ObjectProvider<Schedule> scheduleBeans) {
        List<TaskHandler> all = new ArrayList<>(handlers.orderedStream().toList());
        List<Schedule> schedules = PgdispatchSchedules.of(properties.getSchedules(), scheduleBeans.orderedStream().toList());
        // a RetryPolicy bean wins; without one, pgdispatch.task-retry-base-s / -max-s decide
        return new PgdispatchNode(cfg, database, all, properties.isBuiltinHandlers(), registry.getIfAvailable(),
                retryPolicy.getIfAvailable(), schedules);
    }

    /** {@code /actuator/health/pgdispatch}, when the application has Actuator. */
    @Configuration(proxyBeanMethods = false)
    @ConditionalOnClass(name = "org.springframework.boot.actuate.health.HealthIndicator")
    static class Health {
        // no @ConditionalOnBean(PgdispatchNode): a nested class's conditions are evaluated before the
        // outer class's beans are registered; without a node (pgdispatch.enabled=false) it reports unknown
        @Bean
        @ConditionalOnMissingBean(name = "pgdispatchHealthIndicator")
        PgdispatchHealthIndicator pgdispatchHealthIndicator(ObjectProvider<PgdispatchNode> node) {
            return new PgdispatchHealthIndicator(node);
        }
    }

    /**
     * The application's database as {url, user, password}: Spring Boot's {@code spring.datasource.*}, or
     * the settings of a HikariDataSource bean. Anything else needs {@code pgdispatch.database-url}.
     */
    static String[] applicationDatabase(DataSourceProperties props, DataSource ds) {
        if (ds instanceof HikariDataSource h && h.getJdbcUrl() != null) {
            return new String[] {h.getJdbcUrl(), h.getUsername(), h.getPassword()};
        }
        if (props != null && props.getUrl() != null) {
            return new String[] {props.getUrl(), props.determineUsername(), props.determinePassword()};
        }
        throw new ConfigException("pgdispatch.database-url is not set and the application has no DataSource whose"
                + " URL pgdispatch can read (spring.datasource.url or a HikariDataSource): set pgdispatch.database-url");
    }

    /** A problem line of {@code DispatcherConfig.fromEnv} with the variable names as property names. */
    static String asProperty(String problem) {
        String out = problem;
        for (var e : PgdispatchProperties.NAMES.entrySet()) {
            out = out.replaceAll("\\b" + e.getKey() + "\\b", e.getValue());
        }
        return out;
    }
}

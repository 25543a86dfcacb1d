package pgdispatch.config;

import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * A PostgreSQL location given as {@code jdbc:postgresql://host:port/db?user=..} or
 * {@code postgres://user:pass@host:port/db?sslmode=..}; the password is kept apart and never printed.
 */
public record DatabaseUrl(String host, int port, String database, String user, String password,
                          Map<String, String> params) {

    public static final String DEFAULT = "jdbc:postgresql://localhost:5432/pgdispatch?user=postgres";
    private static final Pattern DB_NAME = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9_$-]{0,62}");
    /** pgJDBC's parameter that sets {@code search_path} on every connection: where pgdispatch's objects live. */
    public static final String SCHEMA_PARAM = "currentSchema";
    public static final String DEFAULT_SCHEMA = "public";
    /**
     * A schema name as PostgreSQL folds an unquoted identifier: lower case, so it is the same name in
     * SQL, in {@code search_path} and in psql without quoting.
     */
    public static final Pattern SCHEMA_NAME = Pattern.compile("[a-z_][a-z0-9_]{0,62}");

    public DatabaseUrl {
        params = Map.copyOf(params);
    }

    /** Parses {@code raw}; {@code variable} names the setting in the error ({@code DATABASE_URL}). */
    public static DatabaseUrl parse(String variable, String raw) {
        if (raw == null || raw.isBlank()) {
            throw new ConfigException(variable + " is empty; expected e.g. " + DEFAULT);
        }
        String s = raw.strip();
        String rest;
        if (s.startsWith("jdbc:postgresql://")) {
            rest = s.substring("jdbc:postgresql://".length());
        } else if (s.startsWith("postgres://")) {
            rest = s.substring("postgres://".length());
        } else if (s.startsWith("postgresql://")) {
            rest = s.substring("postgresql://".length());
        } else {
            throw new ConfigException(variable + "=" + maskRaw(s)
                    + " must start with postgres://, postgresql:// or jdbc:postgresql://");
        }
        try {
            URI uri = new URI("pg://" + rest);
            String host = uri.getHost();
            if (host == null || host.isBlank()) {
                throw new ConfigException(variable + "=" + maskRaw(s) + " " + whyNoHost(uri.getRawAuthority(), rest));
            }
            int port = uri.getPort() == -1 ? 5432 : uri.getPort();
            if (port < 1 || port > 65535) {
                throw new ConfigException(variable + "=" + maskRaw(s) + " port " + port + " must be from 1 to 65535");
            }
            String path = uri.getPath() == null ? "" : uri.getPath();
            String db = path.startsWith("/") ? path.substring(1) : path;
            if (db.isEmpty()) {
                throw new ConfigException(variable + "=" + maskRaw(s) + " names no database (…/DBNAME)");
            }
            if (!DB_NAME.matcher(db).matches()) {
                throw new ConfigException(variable + "=" + maskRaw(s) + " database name '" + db
                        + "' must be letters, digits, _ $ - (at most 63)");
            }
            Map<String, String> params = new LinkedHashMap<>();
            if (uri.getRawQuery() != null) {
                for (String kv : uri.getRawQuery().split("&")) {
                    if (kv.isEmpty()) continue;
                    int eq = kv.indexOf('=');
                    String k = decode(eq < 0 ? kv : kv.substring(0, eq));
                    String v = eq < 0 ? "" : decode(kv.substring(eq + 1));
                    params.put(k, v);
                }
            }
            String user = params.remove("user");
            String password = params.remove("password");
            if (uri.getRawUserInfo() != null) {
                String ui = uri.getRawUserInfo();
                int colon = ui.indexOf(':');
                user = decode(colon < 0 ? ui : ui.substring(0, colon));
                if (colon >= 0) password = decode(ui.substring(colon + 1));
            }
            String schema = params.get(SCHEMA_PARAM);
            if (schema != null && !SCHEMA_NAME.matcher(schema).matches()) {
                throw new ConfigException(variable + "=" + maskRaw(s) + " " + SCHEMA_PARAM + "='" + schema
                        + "' must be one schema name: 1-63 of lower-case letters, digits, _ (not starting with a digit)");
            }
            return new DatabaseUrl(host, port, db, user, password, params);
        } catch (java.net.URISyntaxException | IllegalArgumentException e) {
            throw new ConfigException(variable + "=" + maskRaw(s) + " is not a valid URL: "
                    + e.getMessage().replace(rest, "…"));
        }
    }

    /**
     * Why {@link URI} found no host in {@code authority} ([user[:password]@]host[:port]), as a rule the
     * operator can act on; the password is never part of the answer.
     */
    static String whyNoHost(String authority, String rest) {
        if (authority == null || authority.isEmpty()) return "has no host name";
        if (authority.indexOf('@') < 0 && rest.indexOf('@') > authority.length()) {
            // the authority ended at a / ? or # of the password: what follows it is no host or port to show
            return "has a / ? or # in its user or password: write them percent-encoded (%2F %3F %23)";
        }
        int at = authority.lastIndexOf('@');
        String userInfo = at < 0 ? "" : authority.substring(0, at);
        String hostPort = authority.substring(at + 1);
        if (userInfo.indexOf('@') >= 0) {
            return "has an @ in its user or password: write it percent-encoded as %40";
        }
        if (hostPort.startsWith("[")) return "host " + hostPort + " must be an IPv6 address in brackets, e.g. [::1]:5432";
        int colon = hostPort.lastIndexOf(':');
        String host = colon < 0 ? hostPort : hostPort.substring(0, colon);
        String port = colon < 0 ? null : hostPort.substring(colon + 1);
        if (port != null && !port.matches("[0-9]{1,5}")) {
            return "port '" + port + "' must be a number from 1 to 65535";
        }
        if (host.isEmpty()) return "has no host name";
        if (!host.chars().allMatch(c -> c < 128)) {
            String ascii;
            try {
                ascii = java.net.IDN.toASCII(host);
            } catch (IllegalArgumentException e) {
                ascii = null;
            }
            return "host '" + host + "' must be an ASCII host name or IP address"
                    + (ascii == null ? "" : "; its ASCII (punycode) form is " + ascii);
        }
        return "host '" + host + "' must be a host name of letters, digits, - and . (no _), or an IP address";
    }

    private static String encode(String s) {
        return java.net.URLEncoder.encode(s, StandardCharsets.UTF_8).replace("+", "%20");
    }

    private static String decode(String s) {
        return URLDecoder.decode(s, StandardCharsets.UTF_8);
    }

    /**
     * Masks the password in a URL as the operator typed it, for error messages. Everything from the
     * user's colon to the last {@code @} goes: a raw password may itself hold {@code @ / ?}, and a
     * message that shows too little of a broken URL is better than one that shows part of a secret.
     */
    static String maskRaw(String s) {
        String masked = s.replaceAll("(?s)(://[^:/@?]*:).*@", "$1***@");
        return masked.replaceAll("(?i)(password=)[^&]*", "$1***");
    }

    /** The JDBC URL without user or password (they travel as properties). */
    public String jdbcUrl() {
        StringBuilder sb = new StringBuilder("jdbc:postgresql://").append(host).append(':').append(port)
                .append('/').append(database);
        char sep = '?';
        for (Map.Entry<String, String> e : params.entrySet()) {
            sb.append(sep).append(encode(e.getKey())).append('=').append(encode(e.getValue()));
            sep = '&';
        }
        return sb.toString();
    }

    /** The same server, another database (e.g. {@code postgres} to create this one). */
    public DatabaseUrl withDatabase(String otherDatabase) {
        return new DatabaseUrl(host, port, otherDatabase, user, password, params);
    }

    /** The schema that holds pgdispatch's tables and functions ({@code public} unless configured). */
    public String schema() {
        return params.getOrDefault(SCHEMA_PARAM, DEFAULT_SCHEMA);
    }

    /**
     * The same location with pgdispatch's objects in {@code schema} (checked against {@link #SCHEMA_NAME}
     * by the caller): every connection opened from it has {@code search_path = schema}.
     */
    public DatabaseUrl withSchema(String schema) {
        Map<String, String> p = new LinkedHashMap<>(params);
        if (DEFAULT_SCHEMA.equals(schema)) {
            p.remove(SCHEMA_PARAM);
        } else {
            p.put(SCHEMA_PARAM, schema);
        }
        return new DatabaseUrl(host, port, database, user, password, p);
    }

    // pgJDBC parameters such as sslpassword carry secrets too
    private static boolean isSecret(String param) {
        return param.toLowerCase(java.util.Locale.ROOT).contains("password");
    }

    /** For logs and status output: the URL with the password masked. */
    @Override
    public String toString() {
        String who = user == null ? "" : user + (password == null ? "" : ":***") + "@";
        String q = params.isEmpty() ? "" : "?" + String.join("&",
                params.entrySet().stream().map(e -> e.getKey() + "=" + (isSecret(e.getKey()) ? "***" : e.getValue()))
                        .toList());
        return "postgresql://" + who + host + ":" + port + "/" + database + q;
    }
}

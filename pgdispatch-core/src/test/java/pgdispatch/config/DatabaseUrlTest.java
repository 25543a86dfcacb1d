package pgdispatch.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Both URL shapes operators write, the errors for the ones we refuse, and the password kept out of every text. */
class DatabaseUrlTest {

    @Test
    void parsesPostgresUrlWithUserPasswordPortAndDatabase() {
        DatabaseUrl url = DatabaseUrl.parse("DATABASE_URL", "postgres://user:pass@host:5433/db");

        assertThat(url).isEqualTo(new DatabaseUrl("host", 5433, "db", "user", "pass", Map.of()));
        assertThat(url.jdbcUrl()).isEqualTo("jdbc:postgresql://host:5433/db");
    }

    @Test
    void parsesPostgresqlSchemeWithDefaultPortAndNoCredentials() {
        DatabaseUrl url = DatabaseUrl.parse("DATABASE_URL", "postgresql://db.internal/pgdispatch");

        assertThat(url).isEqualTo(new DatabaseUrl("db.internal", 5432, "pgdispatch", null, null, Map.of()));
    }

    @Test
    void parsesJdbcUrlTakingUserAndPasswordOutOfTheParameters() {
        DatabaseUrl url = DatabaseUrl.parse("DATABASE_URL", "jdbc:postgresql://host:5433/db?user=x&password=y&sslmode=require");

        assertThat(url).isEqualTo(new DatabaseUrl("host", 5433, "db", "x", "y", Map.of("sslmode", "require")));
        assertThat(url.jdbcUrl()).isEqualTo("jdbc:postgresql://host:5433/db?sslmode=require");
    }

    @Test
    void decodesPercentEncodedUserAndPassword() {
        DatabaseUrl url = DatabaseUrl.parse("DATABASE_URL", "postgres://us%40er:p%40ss%2Fw%3Fd@host/db");

        assertThat(url.user()).isEqualTo("us@er");
        assertThat(url.password()).isEqualTo("p@ss/w?d");
    }

    @Test
    void urlEncodedParametersRoundTripIntoTheJdbcUrl() {
        DatabaseUrl url = DatabaseUrl.parse("DATABASE_URL", "postgres://app:pw@host/db?options=-c%20search_path%3Dpgd");

        assertThat(url.params()).isEqualTo(Map.of("options", "-c search_path=pgd"));
        assertThat(url.jdbcUrl()).isEqualTo("jdbc:postgresql://host:5432/db?options=-c%20search_path%3Dpgd");
    }

    @Test
    void severalEncodedParametersSurviveJdbcUrlAndParseAgain() {
        DatabaseUrl url = DatabaseUrl.parse("DATABASE_URL",
                "postgres://app:pw@host/db?application_name=a%2Bb%26c%3D%C3%A9&sslmode=verify-full&options=-c%20x%3D1");

        assertThat(url.params()).isEqualTo(Map.of("application_name", "a+b&c=é", "sslmode", "verify-full",
                "options", "-c x=1"));
        assertThat(url.jdbcUrl()).startsWith("jdbc:postgresql://host:5432/db?")
                .contains("application_name=a%2Bb%26c%3D%C3%A9", "sslmode=verify-full", "options=-c%20x%3D1");
        assertThat(DatabaseUrl.parse("again", url.jdbcUrl()).params()).isEqualTo(url.params());
    }

    @Test
    void withDatabaseKeepsServerAndCredentials() {
        DatabaseUrl url = DatabaseUrl.parse("DATABASE_URL", "postgres://app:pw@host:5433/db?sslmode=require");

        assertThat(url.withDatabase("postgres"))
                .isEqualTo(new DatabaseUrl("host", 5433, "postgres", "app", "pw", Map.of("sslmode", "require")));
    }

    @Test
    void toStringMasksThePassword() {
        assertThat(DatabaseUrl.parse("DATABASE_URL", "postgres://user:pass@host:5433/db?sslmode=require"))
                .hasToString("postgresql://user:***@host:5433/db?sslmode=require");
        assertThat(DatabaseUrl.parse("DATABASE_URL", "jdbc:postgresql://host/db?user=x&password=y"))
                .hasToString("postgresql://x:***@host:5432/db");
        assertThat(DatabaseUrl.parse("DATABASE_URL", "postgresql://host/db")).hasToString("postgresql://host:5432/db");
    }

    @Test
    void toStringMasksOtherPasswordParametersButTheJdbcUrlKeepsThem() {
        DatabaseUrl url = DatabaseUrl.parse("DATABASE_URL",
                "jdbc:postgresql://host/db?user=x&sslpassword=Zq9-key&sslmode=require");

        assertThat(url.toString()).doesNotContain("Zq9-key").contains("sslpassword=***", "sslmode=require");
        assertThat(url.jdbcUrl()).contains("sslpassword=Zq9-key");
    }

    @Test
    void refusesAnEmptyUrl() {
        assertThatThrownBy(() -> DatabaseUrl.parse("DATABASE_URL", " "))
                .isInstanceOf(ConfigException.class)
                .hasMessage("DATABASE_URL is empty; expected e.g. jdbc:postgresql://localhost:5432/pgdispatch?user=postgres");
    }

    @Test
    void refusesAnotherDatabasesUrlWithThePasswordMasked() {
        assertThatThrownBy(() -> DatabaseUrl.parse("DATABASE_URL", "mysql://app:secret@db/x"))
                .isInstanceOf(ConfigException.class)
                .hasMessage("DATABASE_URL=mysql://app:***@db/x must start with postgres://, postgresql:// or jdbc:postgresql://");
    }

    @Test
    void refusesAUrlWithoutHost() {
        assertThatThrownBy(() -> DatabaseUrl.parse("DATABASE_URL", "postgres://app:secret@/db"))
                .hasMessage("DATABASE_URL=postgres://app:***@/db has no host name");
    }

    @Test
    void refusesAPortOutOfRangeNamingIt() { // issue 13: accepted, then "Failed to get driver instance", exit 1
        assertThatThrownBy(() -> DatabaseUrl.parse("DATABASE_URL", "postgres://app:secret@db:99999/x"))
                .isInstanceOf(ConfigException.class)
                .hasMessage("DATABASE_URL=postgres://app:***@db:99999/x port 99999 must be from 1 to 65535");
        assertThatThrownBy(() -> DatabaseUrl.parse("DATABASE_URL", "jdbc:postgresql://db:0/x"))
                .hasMessage("DATABASE_URL=jdbc:postgresql://db:0/x port 0 must be from 1 to 65535");
    }

    @Test
    void refusesABadPortNamingIt() { // issue 13: "has no host name"
        assertThatThrownBy(() -> DatabaseUrl.parse("DATABASE_URL", "postgres://app:secret@db:54x2/x"))
                .isInstanceOf(ConfigException.class)
                .hasMessage("DATABASE_URL=postgres://app:***@db:54x2/x port '54x2' must be a number from 1 to 65535");
    }

    @Test
    void refusesARawAtInThePasswordWithoutShowingIt() { // issue 13: "has no host name"
        assertThatThrownBy(() -> DatabaseUrl.parse("DATABASE_URL", "postgres://app:p@ss@db:5432/x"))
                .isInstanceOf(ConfigException.class)
                .hasMessage("DATABASE_URL=postgres://app:***@db:5432/x has an @ in its user or password: write it"
                        + " percent-encoded as %40")
                .hasMessageNotContaining("p@ss").hasMessageNotContaining("ss@");
        assertThat(DatabaseUrl.parse("DATABASE_URL", "postgres://app:p%40ss@db:5432/x").password()).isEqualTo("p@ss");
    }

    @Test
    void refusesAUnicodeHostNamingItsAsciiForm() { // issue 13: "has no host name"
        assertThatThrownBy(() -> DatabaseUrl.parse("DATABASE_URL", "postgres://app:secret@dbé.example/x"))
                .isInstanceOf(ConfigException.class)
                .hasMessage("DATABASE_URL=postgres://app:***@dbé.example/x host 'dbé.example' must be an ASCII host name or IP"
                        + " address; its ASCII (punycode) form is xn--db-cja.example");
        assertThatThrownBy(() -> DatabaseUrl.parse("DATABASE_URL", "postgres://app@my_db:5432/x"))
                .hasMessage("DATABASE_URL=postgres://app@my_db:5432/x host 'my_db' must be a host name of letters, digits, - and ."
                        + " (no _), or an IP address");
    }

    @Test
    void refusesAUrlWithoutDatabase() {
        assertThatThrownBy(() -> DatabaseUrl.parse("DATABASE_URL", "postgres://app:secret@host:5432/"))
                .hasMessage("DATABASE_URL=postgres://app:***@host:5432/ names no database (…/DBNAME)");
    }

    @Test
    void refusesADatabaseNameThatCannotBeQuotedSafely() {
        assertThatThrownBy(() -> DatabaseUrl.parse("DATABASE_URL", "postgres://app:secret@host/db%22x"))
                .hasMessage("DATABASE_URL=postgres://app:***@host/db%22x database name 'db\"x' must be letters, digits, _ $ - (at most 63)");
    }

    @Test
    void refusesAMalformedUrl() {
        assertThatThrownBy(() -> DatabaseUrl.parse("DATABASE_URL", "postgres://app:secret@h/bad name"))
                .isInstanceOf(ConfigException.class)
                .hasMessage("DATABASE_URL=postgres://app:***@h/bad name is not a valid URL: Illegal character in path at index 21: pg://…");
    }

    /** The password is Zq9 … Wk7 with a character a URL reserves in between, typed unencoded as operators do. */
    @ParameterizedTest
    @ValueSource(strings = {
            "postgres://app:Zq9@Wk7@db/x",
            "postgres://app:Zq9/Wk7@db/x",
            "postgres://app:Zq9?Wk7@db/x",
            "postgres://app:Zq9#Wk7@db/x",
            "postgres://app:Zq9 Wk7@db/x",
            "postgres://app:Zq9%zzWk7@db/x",
            "postgres://app:Zq9Wk7@db/bad name",
            "mysql://app:Zq9@Wk7@db/x",
            "jdbc:postgresql://db/x?user=app&password=Zq9 Wk7",
            "jdbc:postgresql://db/x?user=app&PASSWORD=Zq9%zzWk7",
            "jdbc:postgresql://db/bad name?user=app&password=Zq9Wk7"})
    void neverPutsThePasswordIntoAnErrorMessage(String raw) {
        ConfigException e = catchThrowableOfType(ConfigException.class, () -> DatabaseUrl.parse("DATABASE_URL", raw));

        assertThat(e).as("refused").isNotNull();
        assertThat(e.getMessage()).startsWith("DATABASE_URL=").doesNotContain("Zq9").doesNotContain("Wk7");
    }
}

package pgdispatch.ui;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;
import pgdispatch.config.ConfigException;

/** Sessions and form tokens: only the token signs in, a session or form token cannot be forged or moved. */
class UiAccessTest {
    static final String TOKEN = "0123456789abcdef0123";

    @Test
    void withoutATokenNothingSignsIn() {
        UiAccess readOnly = UiAccess.of(null);
        assertThat(readOnly.actionsEnabled()).isFalse();
        assertThat(readOnly.signIn("")).isNull();
        assertThat(readOnly.signedIn("a.b")).isFalse();
        assertThat(readOnly.csrf("a.b")).isEmpty();
        assertThat(UiAccess.of("").actionsEnabled()).isFalse();
    }

    @Test
    void aShortTokenIsAConfigurationErrorThatDoesNotEchoIt() {
        assertThatThrownBy(() -> UiAccess.of("short")).isInstanceOf(ConfigException.class)
                .hasMessage("PGDISPATCH_UI_TOKEN=*** (5 characters) must be at least 16 characters; e.g. openssl rand -hex 16");
    }

    @Test
    void onlyTheTokenSignsInAndTheSessionCannotBeAltered() {
        UiAccess access = UiAccess.of(TOKEN);
        assertThat(access.signIn(TOKEN + "x")).isNull();
        assertThat(access.signIn(TOKEN.substring(1))).isNull();
        String session = access.signIn(TOKEN);
        assertThat(session).matches("[0-9a-f]{32}\\.[0-9a-f]{64}");
        assertThat(access.signedIn(session)).isTrue();
        assertThat(access.signedIn(flipFirst(session))).as("another nonce, same mac").isFalse();
        assertThat(access.signedIn(new StringBuilder(session).reverse().toString())).isFalse();
        String mac = session.substring(33);
        assertThat(access.signedIn(session.substring(0, 33) + flipFirst(mac))).as("same nonce, another mac").isFalse();
        assertThat(access.signedIn(session.substring(0, 32))).isFalse();
        assertThat(UiAccess.of(TOKEN + "-rotated").signedIn(session)).as("a new token ends every session").isFalse();
        assertThat(UiAccess.of(TOKEN).signedIn(session)).as("another node with the same token accepts it").isTrue();
    }

    @Test
    void aFormTokenBelongsToItsSession() {
        UiAccess access = UiAccess.of(TOKEN);
        String one = access.signIn(TOKEN);
        String two = access.signIn(TOKEN);
        assertThat(one).isNotEqualTo(two);
        assertThat(access.csrfValid(one, access.csrf(one))).isTrue();
        assertThat(access.csrfValid(two, access.csrf(one))).isFalse();
        assertThat(access.csrfValid(one, null)).isFalse();
        assertThat(access.csrfValid(null, access.csrf(one))).isFalse();
        assertThat(access.csrf(one)).isNotEqualTo(one.substring(33)).as("the form token is not the session's mac");
    }

    private static String flipFirst(String s) {
        return (s.charAt(0) == '0' ? "1" : "0") + s.substring(1);
    }
}

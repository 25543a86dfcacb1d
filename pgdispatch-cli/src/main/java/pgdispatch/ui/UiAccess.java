package pgdispatch.ui;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.HexFormat;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import pgdispatch.config.ConfigException;

/**
 * Who may act on the dashboard. Without {@code PGDISPATCH_UI_TOKEN} it is read-only: no action is
 * offered and every action request is refused. With it, an operator signs in by presenting the token
 * once; the session cookie is {@code nonce.HMAC(nonce)} and each form carries {@code HMAC("csrf:" + nonce)},
 * both keyed by a hash of the token: nothing is stored server-side, every node with the same token accepts
 * the same session, and changing the token ends every session.
 */
final class UiAccess {
    static final String COOKIE = "pgdispatch_ui";
    /** Short tokens are guessable over HTTP; 16 characters of a random token is ~96 bits. */
    static final int MIN_TOKEN_LENGTH = 16;

    private static final SecureRandom RANDOM = new SecureRandom();

    private final byte[] token;
    private final SecretKeySpec key;

    private UiAccess(String token) {
        this.token = token == null ? null : token.getBytes(StandardCharsets.UTF_8);
        this.key = token == null ? null : new SecretKeySpec(sha256("pgdispatch-ui:" + token), "HmacSHA256");
    }

    /** Read-only when {@code token} is null or empty; a token shorter than the minimum is a configuration error. */
    static UiAccess of(String token) {
        if (token == null || token.isEmpty()) return new UiAccess(null);
        if (token.length() < MIN_TOKEN_LENGTH) {
            throw new ConfigException("PGDISPATCH_UI_TOKEN=*** (" + token.length() + " characters) must be at least "
                    + MIN_TOKEN_LENGTH + " characters; e.g. openssl rand -hex 16");
        }
        return new UiAccess(token);
    }

    boolean actionsEnabled() {
        return key != null;
    }

    /** A new session cookie value when {@code presented} is the token, else null (compared in constant time). */
    String signIn(String presented) {
        if (key == null || presented == null) return null;
        if (!MessageDigest.isEqual(token, presented.getBytes(StandardCharsets.UTF_8))) return null;
        byte[] n = new byte[16];
        RANDOM.nextBytes(n);
        String nonce = HexFormat.of().formatHex(n);
        return nonce + "." + mac("session:" + nonce);
    }

    /** Whether {@code cookie} is a session this token issued. */
    boolean signedIn(String cookie) {
        return nonce(cookie) != null;
    }

    /** The form token for the session in {@code cookie} ("" without one). */
    String csrf(String cookie) {
        String nonce = nonce(cookie);
        return nonce == null ? "" : mac("csrf:" + nonce);
    }

    /** Whether {@code presented} is the form token of the session in {@code cookie}. */
    boolean csrfValid(String cookie, String presented) {
        String nonce = nonce(cookie);
        return nonce != null && presented != null
                && MessageDigest.isEqual(mac("csrf:" + nonce).getBytes(StandardCharsets.US_ASCII), presented.getBytes(StandardCharsets.UTF_8));
    }

    private String nonce(String cookie) {
        if (key == null || cookie == null) return null;
        int dot = cookie.indexOf('.');
        if (dot <= 0) return null;
        String nonce = cookie.substring(0, dot);
        byte[] expected = mac("session:" + nonce).getBytes(StandardCharsets.US_ASCII);
        return MessageDigest.isEqual(expected, cookie.substring(dot + 1).getBytes(StandardCharsets.UTF_8)) ? nonce : null;
    }

    private String mac(String message) {
        try {
            Mac m = Mac.getInstance("HmacSHA256");
            m.init(key);
            return HexFormat.of().formatHex(m.doFinal(message.getBytes(StandardCharsets.UTF_8)));
        } catch (java.security.GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 unavailable", e);
        }
    }

    private static byte[] sha256(String s) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 unavailable", e);
        }
    }
}

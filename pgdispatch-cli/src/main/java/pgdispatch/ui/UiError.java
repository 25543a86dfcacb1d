package pgdispatch.ui;

/** A request the dashboard answers with a page naming the problem and an HTTP status. */
class UiError extends RuntimeException {
    final int status;
    final String title;

    UiError(int status, String title, String message) {
        super(message);
        this.status = status;
        this.title = title;
    }

    static final class BadRequest extends UiError {
        BadRequest(String m) {
            super(400, "Bad request", m);
        }
    }

    static final class Forbidden extends UiError {
        Forbidden(String m) {
            super(403, "Not allowed", m);
        }
    }

    static final class NotFound extends UiError {
        NotFound(String m) {
            super(404, "Not found", m);
        }
    }

    /** The task's status does not allow the action (someone acted first). */
    static final class Refused extends UiError {
        Refused(String m) {
            super(409, "Refused", m);
        }
    }

    /** No database to read from (yet): the node is still starting or its database is unreachable. */
    static final class Unavailable extends UiError {
        Unavailable(String m) {
            super(503, "Database unavailable", m);
        }
    }
}

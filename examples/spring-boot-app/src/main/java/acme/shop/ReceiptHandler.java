package acme.shop;

import java.util.Map;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.stereotype.Component;
import pgdispatch.api.TaskContext;
import pgdispatch.api.TaskHandler;

/** Kind {@code receipt.send}: a TaskHandler bean, so the starter's node serves it. */
@Component
public class ReceiptHandler implements TaskHandler {
    static final String KIND = "receipt.send";

    /** The payload, serialised by TaskClient and read back by {@link TaskContext#payload(Class)}. */
    public record Receipt(long orderId, String item) {}

    private final JdbcTemplate jdbc;

    public ReceiptHandler(JdbcTemplate jdbc) {
        this.jdbc = jdbc;
    }

    @Override
    public String kind() {
        return KIND;
    }

    @Override
    public Object handle(TaskContext ctx) {
        Receipt r = ctx.payload(Receipt.class);
        ctx.heartbeat(Map.of("step", "rendered"), "receipt for order " + r.orderId() + " rendered");
        // idempotent: a retried attempt after a crash does not send a second receipt
        int marked = jdbc.update("UPDATE orders SET receipt_sent = now() WHERE id = ? AND receipt_sent IS NULL", r.orderId());
        return Map.of("order", r.orderId(), "sent", marked == 1);
    }
}

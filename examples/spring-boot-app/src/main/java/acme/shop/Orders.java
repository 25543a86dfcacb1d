package acme.shop;

import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.stereotype.Service;
import org.springframework.transaction.annotation.Transactional;
import pgdispatch.api.TaskClient;

/** Places orders: the order row and its receipt task commit together, or neither does. */
@Service
public class Orders {
    private final JdbcTemplate jdbc;
    private final TaskClient tasks;

    public Orders(JdbcTemplate jdbc, TaskClient tasks) {
        this.jdbc = jdbc;
        this.tasks = tasks;
    }

    /** Returns the order id. */
    @Transactional
    public long place(String item) {
        Long id = jdbc.queryForObject("INSERT INTO orders (item) VALUES (?) RETURNING id", Long.class, item);
        // same connection, same transaction: rolled back with the order if anything below throws
        tasks.enqueue(TaskClient.Enqueue.of(ReceiptHandler.KIND, new ReceiptHandler.Receipt(id, item))
                .idempotencyKey("receipt-" + id));
        if (item.isBlank()) throw new IllegalArgumentException("an order needs an item");
        return id;
    }
}

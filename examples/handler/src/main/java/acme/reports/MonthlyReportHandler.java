package acme.reports;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import pgdispatch.api.PermanentFailure;
import pgdispatch.api.TaskContext;
import pgdispatch.api.TaskHandler;

/**
 * Kind {@code report.monthly}: adds up a customer's months one by one. After each month it heartbeats
 * (renewing its lease) with a checkpoint, so an attempt that dies half-way (node crash, lost lease)
 * resumes from the last saved month instead of starting over. The returned map is the task's result.
 */
public class MonthlyReportHandler implements TaskHandler {
    /** The payload: producers send it with {@code client.enqueue("report.monthly", new ReportRequest(..))}. */
    public record ReportRequest(String customer, int months) {}

    @Override
    public String kind() {
        return "report.monthly";
    }

    /** A month takes seconds; a lease of two minutes is renewed by every heartbeat. */
    @Override
    public Duration lease() {
        return Duration.ofMinutes(2);
    }

    /** An attempt that runs longer is interrupted and counts as failed (retried while attempts remain). */
    @Override
    public Duration timeout() {
        return Duration.ofMinutes(30);
    }

    @Override
    public Object handle(TaskContext ctx) throws InterruptedException {
        ReportRequest req = ctx.payload(ReportRequest.class);
        if (req.months() < 1 || req.months() > 120) {
            // no retry can fix the payload: fail the task for good
            throw new PermanentFailure("months=" + req.months() + " must be from 1 to 120");
        }
        int month = 0;
        long total = 0;
        var checkpoint = ctx.previousProgress();
        if (checkpoint.isPresent()) { // an earlier attempt got this far
            JsonNode c = checkpoint.get();
            month = c.get("month").asInt();
            total = c.get("total").asLong();
        }
        while (month < req.months()) {
            if (Thread.interrupted() || ctx.leaseLost()) {
                // the lease is gone (timeout, cancel, shutdown, taken over): stop, the result would be discarded
                throw new InterruptedException("task " + ctx.taskId() + ": lease lost at month " + month);
            }
            total += revenue(req.customer(), month);
            month++;
            if (!ctx.heartbeat(Map.of("month", month, "total", total), "month " + month + " of " + req.months())) {
                throw new InterruptedException("task " + ctx.taskId() + ": lease lost at month " + month);
            }
        }
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("customer", req.customer());
        result.put("months", req.months());
        result.put("total", total);
        result.put("resumedFromCheckpoint", checkpoint.isPresent());
        return result;
    }

    /** Stands in for the real work (a query, a file, a call to another service). */
    static long revenue(String customer, int month) {
        return 1000L + (customer.length() * 37L + month * 11L) % 500;
    }
}

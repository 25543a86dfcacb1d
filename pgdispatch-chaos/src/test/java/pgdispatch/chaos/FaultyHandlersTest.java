package pgdispatch.chaos;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ServiceLoader;
import org.junit.jupiter.api.Test;
import pgdispatch.api.TaskHandler;

/** The chaos nodes find the faulty handlers the way {@code pgdispatch run} finds any: through ServiceLoader. */
class FaultyHandlersTest {
    @Test
    void everyFaultyKindIsRegisteredAsAServiceAndHasATimeoutWhenItHangs() {
        var found = ServiceLoader.load(TaskHandler.class).stream().map(ServiceLoader.Provider::get).toList();
        assertThat(found).extracting(TaskHandler::kind).containsExactlyInAnyOrder(FaultyHandlers.KINDS);
        assertThat(found).filteredOn(h -> h.kind().equals("chaos.hang") || h.kind().equals("chaos.deaf")
                || h.kind().equals("chaos.burn")).allMatch(h -> h.timeout() != null);
    }
}

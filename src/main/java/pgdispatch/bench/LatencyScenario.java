package pgdispatch.bench;

import java.util.Map;

final class LatencyScenario implements Scenario {
    @Override
    public String name() {
        return "latency";
    }

    @Override
    public String headline() {
        return "x";
    }

    @Override
    public String summary(Map<String, Object> f) {
        return "";
    }

    @Override
    public Run run(ScratchDatabase db, BenchOptions o, Map<String, String> env) {
        throw new UnsupportedOperationException();
    }
}

package pgdispatch.bench;

import java.util.Map;

final class RenewScenario implements Scenario {
    @Override
    public String name() {
        return "renew";
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

package pgdispatch.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.ZoneId;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;

/** The definition of a schedule: cron and interval parsing, the refusals, and fire times across DST. */
class ScheduleTest {
    private static final ZoneId BERLIN = ZoneId.of("Europe/Berlin");
    private static final ZoneId NEW_YORK = ZoneId.of("America/New_York");

    @Nested
    class Parsing {
        @Test
        void acceptsFiveFieldUnixAndSixFieldWithSeconds() {
            Instant t = Instant.parse("2026-01-01T00:00:00Z");
            assertThat(Schedule.cron("a", "*/15 * * * *", "k").recurrence().next(t)).isEqualTo("2026-01-01T00:15:00Z");
            assertThat(Schedule.cron("a", "*/10 * * * * *", "k").recurrence().next(t)).isEqualTo("2026-01-01T00:00:10Z");
            assertThat(Schedule.cron("a", "0 30 2 * * ?", "k").recurrence().next(t)).isEqualTo("2026-01-01T02:30:00Z");
            // Sunday is 0 or 7 in both forms (2026-01-04 is a Sunday), not Quartz's 1
            assertThat(Schedule.cron("a", "0 0 * * 0", "k").recurrence().next(t)).isEqualTo("2026-01-04T00:00:00Z");
            assertThat(Schedule.cron("a", "0 0 0 * * 7", "k").recurrence().next(t)).isEqualTo("2026-01-04T00:00:00Z");
            assertThat(Schedule.cron("a", "  0 9 * * MON-FRI ", "k").cron()).isEqualTo("0 9 * * MON-FRI");
        }

        @Test
        void aFireTimeIsStrictlyAfterTheGivenInstant() {
            Schedule.Recurrence daily = Schedule.cron("a", "0 0 * * *", "k").recurrence();
            assertThat(daily.next(Instant.parse("2026-01-01T00:00:00Z"))).isEqualTo("2026-01-02T00:00:00Z");
            Schedule.Recurrence every = Schedule.every("b", Duration.ofMinutes(10), "k").recurrence();
            assertThat(every.next(Instant.parse("2026-01-01T00:00:00.700Z"))).isEqualTo("2026-01-01T00:10:00Z");
        }

        @Test
        void cronNicknamesAreStoredAsTheExpressionTheyStandFor() {
            assertThat(Schedule.cron("n", "@daily", "k").cron()).isEqualTo("0 0 * * *");
            assertThat(Schedule.cron("n", " @HOURLY ", "k").cron()).isEqualTo("0 * * * *");
            assertThat(Schedule.cron("n", "@weekly", "k").recurrence().next(Instant.parse("2026-12-07T10:00:00Z")))
                    .isEqualTo("2026-12-13T00:00:00Z"); // the next Sunday, 00:00 UTC
        }

        @Test
        void refusesCronExpressionsNamingTheRule() {
            assertThatThrownBy(() -> Schedule.cron("n", "0 25 * * *", "k"))
                    .hasMessage("schedule n: cron='0 25 * * *' is not a valid 5-field cron expression: Value 25 not in range [0, 23]");
            assertThatThrownBy(() -> Schedule.cron("n", "0 0 1 1 * 2030", "k")).hasMessageStartingWith(
                    "schedule n: cron='0 0 1 1 * 2030' is not a valid 6-field cron expression:");
            assertThatThrownBy(() -> Schedule.cron("n", "daily", "k")).hasMessage(
                    "schedule n: cron='daily' has 1 field; it must have 5 fields (minute hour day-of-month month day-of-week)"
                            + " or 6 with seconds first");
            assertThatThrownBy(() -> Schedule.cron("n", "@reboot", "k")).hasMessage(
                    "schedule n: cron='@reboot' is not a nickname pgdispatch knows: @yearly, @annually, @monthly, @weekly, @daily,"
                            + " @midnight, @hourly (or 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first)");
            assertThatThrownBy(() -> Schedule.cron("n", "0 0 0 1 1 * 2030", "k")).hasMessageContaining("has 7 fields");
            assertThatThrownBy(() -> Schedule.cron("n", "0 0 30 2 *", "k"))
                    .hasMessage("schedule n: cron='0 0 30 2 *' never fires (no date matches it)");
        }

        @Test
        void refusesBadFieldsNamingFieldValueAndRule() {
            assertThatThrownBy(() -> Schedule.every("n", Duration.ofMillis(500), "k"))
                    .hasMessage("schedule n: every=PT0.5S must be a whole number of seconds from 1 s to 366 days");
            assertThatThrownBy(() -> Schedule.every("n", Duration.ofDays(367), "k")).hasMessageContaining("every=PT8808H must be");
            assertThat(Schedule.every("n", "90s", "k").every()).isEqualTo(Duration.ofSeconds(90));
            assertThat(Schedule.every("n", "PT2H", "k").every()).isEqualTo(Duration.ofHours(2));
            assertThatThrownBy(() -> Schedule.every("n", "soon", "k"))
                    .hasMessage("schedule n: every='soon' must be a duration such as 90s, 15m, 2h, 1d or PT15M");
            assertThatThrownBy(() -> Schedule.cron("a b", "* * * * *", "k")).hasMessage(
                    "schedule a b: name='a b' must be 1-200 of letters, digits, _ . : - starting with a letter or digit");
            assertThatThrownBy(() -> Schedule.cron("n", "* * * * *", "-k")).hasMessageStartingWith("schedule n: kind='-k' must be");
            assertThatThrownBy(() -> Schedule.cron("n", "* * * * *", "k").zone("Mars/Olympus")).hasMessage(
                    "schedule n: zone='Mars/Olympus' is not a known time zone (a region name such as Europe/Berlin, or UTC)");
            assertThatThrownBy(() -> Schedule.cron("n", "* * * * *", "k").zone("UTC+05:00")).hasMessageStartingWith(
                    "schedule n: zone='UTC+05:00' must be a region name");
            assertThatThrownBy(() -> Schedule.cron("n", "* * * * *", "k").payload("[1]"))
                    .hasMessage("schedule n: payload must be a JSON object ({...}), got array");
            assertThatThrownBy(() -> Schedule.cron("n", "* * * * *", "k").queue("")).hasMessageStartingWith("schedule n: queue='' must be");
            assertThatThrownBy(() -> Schedule.cron("n", "* * * * *", "k").priority(5000))
                    .hasMessage("schedule n: priority=5000 must be from -1000 to 1000 (lower runs first)");
            assertThatThrownBy(() -> Schedule.cron("n", "* * * * *", "k").maxAttempts(0))
                    .hasMessage("schedule n: max_attempts=0 must be from 1 to 1000");
            assertThatThrownBy(() -> Schedule.cron("n", "* * * * *", "k").backfill(0))
                    .hasMessage("schedule n: backfill=0 must be from 1 to 1000");
            assertThatThrownBy(() -> new Schedule("n", "* * * * *", Duration.ofSeconds(5), ZoneId.of("UTC"), "k", "{}",
                    "default", 0, 5, Schedule.Missed.SKIP, 0))
                    .hasMessage("schedule n: needs exactly one of cron and every, got both (cron='* * * * *', every=PT5S)");
        }
    }

    @Nested
    class DaylightSaving {
        @Test
        void aDailyTimeInTheSpringForwardGapFiresOnceMovedByTheGap() {
            // Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that night
            List<ZonedDateTime> fires = fires("30 2 * * *", BERLIN, LocalDateTime.of(2026, 3, 27, 12, 0), 4);
            assertThat(fires).extracting(ZonedDateTime::toLocalDateTime).containsExactly(
                    LocalDateTime.of(2026, 3, 28, 2, 30), LocalDateTime.of(2026, 3, 29, 3, 30),
                    LocalDateTime.of(2026, 3, 30, 2, 30), LocalDateTime.of(2026, 3, 31, 2, 30));
            // New York, 2026-03-08, with seconds
            assertThat(fires("0 30 2 * * ?", NEW_YORK, LocalDateTime.of(2026, 3, 7, 12, 0), 2))
                    .extracting(ZonedDateTime::toLocalDateTime)
                    .containsExactly(LocalDateTime.of(2026, 3, 8, 3, 30), LocalDateTime.of(2026, 3, 9, 2, 30));
        }

        @Test
        void aDailyTimeThatOccursTwiceOnFallBackFiresOnce() {
            // Berlin, 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 occurs twice
            List<ZonedDateTime> fires = fires("30 2 * * *", BERLIN, LocalDateTime.of(2026, 10, 24, 12, 0), 3);
            assertThat(fires).extracting(f -> f.toLocalDate()).containsExactly(
                    LocalDate.of(2026, 10, 25), LocalDate.of(2026, 10, 26), LocalDate.of(2026, 10, 27));
            assertThat(fires.get(0).getOffset().getTotalSeconds()).isEqualTo(7200); // the first 02:30 (CEST)
            assertThat(fires("0 30 1 * * *", NEW_YORK, LocalDateTime.of(2026, 10, 31, 12, 0), 2))
                    .extracting(f -> f.toLocalDate()).containsExactly(LocalDate.of(2026, 11, 1), LocalDate.of(2026, 11, 2));
        }

        @Test
        void anHourlyScheduleCountsElapsedHoursAcrossBothTransitions() {
            // fall back: the repeated hour fires at both 02:30s (25 fires that day); spring: 23
            assertThat(fires("30 * * * *", BERLIN, LocalDateTime.of(2026, 10, 25, 0, 0), 30))
                    .filteredOn(f -> f.toLocalDate().equals(LocalDate.of(2026, 10, 25))).hasSize(25);
            assertThat(fires("30 * * * *", BERLIN, LocalDateTime.of(2026, 3, 29, 0, 0), 30))
                    .filteredOn(f -> f.toLocalDate().equals(LocalDate.of(2026, 3, 29))).hasSize(23);
        }

        @Test
        void anIntervalIsElapsedTimeWhateverTheZone() {
            Schedule.Recurrence r = Schedule.every("e", Duration.ofHours(1), "k").zone("Europe/Berlin").recurrence();
            Instant t = ZonedDateTime.of(2026, 3, 29, 1, 0, 0, 0, BERLIN).toInstant();
            assertThat(r.next(t)).isEqualTo(t.plusSeconds(3600));
        }

        private List<ZonedDateTime> fires(String cron, ZoneId zone, LocalDateTime from, int n) {
            Schedule.Recurrence r = Schedule.cron("dst", cron, "k").zone(zone.getId()).recurrence();
            List<ZonedDateTime> out = new ArrayList<>();
            Instant t = from.atZone(zone).toInstant();
            for (int i = 0; i < n; i++) {
                t = r.next(t);
                out.add(t.atZone(zone));
            }
            return out;
        }
    }
}

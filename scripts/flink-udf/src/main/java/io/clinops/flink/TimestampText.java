package io.clinops.flink;

import java.time.LocalDateTime;
import java.time.ZoneId;
import java.time.ZoneOffset;

/**
 * Epoch milliseconds of a timestamp text, read exactly as the batch validator reads it (clinops.data.validation).
 *
 * <p>The batch path first tries Arrow's {@code strptime("%Y-%m-%dT%H:%M:%SZ")} (the C library's strptime: numbers
 * of one digit up to the field's width, blanks before a number, seconds up to 61, a day up to 31 in any month,
 * counted on from the month's start), then pandas' ISO 8601 parser ({@code to_datetime(format="ISO8601")}):
 * nanosecond instants within a signed 64-bit count, offsets applied in 64-bit arithmetic that wraps as pandas' does,
 * then floored to milliseconds. A record's silver time and its dedupe key come from here, so every quirk is kept.
 *
 * <p>Pure Java with no Flink dependency, so it can be exercised against the batch parser without a cluster.
 */
public final class TimestampText {

    private static final long NANOS_PER_SECOND = 1_000_000_000L;
    private static final long NANOS_PER_MILLI = 1_000_000L;
    // pandas keeps Long.MIN_VALUE for NaT; its last microsecond is scaled from the smallest instant it can hold.
    private static final long MIN_NANOS = Long.MIN_VALUE + 1;
    private static final long MIN_MICROS = MIN_NANOS / 1000 - 1;
    private static final long MIN_NANOS_PICOS = 193_000L;
    private static final int[][] DAYS_IN_MONTH = {
        {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31},
        {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31},
    };

    private TimestampText() {}

    /** Epoch milliseconds, or null where the batch path yields NaT. */
    public static Long parse(String text) {
        if (text == null) {
            return null;
        }
        Long canonical = strptimeCanonical(text);
        if (canonical != null) {
            return canonical;
        }
        return iso8601(text);
    }

    // --- Arrow's fast path: strptime("%Y-%m-%dT%H:%M:%SZ") of the C library -----------------------------------

    /** C locale isspace. */
    private static boolean space(char c) {
        return c == ' ' || (c >= '\t' && c <= '\r');
    }

    private static boolean digit(char c) {
        return c >= '0' && c <= '9';
    }

    private static char at(String s, int i) {
        // Past the end reads as the C string's terminator: neither a digit, a blank nor a separator.
        return i < s.length() ? s.charAt(i) : '\0';
    }

    /** strptime's number: blanks, then at least one digit, more while the value times ten stays within {@code to}. */
    private static int number(String s, int[] cursor, int from, int to, int width) {
        int i = cursor[0];
        while (space(at(s, i))) {
            i++;
        }
        if (!digit(at(s, i))) {
            return -1;
        }
        int value = 0;
        int left = width;
        do {
            value = value * 10 + (s.charAt(i++) - '0');
        } while (--left > 0 && value * 10 <= to && digit(at(s, i)));
        cursor[0] = i;
        return value < from || value > to ? -1 : value;
    }

    private static boolean literal(String s, int[] cursor, char expected) {
        if (at(s, cursor[0]) != expected || cursor[0] >= s.length()) {
            return false;
        }
        cursor[0]++;
        return true;
    }

    private static Long strptimeCanonical(String s) {
        int[] cursor = {0};
        int year = number(s, cursor, 0, 9999, 4);
        if (year < 0 || !literal(s, cursor, '-')) {
            return null;
        }
        int month = number(s, cursor, 1, 12, 2);
        if (month < 0 || !literal(s, cursor, '-')) {
            return null;
        }
        int day = number(s, cursor, 1, 31, 2);
        if (day < 0 || !literal(s, cursor, 'T')) {
            return null;
        }
        int hour = number(s, cursor, 0, 23, 2);
        if (hour < 0 || !literal(s, cursor, ':')) {
            return null;
        }
        int minute = number(s, cursor, 0, 59, 2);
        if (minute < 0 || !literal(s, cursor, ':')) {
            return null;
        }
        int second = number(s, cursor, 0, 61, 2);
        if (second < 0 || !literal(s, cursor, 'Z') || cursor[0] != s.length()) {
            return null;
        }
        long seconds = daysFromCivil(year, month, day) * 86_400L + hour * 3_600L + minute * 60L + second;
        return seconds * 1000L;
    }

    /** Days since 1970-01-01 of a proleptic Gregorian date; a day past the month's end counts on into the next. */
    static long daysFromCivil(long year, int month, int day) {
        long y = month <= 2 ? year - 1 : year;
        long era = Math.floorDiv(y, 400);
        long yearOfEra = y - era * 400;
        long dayOfYear = (153L * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
        long dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear;
        return era * 146_097 + dayOfEra - 719_468;
    }

    // --- pandas' ISO 8601 parser ---------------------------------------------------------------------------

    private static boolean leap(long year) {
        return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    }

    /** The fields one ISO 8601 text holds; {@code offsetMinutes} is east of UTC. */
    private static final class Fields {
        long year;
        int month = 1;
        int day = 1;
        int hour;
        int minute;
        int second;
        long micros;
        long picos;
        int offsetMinutes;
    }

    private static Long iso8601(String s) {
        switch (s) {
            case "":
            case "NaT":
            case "nat":
            case "NAT":
            case "nan":
            case "NaN":
            case "NAN":
                return null;
            default:
                break;
        }
        Fields f = new Fields();
        if (!isoFields(s, f)) {
            // Only after the grammar fails: "now" is the current instant, "today" the local wall clock read as UTC.
            if (s.equals("now")) {
                return System.currentTimeMillis();
            }
            if (s.equals("today")) {
                return LocalDateTime.now(ZoneId.systemDefault()).toInstant(ZoneOffset.UTC).toEpochMilli();
            }
            return null;
        }
        long second = daysFromCivil(f.year, f.month, f.day) * 86_400L + f.hour * 3_600L + f.minute * 60L + f.second;
        long micros = second * 1_000_000L + f.micros;
        long nanos;
        try {
            if (micros == MIN_MICROS) {
                // pandas offsets its smallest instant here rather than scale (which would overflow); Java's division
                // truncates toward zero as C's does.
                nanos = Math.addExact(MIN_NANOS, (f.picos - MIN_NANOS_PICOS) / 1000L);
            } else {
                nanos = Math.addExact(Math.multiplyExact(micros, 1000L), f.picos / 1000L);
            }
        } catch (ArithmeticException outOfBounds) {
            return null;
        }
        // pandas shifts by the offset without an overflow check: Java's long arithmetic wraps the same way.
        long utc = nanos - f.offsetMinutes * 60L * NANOS_PER_SECOND;
        if (nanos == Long.MIN_VALUE || utc == Long.MIN_VALUE) {
            return null;
        }
        return Math.floorDiv(utc, NANOS_PER_MILLI);
    }

    /** pandas' grammar (np_datetime_strings): false where it reports a parse error or a field out of range. */
    private static boolean isoFields(String s, Fields out) {
        int n = s.length();
        int i = 0;
        while (i < n && space(s.charAt(i))) {
            i++;
        }
        if (at(s, i) == '-') {
            i++;
        }
        if (i >= n) {
            return false;
        }
        if (n - i >= 4 && digit(s.charAt(i)) && digit(s.charAt(i + 1)) && digit(s.charAt(i + 2))
                && digit(s.charAt(i + 3))) {
            out.year = 1000 * (s.charAt(i) - '0') + 100 * (s.charAt(i + 1) - '0') + 10 * (s.charAt(i + 2) - '0')
                    + (s.charAt(i + 3) - '0');
            i += 4;
        }
        // The sign is read from the text's first character, not from after its leading blanks.
        if (s.charAt(0) == '-') {
            out.year = -out.year;
        }
        int leap = leap(out.year) ? 1 : 0;
        if (i >= n) {
            return true;
        }
        char separator = '\0';
        if (!digit(s.charAt(i))) {
            char c = s.charAt(i);
            if (c != '-' && c != '.' && c != '/' && c != '\\' && c != ' ') {
                return false;
            }
            separator = c;
            i++;
            if (i >= n || !digit(s.charAt(i))) {
                return false;
            }
        }
        boolean separated = separator != '\0';
        out.month = s.charAt(i++) - '0';
        if (digit(at(s, i))) {
            out.month = out.month * 10 + (s.charAt(i++) - '0');
        } else if (!separated) {
            return false;
        }
        if (out.month < 1 || out.month > 12) {
            return false;
        }
        if (i >= n) {
            // YYYYMM is not read as a month.
            return separated;
        }
        if (separated) {
            if (s.charAt(i) != separator || n - i == 1) {
                return false;
            }
            i++;
        }
        if (!digit(at(s, i))) {
            return false;
        }
        out.day = s.charAt(i++) - '0';
        if (digit(at(s, i))) {
            out.day = out.day * 10 + (s.charAt(i++) - '0');
        } else if (!separated) {
            return false;
        }
        if (out.day < 1 || out.day > DAYS_IN_MONTH[leap][out.month - 1]) {
            return false;
        }
        if (i >= n) {
            return true;
        }
        if ((s.charAt(i) != 'T' && s.charAt(i) != ' ') || n - i == 1) {
            return false;
        }
        i++;
        if (!digit(at(s, i))) {
            return false;
        }
        out.hour = s.charAt(i++) - '0';
        boolean twoDigitHour = false;
        if (digit(at(s, i))) {
            twoDigitHour = true;
            out.hour = out.hour * 10 + (s.charAt(i++) - '0');
            if (out.hour >= 24) {
                return false;
            }
        }
        if (i >= n) {
            return twoDigitHour;
        }
        boolean colons = false;
        if (s.charAt(i) == ':') {
            colons = true;
            i++;
            if (i >= n || !digit(s.charAt(i))) {
                return false;
            }
        } else if (!digit(s.charAt(i))) {
            return twoDigitHour && zone(s, i, out);
        }
        out.minute = s.charAt(i++) - '0';
        if (digit(at(s, i))) {
            out.minute = out.minute * 10 + (s.charAt(i++) - '0');
            if (out.minute >= 60) {
                return false;
            }
        } else if (!colons) {
            return false;
        }
        if (i >= n) {
            return true;
        }
        if (colons && s.charAt(i) == ':') {
            i++;
            if (i >= n || !digit(s.charAt(i))) {
                return false;
            }
        } else if (colons || !digit(s.charAt(i))) {
            return zone(s, i, out);
        }
        out.second = s.charAt(i++) - '0';
        if (digit(at(s, i))) {
            out.second = out.second * 10 + (s.charAt(i++) - '0');
            if (out.second >= 60) {
                return false;
            }
        } else if (!colons) {
            return false;
        }
        if (at(s, i) != '.' || i >= n) {
            return zone(s, i, out);
        }
        i++;
        // Up to 18 fraction digits: six of microseconds, six of picoseconds, six of attoseconds (dropped).
        int[] cursor = {i};
        out.micros = fraction(s, cursor);
        if (cursor[0] >= n || !digit(s.charAt(cursor[0]))) {
            return zone(s, cursor[0], out);
        }
        out.picos = fraction(s, cursor);
        if (cursor[0] >= n || !digit(s.charAt(cursor[0]))) {
            return zone(s, cursor[0], out);
        }
        fraction(s, cursor);
        return zone(s, cursor[0], out);
    }

    /** Six fraction digits, missing ones as zeros. */
    private static long fraction(String s, int[] cursor) {
        long value = 0;
        for (int k = 0; k < 6; k++) {
            value *= 10;
            if (cursor[0] < s.length() && digit(s.charAt(cursor[0]))) {
                value += s.charAt(cursor[0]++) - '0';
            }
        }
        return value;
    }

    /** Blanks, then nothing, "Z" or an offset ([+-]H[H][[:]M[M]]), then blanks to the end. */
    private static boolean zone(String s, int i, Fields out) {
        int n = s.length();
        while (i < n && space(s.charAt(i))) {
            i++;
        }
        if (i >= n) {
            return true;
        }
        char c = s.charAt(i);
        if (c == 'Z') {
            if (n - i == 1) {
                return true;
            }
            i++;
        } else if (c == '-' || c == '+') {
            boolean negative = c == '-';
            i++;
            int hours;
            int minutes = 0;
            if (n - i >= 2 && digit(s.charAt(i)) && digit(s.charAt(i + 1))) {
                hours = 10 * (s.charAt(i) - '0') + (s.charAt(i + 1) - '0');
                i += 2;
                if (hours >= 24) {
                    return false;
                }
            } else if (n - i >= 1 && digit(s.charAt(i))) {
                hours = s.charAt(i++) - '0';
            } else {
                return false;
            }
            if (i < n) {
                if (s.charAt(i) == ':') {
                    i++;
                }
                if (n - i >= 2 && digit(s.charAt(i)) && digit(s.charAt(i + 1))) {
                    minutes = 10 * (s.charAt(i) - '0') + (s.charAt(i + 1) - '0');
                    i += 2;
                    if (minutes >= 60) {
                        return false;
                    }
                } else if (n - i >= 1 && digit(s.charAt(i))) {
                    minutes = s.charAt(i++) - '0';
                } else {
                    return false;
                }
            }
            out.offsetMinutes = negative ? -(60 * hours + minutes) : 60 * hours + minutes;
        }
        while (i < n && space(s.charAt(i))) {
            i++;
        }
        return i == n;
    }
}

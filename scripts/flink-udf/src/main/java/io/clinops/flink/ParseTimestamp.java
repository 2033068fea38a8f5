package io.clinops.flink;

import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code clinops_parse_timestamp(text)}: epoch milliseconds of a timestamp text as the batch validator reads it, or
 * NULL where it reads none. The silver job reads every timestamp through it, in the JVM, so the job starts no
 * Python worker.
 */
public class ParseTimestamp extends ScalarFunction {

    private static final long serialVersionUID = 1L;

    public Long eval(String text) {
        return TimestampText.parse(text);
    }

    /** "now" and "today" read the clock, as they do in the batch path. */
    @Override
    public boolean isDeterministic() {
        return false;
    }
}

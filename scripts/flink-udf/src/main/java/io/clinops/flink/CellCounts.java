package io.clinops.flink;

/** A window's accumulator: one count per cell of every feature's bins (see {@link BinRules}). */
public final class CellCounts {
    /** Empty until the first event, which sizes it from the rules the function opened with. */
    public long[] cells = new long[0];

    /** The fingerprint of the rules the counts were made under. */
    public long rules;

    /**
     * The counts under {@code current} rules. Counts made under other rules (a window restored from a savepoint
     * taken before the job moved to another reference profile) name other bins and cannot be added to: the window
     * starts over under the new rules.
     */
    long[] under(BinRules current) {
        if (cells.length == 0 || rules != current.fingerprint()) {
            cells = new long[current.cells()];
            rules = current.fingerprint();
        }
        return cells;
    }

    /** Adds other partial counts of the window (other subtasks') made under the same rules. */
    void add(Iterable<CellCounts> others, BinRules current) {
        long[] mine = under(current);
        for (CellCounts other : others) {
            if (other.cells.length == 0 || other.rules != current.fingerprint()) {
                continue;
            }
            for (int i = 0; i < mine.length; i++) {
                mine[i] += other.cells[i];
            }
        }
    }
}

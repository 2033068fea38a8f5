package io.clinops.flink;

/** A window's accumulator: one count per cell of every feature's bins (see {@link BinRules}). */
public final class CellCounts {
    /** Empty until the first event, which sizes it from the rules the function opened with. */
    public long[] cells = new long[0];

    /** The counts, grown to {@code size} cells if still empty. */
    long[] sized(int size) {
        if (cells.length != size) {
            if (cells.length != 0) {
                throw new IllegalStateException("counts of " + cells.length + " cells, the rules have " + size);
            }
            cells = new long[size];
        }
        return cells;
    }

    /** Adds other windows' counts (partial windows of other subtasks) into these. */
    void add(Iterable<CellCounts> others, int size) {
        long[] mine = sized(size);
        for (CellCounts other : others) {
            if (other.cells.length == 0) {
                continue;
            }
            if (other.cells.length != size) {
                throw new IllegalStateException("counts of " + other.cells.length + " cells, the rules have " + size);
            }
            for (int i = 0; i < size; i++) {
                mine[i] += other.cells[i];
            }
        }
    }
}

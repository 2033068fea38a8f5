package io.clinops.flink;

import org.apache.flink.table.annotation.DataTypeHint;

/**
 * Per window, the counts of cells computed elsewhere: {@code clinops_cell_counts(cells)} takes one event's cells
 * (one per feature, as {@link BinRules} numbers them) and returns the same counts {@link DriftBinCounts} does.
 *
 * <p>It counts for the job whose per-event bins come from a Python function (the benchmark's peer), so the two
 * jobs differ in where each event is binned and nowhere else.
 */
public final class DriftCellCounts extends CellCountsAggregate {
    private static final long serialVersionUID = 1L;

    public void accumulate(CellCounts counts, @DataTypeHint("ARRAY<INT>") Integer[] cells) {
        long[] all = counts.under(rules);
        for (Integer cell : cells) {
            if (cell == null || cell < 0 || cell >= all.length) {
                throw new IllegalArgumentException("cell " + cell + " outside 0.." + (all.length - 1));
            }
            all[cell]++;
        }
    }
}

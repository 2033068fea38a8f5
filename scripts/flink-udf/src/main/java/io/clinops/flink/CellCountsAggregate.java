package io.clinops.flink;

import org.apache.flink.table.functions.AggregateFunction;
import org.apache.flink.table.functions.FunctionContext;

/**
 * What both drift aggregates share: the rules from the job's parameters, one {@link CellCounts} per window, partial
 * windows merged and the counts of all cells as the result. They differ in how one event adds to the counts.
 */
public abstract class CellCountsAggregate extends AggregateFunction<long[], CellCounts> {
    private static final long serialVersionUID = 1L;

    protected transient BinRules rules;

    @Override
    public void open(FunctionContext context) {
        rules = Rules.of(context);
    }

    @Override
    public CellCounts createAccumulator() {
        return new CellCounts();
    }

    public void merge(CellCounts counts, Iterable<CellCounts> others) {
        counts.add(others, rules);
    }

    @Override
    public long[] getValue(CellCounts counts) {
        return counts.under(rules).clone();
    }
}

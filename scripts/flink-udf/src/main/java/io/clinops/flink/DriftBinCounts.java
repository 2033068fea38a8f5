package io.clinops.flink;

import java.util.List;
import java.util.Optional;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.catalog.DataTypeFactory;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.functions.FunctionDefinition;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.inference.ArgumentCount;
import org.apache.flink.table.types.inference.CallContext;
import org.apache.flink.table.types.inference.ConstantArgumentCount;
import org.apache.flink.table.types.inference.InputTypeStrategy;
import org.apache.flink.table.types.inference.Signature;
import org.apache.flink.table.types.inference.TypeInference;
import org.apache.flink.table.types.inference.TypeStrategies;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.LogicalTypeFamily;
import org.apache.flink.table.types.logical.LogicalTypeRoot;

/**
 * Per window, every feature's bin counts: {@code clinops_bin_counts(features)} takes one event's monitored
 * features as a ROW in the rules' order (DOUBLE for numeric, STRING for categorical) and returns the counts of all
 * cells.
 *
 * <p>Each event costs one binary search per numeric feature and one hash lookup per categorical one, on the row
 * as Flink holds it; partial windows merge, so the planner counts on every subtask and adds the partial counts up
 * once per window.
 */
public final class DriftBinCounts extends CellCountsAggregate {
    private static final long serialVersionUID = 1L;
    static final DataType COUNTS = DataTypes.ARRAY(DataTypes.BIGINT().notNull()).notNull().bridgedTo(long[].class);

    public void accumulate(CellCounts counts, RowData features) {
        if (features.getArity() != rules.features()) {
            throw new IllegalArgumentException(
                    "clinops_bin_counts got " + features.getArity() + " features; the rules have " + rules.features());
        }
        long[] cells = counts.under(rules);
        for (int i = 0; i < rules.features(); i++) {
            cells[rules.cell(features, i)]++;
        }
    }

    @Override
    public TypeInference getTypeInference(DataTypeFactory typeFactory) {
        return TypeInference.newBuilder()
                .inputTypeStrategy(new FeaturesRow())
                .accumulatorTypeStrategy(TypeStrategies.explicit(typeFactory.createDataType(CellCounts.class)))
                .outputTypeStrategy(TypeStrategies.explicit(COUNTS))
                .build();
    }

    /** One ROW of DOUBLE and STRING fields, handed over as Flink's own RowData (no conversion per event). */
    private static final class FeaturesRow implements InputTypeStrategy {
        @Override
        public ArgumentCount getArgumentCount() {
            return ConstantArgumentCount.of(1);
        }

        @Override
        public Optional<List<DataType>> inferInputTypes(CallContext call, boolean throwOnFailure) {
            DataType argument = call.getArgumentDataTypes().get(0);
            LogicalType type = argument.getLogicalType();
            boolean fits = type.is(LogicalTypeRoot.ROW)
                    && type.getChildren().stream()
                            .allMatch(f -> f.is(LogicalTypeRoot.DOUBLE) || f.is(LogicalTypeFamily.CHARACTER_STRING));
            if (!fits) {
                if (throwOnFailure) {
                    throw call.newValidationError(
                            "clinops_bin_counts takes one ROW of DOUBLE and STRING features, not %s", type);
                }
                return Optional.empty();
            }
            return Optional.of(List.of(argument.bridgedTo(RowData.class)));
        }

        @Override
        public List<Signature> getExpectedSignatures(FunctionDefinition definition) {
            return List.of(Signature.of(Signature.Argument.of("features", "ROW<DOUBLE | STRING, ...>")));
        }
    }
}

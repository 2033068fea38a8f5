package io.clinops.flink;

import org.apache.flink.table.functions.FunctionContext;

/** The rules a function opens with: decoded once per function instance from the job's parameters. */
final class Rules {
    private Rules() {}

    static BinRules of(FunctionContext context) {
        String encoded = context.getJobParameter(BinRules.PARAMETER, null);
        if (encoded == null || encoded.isEmpty()) {
            throw new IllegalStateException(
                    "no job parameter " + BinRules.PARAMETER + ": the drift job sets it (pipeline.global-job-parameters)");
        }
        return BinRules.decode(encoded);
    }
}

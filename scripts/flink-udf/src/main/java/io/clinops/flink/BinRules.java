package io.clinops.flink;

import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;

/**
 * The reference profile's bin rule for every monitored feature, and each value's cell: one integer {@code offset +
 * bin} that names a (feature, bin) pair across all features, as {@code clinops.streaming.flink.drift_sql} numbers
 * them.
 *
 * <p>The rules arrive as the text {@code drift_sql.encode_rules} writes (base64 of a big-endian record), so the
 * edges are the profile's very doubles. A numeric value's bin is the number of edges {@code <=} it
 * ({@code numpy.searchsorted(edges, v, side="right")}); null, NaN and ±inf are missing. A categorical value's bin
 * is the index of the text it equals, else "other"; null is missing.
 *
 * <p>An event is a {@link RowData} of the features in the rules' order, DOUBLE for numeric and STRING for
 * categorical: read as Flink holds it, texts compared as their UTF-8 bytes, nothing converted or boxed.
 */
public final class BinRules {
    /** The job parameter the drift job puts the encoded rules under. */
    public static final String PARAMETER = "clinops.drift.rules";

    private static final int FORMAT = 1;
    private static final byte NUMERIC = 0;
    private static final byte CATEGORICAL = 1;

    private final double[][] edges;
    private final List<Map<StringData, Integer>> texts;
    private final int[] offsets;
    private final int[] missing;
    private final int[] other;
    private final int cells;
    private final long fingerprint;

    private BinRules(
            double[][] edges,
            List<Map<StringData, Integer>> texts,
            int[] missing,
            int[] other,
            int[] sizes,
            long fingerprint) {
        this.edges = edges;
        this.fingerprint = fingerprint;
        this.texts = texts;
        this.missing = missing;
        this.other = other;
        this.offsets = new int[sizes.length];
        int start = 0;
        for (int i = 0; i < sizes.length; i++) {
            offsets[i] = start;
            start += sizes[i];
        }
        this.cells = start;
    }

    /** The rules from their encoded text; a malformed text is an {@code IllegalArgumentException}. */
    public static BinRules decode(String encoded) {
        byte[] bytes = Base64.getDecoder().decode(encoded);
        try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(bytes))) {
            int format = in.readInt();
            if (format != FORMAT) {
                throw new IllegalArgumentException("drift rules in format " + format + ", this jar reads " + FORMAT);
            }
            int features = in.readInt();
            double[][] edges = new double[features][];
            List<Map<StringData, Integer>> texts = new ArrayList<>(features);
            int[] missing = new int[features];
            int[] other = new int[features];
            int[] sizes = new int[features];
            for (int f = 0; f < features; f++) {
                byte kind = in.readByte();
                if (kind == NUMERIC) {
                    edges[f] = readEdges(in, f);
                    texts.add(null);
                    missing[f] = edges[f].length + 1;
                    other[f] = -1;
                    sizes[f] = edges[f].length + 2;
                } else if (kind == CATEGORICAL) {
                    int categories = in.readInt();
                    texts.add(readTexts(in, categories, f));
                    other[f] = categories;
                    missing[f] = categories + 1;
                    sizes[f] = categories + 2;
                } else {
                    throw new IllegalArgumentException("feature " + f + " has unknown kind " + kind);
                }
            }
            if (in.available() != 0) {
                throw new IllegalArgumentException("drift rules carry " + in.available() + " bytes past their end");
            }
            return new BinRules(edges, texts, missing, other, sizes, fingerprint(bytes));
        } catch (IOException e) {
            throw new IllegalArgumentException("drift rules end early: " + e, e);
        }
    }

    private static double[] readEdges(DataInputStream in, int feature) throws IOException {
        double[] edges = new double[in.readInt()];
        for (int i = 0; i < edges.length; i++) {
            double edge = in.readDouble();
            if (!Double.isFinite(edge) || (i > 0 && !(edge > edges[i - 1]))) {
                throw new IllegalArgumentException("feature " + feature + ": edges must be finite and ascending");
            }
            // binarySearch orders -0.0 before 0.0 where numpy's comparison holds them equal; values are normalised
            // alike in cell().
            edges[i] = edge == 0.0 ? 0.0 : edge;
        }
        return edges;
    }

    private static Map<StringData, Integer> readTexts(DataInputStream in, int categories, int feature)
            throws IOException {
        int entries = in.readInt();
        Map<StringData, Integer> texts = new HashMap<>(entries * 2);
        for (int i = 0; i < entries; i++) {
            byte[] utf8 = new byte[in.readInt()];
            in.readFully(utf8);
            int bin = in.readInt();
            if (bin < 0 || bin >= categories) {
                throw new IllegalArgumentException("feature " + feature + ": bin " + bin + " outside its categories");
            }
            texts.put(StringData.fromBytes(utf8), bin);
        }
        return texts;
    }

    /** 64-bit FNV-1a of the encoded rules: tells counts made under other rules apart. */
    private static long fingerprint(byte[] bytes) {
        long hash = 0xcbf29ce484222325L;
        for (byte b : bytes) {
            hash = (hash ^ (b & 0xff)) * 0x100000001b3L;
        }
        return hash;
    }

    /** The fingerprint of these rules, kept with the counts made under them. */
    public long fingerprint() {
        return fingerprint;
    }

    /** How many features the rules cover, in the order the job passes their values. */
    public int features() {
        return offsets.length;
    }

    /** How many cells all features' bins make together: the length of a window's counts. */
    public int cells() {
        return cells;
    }

    /** The cell of an event's feature {@code feature}. */
    public int cell(RowData event, int feature) {
        if (event.isNullAt(feature)) {
            return offsets[feature] + missing[feature];
        }
        double[] cuts = edges[feature];
        if (cuts != null) {
            double v = event.getDouble(feature);
            if (!Double.isFinite(v)) {
                return offsets[feature] + missing[feature];
            }
            int found = Arrays.binarySearch(cuts, v == 0.0 ? 0.0 : v);
            // Edges are distinct: a hit at i has i + 1 edges <= v; a miss gives the insertion point, the edges < v.
            return offsets[feature] + (found >= 0 ? found + 1 : -found - 1);
        }
        Integer bin = texts.get(feature).get(event.getString(feature));
        return offsets[feature] + (bin == null ? other[feature] : bin);
    }

    /** Whether a feature is numeric (its value a DOUBLE) rather than categorical (a STRING). */
    public boolean numeric(int feature) {
        return edges[feature] != null;
    }

    /**
     * Reads the encoded rules from the first line of standard input, then one event per line, and prints each
     * event's cells: the job's bin rule checked against the profile's own (numpy) one without starting Flink.
     *
     * <p>An event line holds every feature's value separated by spaces: {@code null}, {@code d:<IEEE-754 bits in
     * hex>} or {@code s:<base64 of UTF-8 text>}.
     */
    public static void main(String[] args) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        BinRules rules = decode(in.readLine());
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            String[] values = line.split(" ");
            GenericRowData event = new GenericRowData(values.length);
            for (int i = 0; i < values.length; i++) {
                event.setField(i, parse(values[i]));
            }
            StringBuilder cells = new StringBuilder();
            for (int i = 0; i < rules.features(); i++) {
                cells.append(i == 0 ? "" : " ").append(rules.cell(event, i));
            }
            out.println(cells);
        }
        out.flush();
        if (out.checkError()) {
            throw new UncheckedIOException(new IOException("cannot write the cells"));
        }
    }

    private static Object parse(String value) {
        if (value.equals("null")) {
            return null;
        }
        if (value.startsWith("d:")) {
            return Double.longBitsToDouble(Long.parseUnsignedLong(value.substring(2), 16));
        }
        if (value.startsWith("s:")) {
            return StringData.fromBytes(Base64.getDecoder().decode(value.substring(2)));
        }
        throw new IllegalArgumentException("not a value: " + value);
    }
}

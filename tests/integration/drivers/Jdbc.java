// pgjdbc (Debian's libpostgresql-jdbc-java) from 20 concurrent connections:
// statements past prepareThreshold become server-side named statements
// (S_1, S_2, ... — the same names on every connection, so PgCrab must keep
// each client's apart), executeBatch pipelines many Bind/Execute behind one
// Sync, setFetchSize reads through a named portal (Execute with a row
// limit, PortalSuspended) inside a transaction, and errors are checked by
// SQLSTATE. Every result is checked against what it must be, so the same
// run against PostgreSQL directly shows the test itself is right.
// Run with: java -cp /usr/share/java/postgresql.jar Jdbc.java URL USER PASSWORD
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

public class Jdbc {
    static final int CLIENTS = 20;
    static final int ROUNDS = 30;

    static List<String> wrong = Collections.synchronizedList(new ArrayList<>());

    static void want(int client, String what, Object got, Object expected) {
        if (!String.valueOf(got).equals(String.valueOf(expected)))
            wrong.add("client " + client + " " + what + ": " + got + " != " + expected);
    }

    static String sqlstateOf(PreparedStatement ps) {
        try {
            ps.executeQuery().close();
            return "no error";
        } catch (SQLException e) {
            return e.getSQLState();
        }
    }

    static void one(String url, Properties props, int i) throws SQLException {
        try (Connection c = DriverManager.getConnection(url, props)) {
            String table = "jdbc_rows_" + i;
            try (Statement s = c.createStatement()) {
                s.execute("DROP TABLE IF EXISTS " + table);
                s.execute("CREATE TABLE " + table + " (id int PRIMARY KEY, note text)");
            }
            PreparedStatement twice = c.prepareStatement("SELECT ?::int * 2");
            PreparedStatement mine = c.prepareStatement(
                i % 2 == 0 ? "SELECT ?::int + 1000" : "SELECT ?::int - 1000");
            PreparedStatement divide = c.prepareStatement("SELECT 1 / ?::int");
            int inserted = 0;
            for (int k = 0; k < ROUNDS; k++) {
                int n = i * 1000 + k;
                twice.setInt(1, n);
                try (ResultSet r = twice.executeQuery()) {
                    r.next();
                    want(i, "twice", r.getInt(1), 2 * n);
                }
                mine.setInt(1, n);
                try (ResultSet r = mine.executeQuery()) {
                    r.next();
                    want(i, "own statement", r.getInt(1), i % 2 == 0 ? n + 1000 : n - 1000);
                }

                // a batch: many Bind/Execute pipelined behind one Sync, in a
                // transaction that is committed or rolled back
                c.setAutoCommit(false);
                try (PreparedStatement ins = c.prepareStatement(
                         "INSERT INTO " + table + " (id, note) VALUES (?, ?)")) {
                    for (int b = 0; b < 10; b++) {
                        ins.setInt(1, k * 10 + b);
                        ins.setString(2, "row " + (k * 10 + b));
                        ins.addBatch();
                    }
                    int[] counts = ins.executeBatch();
                    want(i, "batch size", counts.length, 10);
                }
                try (Statement s = c.createStatement();
                     ResultSet r = s.executeQuery("SELECT count(*) FROM " + table)) {
                    r.next();
                    want(i, "rows seen inside the transaction", r.getInt(1), inserted + 10);
                }
                if (k % 3 == 2) {
                    c.rollback();
                } else {
                    c.commit();
                    inserted += 10;
                }
                c.setAutoCommit(true);

                if (k % 5 == 0) {
                    // an error inside a transaction: 22012, then 25P02 until
                    // the rollback, then the connection carries on
                    c.setAutoCommit(false);
                    divide.setInt(1, 0);
                    want(i, "division by zero", sqlstateOf(divide), "22012");
                    divide.setInt(1, 1);
                    want(i, "statement in a failed transaction", sqlstateOf(divide), "25P02");
                    c.rollback();
                    c.setAutoCommit(true);
                    try (ResultSet r = divide.executeQuery()) {
                        r.next();
                        want(i, "after the rollback", r.getInt(1), 1);
                    }
                }
            }

            // a cursor: fetchSize in a transaction reads through a named
            // portal, 7 rows per Execute
            c.setAutoCommit(false);
            try (PreparedStatement q = c.prepareStatement(
                     "SELECT id, note FROM " + table + " ORDER BY id")) {
                q.setFetchSize(7);
                int rows = 0;
                long sum = 0;
                try (ResultSet r = q.executeQuery()) {
                    while (r.next()) {
                        rows++;
                        sum += r.getInt(1);
                        want(i, "note", r.getString(2), "row " + r.getInt(1));
                    }
                }
                want(i, "rows through the cursor", rows, inserted);
                long expected = 0;
                for (int k = 0; k < ROUNDS; k++)
                    if (k % 3 != 2)
                        for (int b = 0; b < 10; b++)
                            expected += k * 10 + b;
                want(i, "sum through the cursor", sum, expected);
            }
            c.commit();
            c.setAutoCommit(true);
            try (Statement s = c.createStatement()) {
                s.execute("DROP TABLE " + table);
            }
        }
    }

    public static void main(String[] args) throws Exception {
        String url = args[0];
        Properties props = new Properties();
        props.setProperty("user", args[1]);
        props.setProperty("password", args[2]);
        props.setProperty("prepareThreshold", "2");
        props.setProperty("connectTimeout", "10");
        props.setProperty("socketTimeout", "30");
        ExecutorService pool = Executors.newFixedThreadPool(CLIENTS);
        List<Future<?>> runs = new ArrayList<>();
        for (int i = 0; i < CLIENTS; i++) {
            final int client = i;
            runs.add(pool.submit(() -> {
                one(url, props, client);
                return null;
            }));
        }
        int failed = 0;
        for (Future<?> f : runs) {
            try {
                f.get();
            } catch (Exception e) {
                failed++;
                wrong.add("client failed: " + e.getCause());
            }
        }
        pool.shutdown();
        pool.awaitTermination(10, TimeUnit.SECONDS);
        String detail = wrong.isEmpty() ? "" : ": " + String.join("; ", wrong.subList(0, Math.min(3, wrong.size())));
        System.out.println((wrong.isEmpty() ? "ok" : "not ok") + " - jdbc: " + CLIENTS + " clients x " + ROUNDS
            + " rounds of server-prepared statements, batches, cursors and errors, "
            + failed + " clients failed, " + wrong.size() + " wrong results" + detail);
        System.exit(wrong.isEmpty() ? 0 : 1);
    }
}

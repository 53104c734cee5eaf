// pgjdbc in transaction mode: options=-c... and currentSchema in the
// connection properties, SET, a temp table, SQL PREPARE and LISTEN/NOTIFY
// (PGConnection.getNotifications) hold for client A across transactions
// while client B runs in between; B sees none of A's.
// Run with: java -cp /usr/share/java/postgresql.jar SessionState.java URL USER PASSWORD
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;

public class SessionState {
    static int fails = 0;

    static void expect(String name, Object want, Object got) {
        boolean good = String.valueOf(want).equals(String.valueOf(got));
        if (!good) fails++;
        System.out.println(good ? "ok - jdbc: " + name : "not ok - jdbc: " + name + ": expected " + want + ", got " + got);
    }

    static String one(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet r = s.executeQuery(sql)) {
            r.next();
            return r.getString(1);
        }
    }

    static void run(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.execute(sql);
        }
    }

    static List<String> notes(Connection c, int waitMs) throws SQLException {
        List<String> out = new ArrayList<>();
        PGNotification[] ns = c.unwrap(PGConnection.class).getNotifications(waitMs);
        if (ns != null)
            for (PGNotification n : ns) out.add(n.getName() + ":" + n.getParameter());
        return out;
    }

    public static void main(String[] args) throws Exception {
        String url = args[0];
        Properties pa = new Properties(), pb = new Properties();
        for (Properties p : new Properties[] {pa, pb}) {
            p.setProperty("user", args[1]);
            p.setProperty("password", args[2]);
            p.setProperty("connectTimeout", "10");
            p.setProperty("socketTimeout", "20");
        }
        pa.setProperty("options", "-c work_mem=5MB -c statement_timeout=6000");
        pa.setProperty("currentSchema", "crab_d");
        try (Connection a = DriverManager.getConnection(url, pa); Connection b = DriverManager.getConnection(url, pb)) {
            for (int r = 0; r < 2; r++) {
                expect("round " + r + ": A's options=-c and currentSchema", "5MB,6s,crab_d",
                    one(a, "SELECT concat_ws(',', current_setting('work_mem'), current_setting('statement_timeout'), current_setting('search_path'))"));
                expect("round " + r + ": B has the defaults", "4MB,0,\"$user\", public",
                    one(b, "SELECT concat_ws(',', current_setting('work_mem'), current_setting('statement_timeout'), current_setting('search_path'))"));
            }
            run(a, "SET work_mem = '9MB'");
            expect("B after A's SET work_mem", "4MB", one(b, "SHOW work_mem"));
            a.setAutoCommit(false);
            expect("A's SET in its next transaction", "9MB", one(a, "SHOW work_mem"));
            a.commit();
            a.setAutoCommit(true);

            run(a, "CREATE TEMP TABLE crab_drv_tmp (a int)");
            run(a, "INSERT INTO crab_drv_tmp VALUES (1), (2)");
            expect("B does not see A's temp table", "t", one(b, "SELECT to_regclass('crab_drv_tmp') IS NULL"));
            a.setAutoCommit(false);
            expect("A's temp table in a later transaction", "2", one(a, "SELECT count(*) FROM crab_drv_tmp"));
            a.commit();
            a.setAutoCommit(true);
            expect("B still does not", "t", one(b, "SELECT to_regclass('crab_drv_tmp') IS NULL"));
            run(a, "DISCARD TEMP");

            run(a, "PREPARE crab_drv_p(int) AS SELECT $1 * 2");
            expect("B does not see A's PREPARE", "0", one(b, "SELECT count(*) FROM pg_prepared_statements WHERE name = 'crab_drv_p'"));
            expect("A's EXECUTE in a later statement", "42", one(a, "EXECUTE crab_drv_p(21)"));
            run(a, "DEALLOCATE crab_drv_p");

            run(a, "LISTEN crab_drv");
            run(b, "NOTIFY crab_drv, 'one'");
            List<String> got = new ArrayList<>(notes(a, 3000));
            a.setAutoCommit(false);
            one(a, "SELECT 1");
            a.commit();
            a.setAutoCommit(true);
            run(b, "NOTIFY crab_drv, 'two'");
            got.addAll(notes(a, 3000));
            expect("getNotifications: A gets B's notifications across transactions", "[crab_drv:one, crab_drv:two]", got);
            expect("B does not listen", "0", one(b, "SELECT count(*) FROM pg_listening_channels()"));
            run(a, "UNLISTEN *");
        } catch (SQLException e) {
            fails++;
            System.out.println("not ok - jdbc: the program ran to its end: " + e.getSQLState() + " " + e.getMessage());
        }
        System.out.println("# done");
        System.exit(fails == 0 ? 0 : 1);
    }
}

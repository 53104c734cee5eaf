// Logs in with pgjdbc and runs SELECT 1; prints "ok" or "E:SQLSTATE message".
// Run with: java -cp /usr/share/java/postgresql.jar AuthLogin.java URL USER PASSWORD
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.Properties;

public class AuthLogin {
    public static void main(String[] args) {
        Properties p = new Properties();
        p.setProperty("user", args[1]);
        p.setProperty("password", args[2]);
        p.setProperty("sslmode", "disable");
        p.setProperty("connectTimeout", "10");
        try (Connection c = DriverManager.getConnection(args[0], p)) {
            c.createStatement().execute("SELECT 1");
            System.out.println("ok");
        } catch (SQLException e) {
            String msg = e.getMessage().split("\n")[0];
            // pgjdbc prefixes the server's text with its severity
            msg = msg.replaceFirst("^(FATAL|ERROR): ", "");
            System.out.println("E:" + e.getSQLState() + " " + msg);
        }
    }
}

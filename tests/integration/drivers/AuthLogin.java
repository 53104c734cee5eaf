// Logs in with pgjdbc and runs SELECT 1, once for each line of stdin
// ("PORT USER PASSWORD", tab separated); prints one line per login: "ok" or
// "E:SQLSTATE message".
// Run with: java -cp /usr/share/java/postgresql.jar AuthLogin.java DB
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.Properties;

public class AuthLogin {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isEmpty())
                continue;
            String[] f = line.split("\t", -1);
            Properties p = new Properties();
            p.setProperty("user", f[1]);
            p.setProperty("password", f[2]);
            p.setProperty("sslmode", "disable");
            p.setProperty("connectTimeout", "10");
            String url = "jdbc:postgresql://127.0.0.1:" + f[0] + "/" + args[0];
            try (Connection c = DriverManager.getConnection(url, p)) {
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
}

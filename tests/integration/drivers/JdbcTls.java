// pgjdbc over TLS: sslmode=require with the NonValidatingFactory (no CA
// checks, as libpq's require); asks the server whether its side is TLS.
// Arguments: url user password.
import java.sql.*;
import java.util.Properties;

public class JdbcTls {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.setProperty("user", args[1]);
        props.setProperty("password", args[2]);
        props.setProperty("sslmode", "require");
        props.setProperty("sslfactory", "org.postgresql.ssl.NonValidatingFactory");
        props.setProperty("connectTimeout", "10");
        try (Connection c = DriverManager.getConnection(args[0], props);
             PreparedStatement ps = c.prepareStatement("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")) {
            boolean server = false;
            for (int i = 0; i < 5; i++) { /* past prepareThreshold: a named statement */
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    server = rs.getBoolean(1);
                }
            }
            System.out.println(server ? "ok - jdbc over TLS (server side TLS too)" : "not ok - jdbc: server side not TLS");
        } catch (SQLException e) {
            System.out.println("not ok - jdbc: " + e.getMessage());
        }
    }
}

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;

/** Runs each argument after the URL with Statement.executeUpdate and prints its update count. */
public class Update {
    public static void main(String[] args) throws Exception {
        try (Connection conn = DriverManager.getConnection(args[0]); Statement st = conn.createStatement()) {
            for (int i = 1; i < args.length; i++) System.out.println(st.executeUpdate(args[i]));
        }
    }
}

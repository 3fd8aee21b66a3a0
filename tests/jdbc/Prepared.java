import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;

/** PreparedStatement with parameters through the Arrow Flight SQL JDBC driver, as a grid
 *  editor uses it: a parameterised SELECT, an INSERT and a batch of INSERTs into table args[1]
 *  (id BIGINT, name VARCHAR). Prints what it read and wrote. */
public class Prepared {
    public static void main(String[] args) throws Exception {
        String table = args[1];
        try (Connection conn = DriverManager.getConnection(args[0])) {
            try (PreparedStatement select = conn.prepareStatement("SELECT name FROM " + table + " WHERE id = ?")) {
                select.setLong(1, 2L);
                try (ResultSet rs = select.executeQuery()) {
                    while (rs.next()) System.out.println("selected " + rs.getString(1));
                }
            }
            try (PreparedStatement insert = conn.prepareStatement("INSERT INTO " + table + " VALUES (?, ?)")) {
                insert.setLong(1, 10L);
                insert.setString(2, "ten");
                System.out.println("inserted " + insert.executeUpdate());
                for (long id = 11; id <= 13; id++) {
                    insert.setLong(1, id);
                    insert.setString(2, "batch" + id);
                    insert.addBatch();
                }
                int total = 0;
                for (int n : insert.executeBatch()) total += n;
                System.out.println("batched " + total);
            }
        }
    }
}

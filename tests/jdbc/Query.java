import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.Statement;

/** Runs one query through the Arrow Flight SQL JDBC driver and prints its rows, tab-separated. */
public class Query {
    public static void main(String[] args) throws Exception {
        try (Connection conn = DriverManager.getConnection(args[0]);
             Statement st = conn.createStatement();
             ResultSet rs = st.executeQuery(args[1])) {
            ResultSetMetaData meta = rs.getMetaData();
            while (rs.next()) {
                StringBuilder row = new StringBuilder();
                for (int i = 1; i <= meta.getColumnCount(); i++) {
                    if (i > 1) row.append('\t');
                    row.append(rs.getString(i));
                }
                System.out.println(row);
            }
        }
    }
}

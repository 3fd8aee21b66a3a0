import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.Statement;

/** Runs one query through the Arrow Flight SQL JDBC driver. Prints what ResultSetMetaData says
 *  of each column ("column", name, type name, precision, scale, table), then each row's values
 *  as strings ("row", values), tab-separated, one line each. */
public class Query {
    public static void main(String[] args) throws Exception {
        try (Connection conn = DriverManager.getConnection(args[0]);
             Statement st = conn.createStatement();
             ResultSet rs = st.executeQuery(args[1])) {
            ResultSetMetaData meta = rs.getMetaData();
            for (int i = 1; i <= meta.getColumnCount(); i++) {
                System.out.println("column\t" + meta.getColumnName(i) + "\t" + meta.getColumnTypeName(i) + "\t"
                    + meta.getPrecision(i) + "\t" + meta.getScale(i) + "\t" + meta.getTableName(i));
            }
            while (rs.next()) {
                StringBuilder row = new StringBuilder("row");
                for (int i = 1; i <= meta.getColumnCount(); i++) row.append('\t').append(rs.getString(i));
                System.out.println(row);
            }
        }
    }
}

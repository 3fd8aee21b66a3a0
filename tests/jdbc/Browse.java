import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.util.Arrays;
import java.util.Comparator;

/** Browses the server as a database tool does on connect: every DatabaseMetaData method that
 *  takes no argument, then catalogs, schemas, tables and columns. Prints one line per method
 *  that threw ("FAILED name: exception") and counts of what it found. */
public class Browse {
    public static void main(String[] args) throws Exception {
        try (Connection conn = DriverManager.getConnection(args[0])) {
            DatabaseMetaData meta = conn.getMetaData();
            Method[] methods = DatabaseMetaData.class.getMethods();
            Arrays.sort(methods, Comparator.comparing(Method::getName));
            int called = 0;
            for (Method method : methods) {
                if (method.getParameterCount() != 0 || Modifier.isStatic(method.getModifiers())) continue;
                called++;
                try {
                    Object value = method.invoke(meta);
                    if (value instanceof ResultSet) {
                        try (ResultSet rs = (ResultSet) value) { while (rs.next()) { } }
                    }
                } catch (Exception e) {
                    Throwable cause = e.getCause() != null ? e.getCause() : e;
                    System.out.println("FAILED " + method.getName() + ": " + cause);
                }
            }
            System.out.println("methods " + called);
            System.out.println("tables " + count(meta.getTables(null, null, "%", null)));
            System.out.println("columns " + count(meta.getColumns(null, null, args[1], "%")));
            System.out.println("keys " + count(meta.getPrimaryKeys(null, null, args[1])));
            System.out.println("keywords " + meta.getSQLKeywords().split(",").length);
            System.out.println("types " + count(meta.getTypeInfo()));
        }
    }

    private static int count(ResultSet rs) throws Exception {
        int n = 0;
        try (ResultSet r = rs) { while (r.next()) n++; }
        return n;
    }
}

"""The Arrow Flight SQL JDBC driver for the interoperability tests: fetched once from Maven
Central by Maven (pinned), kept in `.cache/jdbc/`, with the small Java client the tests run.

    python -m scripts.jdbc    # fetch and compile now (the tests do it on first use)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSION = "18.3.0"
ARTIFACT = f"org.apache.arrow:flight-sql-jdbc-driver:{VERSION}"
CACHE = ROOT / ".cache" / "jdbc"
JAR = CACHE / f"flight-sql-jdbc-driver-{VERSION}.jar"
SOURCES = sorted((ROOT / "tests" / "jdbc").glob("*.java"))
JAVA_OPTIONS = ["--add-opens=java.base/java.nio=ALL-UNNAMED"]  # Arrow's memory needs it on Java 17


def ensure() -> Path:
    """The directory holding the driver jar and the compiled client; builds what is missing."""
    CACHE.mkdir(parents=True, exist_ok=True)
    if not JAR.exists():
        subprocess.run(
            ["mvn", "-q", "-B", "dependency:copy", f"-Dartifact={ARTIFACT}", f"-DoutputDirectory={CACHE}"],
            check=True,
            cwd=CACHE,
            timeout=600,
        )
    for source in SOURCES:
        compiled = CACHE / f"{source.stem}.class"
        if not compiled.exists() or compiled.stat().st_mtime < source.stat().st_mtime:
            subprocess.run(["javac", "-cp", str(JAR), "-d", str(CACHE), str(source)], check=True, timeout=300)
    return CACHE


def run(program: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run one of the Java programs under tests/jdbc/ with the driver on the class path."""
    classpath = f"{JAR}:{ensure()}"
    return subprocess.run(["java", *JAVA_OPTIONS, "-cp", classpath, program, *args], capture_output=True, text=True, timeout=timeout)


def run_query(url: str, sql: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `sql` through the driver at `url`; stdout has a `column` line per column and a
    `row` line per row, tab-separated (see `rows` and `columns`)."""
    return run("Query", url, sql, timeout=timeout)


def rows(done: subprocess.CompletedProcess[str]) -> list[list[str]]:
    """The row values `run_query` printed, as strings."""
    return [line.split("\t")[1:] for line in done.stdout.splitlines() if line.startswith("row\t")]


def columns(done: subprocess.CompletedProcess[str]) -> dict[str, list[str]]:
    """Column name -> [type name, precision, scale, table] as `run_query` printed them."""
    return {parts[1]: parts[2:] for parts in (line.split("\t") for line in done.stdout.splitlines() if line.startswith("column\t"))}


if __name__ == "__main__":
    print(ensure(), file=sys.stderr)
    sys.exit(0 if shutil.which("java") else 1)

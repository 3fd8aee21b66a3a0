"""Spark with Apache Iceberg for the interoperability tests: the Iceberg runtime for Spark 4.1,
its AWS bundle (S3FileIO for MinIO) and SQLite's JDBC driver (a catalog to register tables
in), pinned, fetched once from Maven Central by Maven and kept in `.cache/spark/`.

    python -m scripts.spark    # fetch now (the tests do it on first use)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "spark"
ICEBERG = "1.12.0"
ARTIFACTS = (
    f"org.apache.iceberg:iceberg-spark-runtime-4.1_2.13:{ICEBERG}",
    f"org.apache.iceberg:iceberg-aws-bundle:{ICEBERG}",
    "org.xerial:sqlite-jdbc:3.50.3.0",
)


def jars() -> list[Path]:
    """The jars Spark needs on its class path, fetched first if missing."""
    CACHE.mkdir(parents=True, exist_ok=True)
    found = []
    for artifact in ARTIFACTS:
        _, name, version = artifact.split(":")
        jar = CACHE / f"{name}-{version}.jar"
        if not jar.exists():
            subprocess.run(["mvn", "-q", "-B", "dependency:copy", f"-Dartifact={artifact}", f"-DoutputDirectory={CACHE}"], check=True, cwd=CACHE, timeout=900)
        found.append(jar)
    return found


if __name__ == "__main__":
    print("\n".join(str(j) for j in jars()), file=sys.stderr)

"""The arrow-go Flight SQL client for the interoperability tests: a tiny program under
`tests/go/`, its modules pinned by its go.sum and fetched once from the Go module proxy,
built into `.cache/go/` (rebuilt only when its sources change)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tests" / "go"
CACHE = ROOT / ".cache" / "go"


def ensure() -> Path:
    """The built client; builds it first when missing or out of date."""
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(SOURCE.iterdir()) if p.is_file())).hexdigest()[:16]
    binary = CACHE / f"xdbc-{digest}"
    if not binary.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["go", "build", "-o", str(binary), "."], cwd=SOURCE, check=True, timeout=900)
    return binary


def xdbc_types(address: str) -> subprocess.CompletedProcess[str]:
    """Ask the server at `host:port` for GetXdbcTypeInfo; one `name<TAB>data_type` line per type."""
    return subprocess.run([str(ensure()), address], capture_output=True, text=True, timeout=120)

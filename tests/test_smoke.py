"""The smoke script as part of the suite: workers_500k end to end on real MinIO and real servers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_smoke_script_passes_end_to_end() -> None:
    done = subprocess.run([sys.executable, "-m", "scripts.smoke"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    print(done.stdout[-4000:])
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "after a restart the dataset is still there" in done.stdout

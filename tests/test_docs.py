"""The guides' examples run as written against a live server on a fresh lake, so they cannot rot.

Each guide's ```sh blocks run in order in one bash (curl failing on an HTTP error), then its
```python blocks in order in one interpreter, from a scratch directory as if from the
repository (the server's ports and the repository's `.venv/bin/` are the only substitutions).
Blocks marked ```sh no-run (starting servers, installing) are left out. The guides run in one
order and then again in the reverse order: examples must work in any order and more than once.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import ServerProcess, server_process

ROOT = Path(__file__).resolve().parent.parent
GUIDES = ["README.md", "docs/http.md", "docs/flight.md", "docs/engines.md"]
BLOCK = re.compile(r"^```(sh|python)([^\n]*)\n(.*?)^```", re.S | re.M)
PRELUDE = 'set -euo pipefail\ncurl() { command curl -sS --fail-with-body "$@"; }\n'


def examples(guide: str, lang: str) -> list[tuple[int, str]]:
    text = (ROOT / guide).read_text()
    found = []
    for m in BLOCK.finditer(text):
        if m.group(1) == lang and "no-run" not in m.group(2):
            found.append((text.count("\n", 0, m.start()) + 1, m.group(3)))
    return found


def localized(code: str, server: ServerProcess) -> str:
    return (
        code.replace("127.0.0.1:3100", f"127.0.0.1:{server.http_port}")
        .replace("127.0.0.1:8815", f"127.0.0.1:{server.flight_port}")
        .replace(".venv/bin/", f"{ROOT}/.venv/bin/")
    )


def run_guide(guide: str, server: ServerProcess, cwd: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))  # `python -m bench...` as from the repository
    for key in [k for k in env if k.startswith("LAKEHOUSE_")]:
        del env[key]
    shell = examples(guide, "sh")
    if shell:
        script = PRELUDE + "\n".join(f"echo '>>> {guide}:{line}' >&2\n{localized(code, server)}" for line, code in shell)
        done = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{guide}: a shell example failed\n{done.stderr[-3000:]}\n{done.stdout[-2000:]}"
    python = examples(guide, "python")
    if python:
        program = "\n".join(f"# {guide}:{line}\n{localized(code, server)}" for line, code in python)
        done = subprocess.run([sys.executable, "-W", "error::Warning", "-c", program], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{guide}: a Python example failed\n{done.stderr[-3000:]}"
        assert "Warning" not in done.stderr, done.stderr[-2000:]


def test_every_guide_has_examples_to_run() -> None:
    for guide in GUIDES:
        assert examples(guide, "sh") or examples(guide, "python"), guide


@pytest.mark.slow
def test_guides_run_as_written_in_any_order_and_again(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with server_process(tmp_path / "server", f"file://{tmp_path / 'lake'}") as server:
        for guide in GUIDES + list(reversed(GUIDES)):
            run_guide(guide, server, scratch)

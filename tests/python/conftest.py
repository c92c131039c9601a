import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXTDATA = ROOT / "inst" / "extdata"


@pytest.fixture(scope="session")
def extdata():
    return EXTDATA


def _rscript():
    return shutil.which("Rscript")


@pytest.fixture(scope="session")
def run_r():
    """Run R code in a subprocess that uses this very Python (the R package must be installed)."""
    exe = _rscript()
    if exe is None:
        pytest.skip("Rscript is not installed")

    def run(code: str) -> str:
        env = dict(os.environ, ISTHMUS_PYTHON=os.sys.executable)
        done = subprocess.run([exe, "-e", code], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    return run

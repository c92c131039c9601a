"""Seurat / SingleCellExperiment .rds files for Python users.

R runs in a subprocess with the isthmus R package, and the two sides meet in a temporary .h5ad /
.h5mu file (MOFA2's pattern): no embedded R in this process, so no rpy2 / R version coupling.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path


def _rscript() -> str:
    exe = os.environ.get("ISTHMUS_RSCRIPT") or shutil.which("Rscript")
    if exe is None:
        raise RuntimeError(
            "isthmus: Rscript was not found. Install R and the isthmus R package, or set ISTHMUS_RSCRIPT "
            "to the Rscript executable."
        )
    return exe


def _run_r(code: str) -> None:
    env = dict(os.environ)
    # the R side must use this very Python, or the two halves may disagree on versions
    env.setdefault("ISTHMUS_PYTHON", os.sys.executable)
    done = subprocess.run([_rscript(), "-e", code], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"isthmus: R failed:\n{done.stderr.strip()[-4000:]}")


def _r_string(path: Path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def read_rds(path: str | os.PathLike, *, multimodal: bool | None = None):
    """Read a Seurat or SingleCellExperiment ``.rds`` file as AnnData (one assay) or MuData.

    ``multimodal=None`` returns MuData when the object has more than one assay (or altExps).
    """
    import anndata as ad
    import mudata as md

    src = Path(path).resolve()
    if not src.exists():
        raise FileNotFoundError(f"isthmus: {src} does not exist")
    with tempfile.TemporaryDirectory(prefix="isthmus-") as tmp:
        h5ad, h5mu = Path(tmp) / "obj.h5ad", Path(tmp) / "obj.h5mu"
        choice = "NA" if multimodal is None else ("TRUE" if multimodal else "FALSE")
        _run_r(
            f"obj <- readRDS({_r_string(src)}); multi <- {choice}; "
            "if (is.na(multi)) multi <- isthmus:::.n_modalities(obj) > 1; "
            f"if (multi) isthmus::write_h5mu(obj, {_r_string(h5mu)}) else isthmus::write_h5ad(obj, {_r_string(h5ad)})"
        )
        if h5mu.exists():
            return md.read_h5mu(h5mu)
        return ad.read_h5ad(h5ad)


def write_rds(data, path: str | os.PathLike, *, to: str = "Seurat") -> None:
    """Write AnnData or MuData as a ``.rds`` file holding a Seurat (default) or SingleCellExperiment."""
    import anndata as ad

    if to not in ("Seurat", "SingleCellExperiment"):
        raise ValueError("isthmus: to must be 'Seurat' or 'SingleCellExperiment'")
    dest = Path(path).resolve()
    with tempfile.TemporaryDirectory(prefix="isthmus-") as tmp:
        if isinstance(data, ad.AnnData):
            file = Path(tmp) / "obj.h5ad"
            data.write_h5ad(file)
            reader = "read_h5ad"
        else:
            file = Path(tmp) / "obj.h5mu"
            data.write_h5mu(file)
            reader = "read_h5mu"
        _run_r(f'saveRDS(isthmus::{reader}({_r_string(file)}, to = "{to}"), {_r_string(dest)})')

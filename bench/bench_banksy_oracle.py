"""Our BANKSY (tl._domains.banksy_features, written from the paper) against the authors' package,
pybanksy, run as a black box at the same settings on DLPFC slices (a check, never a dependency:
pybanksy is GPL-3.0, isthmus MIT; the script skips when pybanksy is not installed).

    python bench/bench_banksy_oracle.py                  # 151673
    python bench/bench_banksy_oracle.py --slices 151673,151674

Same input for both: the task's log-normalised 3000 variable genes; k_geom 18 (the mean over 18
spots, the azimuthal Gabor filter over 36), lambda 0.2, m = 1, 20 PCs (ours, seeded, on either
matrix), a Gaussian mixture of 7 (the task's, best of 20 starts). Reports, per block (own, mean,
AGF), the largest difference and the correlation between the two matrices; the PCs'
agreement (the canonical correlations of the two 20-PC spaces); the ARI to the manual layers of
each and between the two label sets.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import anndata as ad  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import adjusted_rand_score  # noqa: E402

from isthmus.tl import _domains  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "spatial"


def _authors(dense, xy, *, k_geom, lambda_, max_m):
    """The authors' matrix through pybanksy's public functions (as its README's pipeline)."""
    with contextlib.redirect_stdout(io.StringIO()):
        from banksy.embed_banksy import create_nbr_matrix
        from banksy.main import concatenate_all, generate_spatial_weights_fixed_nbrs
        from sklearn.neighbors import NearestNeighbors

        nearest = NearestNeighbors(algorithm="ball_tree").fit(xy)
        weights = {m: generate_spatial_weights_fixed_nbrs(xy, m=m, num_neighbours=k_geom, decay_type="scaled_gaussian",
                                                          nbr_object=nearest, verbose=False)[0]
                   for m in range(max_m + 1)}
        nbr = create_nbr_matrix(ad.AnnData(X=dense), {"banksy": {"weights": weights}}, "banksy", max_m, verbose=False)
        return concatenate_all([dense, *(nbr[m] for m in range(max_m + 1))], lambda_, None)


def _canonical(a, b):
    qa, _ = np.linalg.qr(a - a.mean(0))
    qb, _ = np.linalg.qr(b - b.mean(0))
    return np.linalg.svd(qa.T @ qb, compute_uv=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slices", default="151673")
    args = parser.parse_args()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import banksy  # noqa: F401
    except ImportError:
        print("pybanksy is not installed: nothing to compare with (skipped)")
        return
    for slice_id in args.slices.split(","):
        adata = ad.read_h5ad(SHARED / f"dlpfc_{slice_id}_visium_5000hvg.h5ad")
        truth = adata.obs["layer"].astype(str)
        known = (truth != "nan").to_numpy()
        lognorm = _domains._log_hvg(adata.X, 3000)
        dense = np.asarray(lognorm.todense(), dtype=np.float64)
        xy = adata.obsm["spatial"].astype(float)
        started = time.perf_counter()
        ours = _domains.banksy_features(lognorm, xy, k_geom=18, lambda_=0.2, max_m=1)
        ours_s = time.perf_counter() - started
        started = time.perf_counter()
        theirs = np.asarray(_authors(dense, xy, k_geom=18, lambda_=0.2, max_m=1))
        theirs_s = time.perf_counter() - started
        print(f"DLPFC {slice_id}: {adata.n_obs} spots x {dense.shape[1]} genes; matrices {ours.shape} / "
              f"{theirs.shape}; built in {ours_s:.1f} s (ours) / {theirs_s:.1f} s (pybanksy)")
        g = dense.shape[1]
        for i, name in enumerate(["own", "mean (H0)", "AGF (H1)"]):
            a, b = ours[:, i * g:(i + 1) * g], theirs[:, i * g:(i + 1) * g]
            print(f"  {name:10s} scale ours {a.std():.4f} theirs {b.std():.4f}; largest difference "
                  f"{np.abs(a - b).max():.4f}; correlation {np.corrcoef(a.ravel(), b.ravel())[0, 1]:.5f}")
        labels = {}
        for name, matrix in (("ours", ours), ("pybanksy", theirs)):
            embedding = _domains._banksy_pca(matrix, n_comps=20, seed=0)
            labels[name] = (embedding, _domains._gmm(embedding, 7))
        cc = _canonical(labels["ours"][0].astype(float), labels["pybanksy"][0].astype(float))
        print(f"  20 PCs: canonical correlations min {cc.min():.4f}, mean {cc.mean():.4f}")
        for name, (_, lab) in labels.items():
            print(f"  ARI to the layers, {name}: {adjusted_rand_score(truth[known], lab[known]):.3f}")
        print(f"  ARI between the two label sets: {adjusted_rand_score(labels['ours'][1], labels['pybanksy'][1]):.3f}")


if __name__ == "__main__":
    main()

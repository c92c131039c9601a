"""A corpus of .h5ad / .h5mu files laid out the way other tools write them, and a part-by-part
comparison of AnnData / MuData objects.

Each fixture function writes one file into a folder and returns its path. They are built here
with the installed anndata / mudata / h5py (no files are downloaded), following the layouts those
tools use: scanpy's Visium layout (obsm["spatial"], uns["spatial"][library] with images,
scalefactors and metadata), anndata's own test objects (every element type it can store), MuData
with axis 0 and 1, and the pre-0.7 anndata layout, read from the copy scanpy ships in its wheel.
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

N_OBS, N_VAR = 24, 15


def _names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{k}" for k in range(n)]


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def every_element(folder: Path) -> Path:
    """Every element type anndata stores, with missing values wherever they can sit."""
    rng = _rng(1)
    counts = sparse.random(N_OBS, N_VAR, density=0.4, random_state=1, format="csr", dtype=np.float32)
    counts.data = np.ceil(counts.data * 10).astype(np.float32)
    obs = pd.DataFrame(
        {
            "cat": pd.Categorical(rng.choice(["a", "b", "c"], N_OBS)),
            "cat_na": pd.Categorical(["x", None, "y"] * (N_OBS // 3), categories=["y", "x", "unused"]),
            "ordered": pd.Categorical(rng.choice(["lo", "hi"], N_OBS), categories=["lo", "hi"], ordered=True),
            "float_nan": np.where(np.arange(N_OBS) % 5 == 0, np.nan, rng.normal(size=N_OBS)),
            "int": np.arange(N_OBS, dtype=np.int32),
            "bool": np.arange(N_OBS) % 2 == 0,
            "nullable_int": pd.array([1, None] * (N_OBS // 2), dtype="Int32"),
            "nullable_bool": pd.array([True, None, False] * (N_OBS // 3), dtype="boolean"),
            "string": [f"s{k}" for k in range(N_OBS)],
        },
        index=_names("cell", N_OBS),
    )
    var = pd.DataFrame(
        {"highly_variable": np.arange(N_VAR) % 3 == 0, "mean": rng.random(N_VAR)},
        index=_names("gene", N_VAR),
    )
    obsp_dist = sparse.random(N_OBS, N_OBS, density=0.2, random_state=2, format="csr")
    obsp_dist.data[::4] = np.nan
    adata = ad.AnnData(
        X=rng.random((N_OBS, N_VAR)),
        obs=obs,
        var=var,
        layers={"counts": counts, "csc": counts.tocsc().astype(np.float64), "dense": rng.normal(size=(N_OBS, N_VAR))},
        obsm={
            "X_pca": rng.normal(size=(N_OBS, 4)),
            "spatial": rng.random((N_OBS, 2)) * 100,
            "array": rng.normal(size=(N_OBS, 3)),
        },
        varm={"PCs": rng.normal(size=(N_VAR, 4)), "loadings_other": rng.normal(size=(N_VAR, 2))},
        obsp={"distances": obsp_dist, "connectivities": sparse.identity(N_OBS, format="csr")},
        uns={
            "string": "a note",
            "number": 3.5,
            "integer": 7,
            "flag": True,
            "vector": np.array([1.5, np.nan, 3.0]),
            "strings": np.array(["u", "v", "w"]),
            "matrix": rng.normal(size=(3, 2)),
            "string_matrix": np.array([["a", "b", "c"], ["d", "e", "f"]]),
            "cube": np.arange(24, dtype=np.float64).reshape(2, 3, 4),
            "nested": {"level2": {"value": 1.0, "names": np.array(["p", "q"])}},
            "frame": pd.DataFrame({"x": [1.0, 2.0], "label": ["one", "two"]}, index=["r1", "r2"]),
        },
    )
    path = folder / "every_element.h5ad"
    adata.write_h5ad(path)
    return path


def _visium_image(shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = _rng(seed)
    return rng.random((*shape, 3)).astype(np.float32)


def scanpy_visium(folder: Path) -> Path:
    """The layout sc.read_visium / squidpy's datasets write: one library with hires + lowres
    images, 10x scale factors and the Space Ranger metadata."""
    rng = _rng(3)
    n = N_OBS
    library = "V1_Adult_Mouse_Brain"
    xy = np.column_stack([rng.uniform(100, 1900, n), rng.uniform(100, 1900, n)])
    adata = ad.AnnData(
        X=sparse.random(n, N_VAR, density=0.5, random_state=3, format="csr", dtype=np.float32),
        obs=pd.DataFrame({"in_tissue": np.ones(n, dtype=np.int64), "array_row": rng.integers(0, 70, n),
                          "array_col": rng.integers(0, 120, n)}, index=[f"AAAC{k:04d}-1" for k in range(n)]),
        var=pd.DataFrame({"gene_ids": [f"ENSMUSG{k:05d}" for k in range(N_VAR)],
                          "feature_types": ["Gene Expression"] * N_VAR, "genome": ["mm10"] * N_VAR},
                         index=_names("Gene", N_VAR)),
        obsm={"spatial": xy},
        uns={"spatial": {library: {
            "images": {"hires": _visium_image((200, 200), 4), "lowres": _visium_image((60, 60), 5)},
            "scalefactors": {"tissue_hires_scalef": 0.1, "tissue_lowres_scalef": 0.03,
                             "spot_diameter_fullres": 89.4, "fiducial_diameter_fullres": 144.5},
            "metadata": {"chemistry_description": "Spatial 3' v1", "software_version": "spaceranger-1.0.0"},
        }}},
    )
    path = folder / "scanpy_visium.h5ad"
    adata.write_h5ad(path)
    return path


def same_name_layer_obsm(folder: Path) -> Path:
    """anndata's own v0.7 test archives hold a layer and an obsm entry of the same name."""
    rng = _rng(6)
    adata = ad.AnnData(
        X=rng.random((N_OBS, N_VAR)),
        obs=pd.DataFrame(index=_names("c", N_OBS)),
        var=pd.DataFrame(index=_names("g", N_VAR)),
        layers={"array": rng.random((N_OBS, N_VAR))},
        obsm={"array": rng.random((N_OBS, 2)), "sparse": sparse.random(N_OBS, 3, density=0.5, format="csr", random_state=6)},
    )
    path = folder / "same_name_layer_obsm.h5ad"
    adata.write_h5ad(path)
    return path


def no_x(folder: Path) -> Path:
    rng = _rng(7)
    adata = ad.AnnData(obs=pd.DataFrame(index=_names("c", N_OBS)), var=pd.DataFrame(index=_names("g", N_VAR)),
                       layers={"counts": sparse.random(N_OBS, N_VAR, density=0.3, format="csr", random_state=7)})
    adata.obsm["X_umap"] = rng.random((N_OBS, 2))
    path = folder / "no_x.h5ad"
    adata.write_h5ad(path)
    return path


def _modality(seed: int, prefix: str, n_obs: int, n_var: int, obs_prefix: str = "cell") -> ad.AnnData:
    m = ad.AnnData(
        X=sparse.random(n_obs, n_var, density=0.4, random_state=seed, format="csr"),
        obs=pd.DataFrame(index=_names(obs_prefix, n_obs)),
        var=pd.DataFrame(index=_names(prefix, n_var)),
    )
    return m


def mudata_axis0(folder: Path) -> Path:
    import mudata as md

    rna = _modality(8, "gene", N_OBS, N_VAR)
    prot = _modality(9, "prot", N_OBS, 5)
    prot.X = prot.X.astype(np.float32).tocsc()  # a dtype and a layout R does not hold
    with md.set_options(pull_on_update=False):
        mdata = md.MuData({"rna": rna, "prot": prot})
        mdata.obs["group"] = pd.Categorical(["g1", "g2"] * (N_OBS // 2))
        mdata.obsm["X_joint"] = _rng(8).normal(size=(N_OBS, 3))
        path = folder / "mudata_axis0.h5mu"
        mdata.write_h5mu(path)
    return path


def mudata_axis1(folder: Path) -> Path:
    """Two batches of cells over the same genes: modalities share var (MuData axis=1)."""
    import mudata as md

    a = _modality(10, "gene", 10, N_VAR, obs_prefix="a")
    b = _modality(11, "gene", 12, N_VAR, obs_prefix="b")
    with md.set_options(pull_on_update=False):
        mdata = md.MuData({"batch_a": a, "batch_b": b}, axis=1)
        path = folder / "mudata_axis1.h5mu"
        mdata.write_h5mu(path)
    return path


def scanpy_wheel_pbmc68k(folder: Path) -> Path | None:
    """pbmc68k_reduced as scanpy ships it in its wheel: anndata's pre-0.7 layout (compound obs /
    var datasets, raw.X at the top level, categories in uns)."""
    import scanpy

    path = Path(scanpy.__file__).parent / "datasets" / "10x_pbmc68k_reduced.h5ad"
    return path if path.exists() else None


def anndata_pre07_h5py(folder: Path) -> Path:
    """The pre-0.7 layout (anndata 0.5/0.6), written with h5py: obs / var / obsm / varm as
    compound datasets, categories in uns["<column>_categories"], raw.X / raw.var at the top level
    with h5sparse attributes."""
    import h5py

    rng = _rng(12)
    n, m = 12, 6
    path = folder / "anndata_pre07_h5py.h5ad"
    with h5py.File(path, "w") as f:
        f.create_dataset("X", data=rng.random((n, m)).astype(np.float32))
        obs = np.zeros(n, dtype=[("index", "S8"), ("louvain", "i1"), ("n_genes", "<i8"), ("score", "<f4")])
        obs["index"] = [f"cell{k}".encode() for k in range(n)]
        obs["louvain"] = np.arange(n) % 3
        obs["n_genes"] = rng.integers(100, 1000, n)
        obs["score"] = rng.random(n)
        f.create_dataset("obs", data=obs)
        var = np.zeros(m, dtype=[("index", "S8"), ("means", "<f4")])
        var["index"] = [f"gene{k}".encode() for k in range(m)]
        var["means"] = rng.random(m)
        f.create_dataset("var", data=var)
        obsm = np.zeros(n, dtype=[("X_pca", "<f4", (3,)), ("X_umap", "<f8", (2,))])
        obsm["X_pca"] = rng.normal(size=(n, 3))
        obsm["X_umap"] = rng.normal(size=(n, 2))
        f.create_dataset("obsm", data=obsm)
        varm = np.zeros(m, dtype=[("PCs", "<f8", (3,))])
        varm["PCs"] = rng.normal(size=(m, 3))
        f.create_dataset("varm", data=varm)
        uns = f.create_group("uns")
        uns.create_dataset("louvain_categories", data=np.array([b"0", b"1", b"2"]))
        uns.create_dataset("louvain_colors", data=np.array([b"#1f77b4", b"#ff7f0e", b"#279e68"]))
        params = uns.create_group("neighbors").create_group("params")
        params.create_dataset("n_neighbors", data=np.array([15]))
        params.create_dataset("method", data=np.array([b"umap"]))
        raw = sparse.random(n, m + 2, density=0.5, format="csr", random_state=12, dtype=np.float32)
        g = f.create_group("raw.X")
        g.attrs["h5sparse_format"] = "csr"
        g.attrs["h5sparse_shape"] = np.array(raw.shape)
        g.create_dataset("data", data=raw.data)
        g.create_dataset("indices", data=raw.indices)
        g.create_dataset("indptr", data=raw.indptr)
        raw_var = np.zeros(m + 2, dtype=[("index", "S8")])
        raw_var["index"] = [f"gene{k}".encode() for k in range(m + 2)]
        f.create_dataset("raw.var", data=raw_var)
    return path


def anndata_07_h5py(folder: Path) -> Path:
    """The anndata 0.7 layout, written with h5py: data frames of encoding 0.1.0 whose categorical
    columns hold codes with an object reference to obs/__categories/<column>, a CSR matrix as a
    group with h5sparse attributes, a layer and an obsm entry of the same name, a 3-d layer."""
    import h5py

    rng = _rng(13)
    n, m = 10, 5
    path = folder / "anndata_07_h5py.h5ad"
    strings = h5py.special_dtype(vlen=str)
    with h5py.File(path, "w") as f:
        f.attrs["encoding-type"] = "anndata"
        f.attrs["encoding-version"] = "0.1.0"
        x = sparse.random(n, m, density=0.5, format="csr", random_state=13)
        g = f.create_group("X")
        g.attrs["h5sparse_format"] = "csr"
        g.attrs["h5sparse_shape"] = np.array(x.shape)
        for key in ("data", "indices", "indptr"):
            g.create_dataset(key, data=getattr(x, key))

        def frame(name, index, columns):
            grp = f.create_group(name)
            grp.attrs["_index"] = "_index"
            grp.attrs["column-order"] = np.array(list(columns), dtype=object).astype(strings) if columns else np.array([], dtype="S1")
            grp.attrs["encoding-type"] = "dataframe"
            grp.attrs["encoding-version"] = "0.1.0"
            grp.create_dataset("_index", data=np.array(index, dtype=object), dtype=strings)
            for col, values in columns.items():
                if isinstance(values, pd.Categorical):
                    cats = grp.require_group("__categories").create_dataset(
                        col, data=np.array(list(values.categories), dtype=object), dtype=strings)
                    codes = grp.create_dataset(col, data=values.codes.astype(np.int8))
                    codes.attrs["categories"] = cats.ref
                else:
                    grp.create_dataset(col, data=values)

        frame("obs", [f"c{k}" for k in range(n)],
              {"group": pd.Categorical(["a", "b"] * (n // 2)), "count": np.arange(n, dtype=np.int64)})
        frame("var", [f"g{k}" for k in range(m)], {})
        layers = f.create_group("layers")
        layers.create_dataset("same", data=rng.random((n, m)))
        layers.create_dataset("cube", data=rng.random((n, m, 2)))  # R has no 3-d assay: reported
        f.create_group("obsm").create_dataset("same", data=rng.random((n, 2)))
        f.create_group("uns").create_dataset("note", data="written like anndata 0.7", dtype=strings)
    return path


def names_and_uns_types(folder: Path) -> Path:
    """Names Seurat rewrites ('_', '|'), an integer dense X, raw and varp, and uns values of every
    pandas / NumPy kind anndata writes by default (categorical, nullable, int64, uint8, length-1)."""
    rng = _rng(14)
    n, m = 12, 6
    adata = ad.AnnData(
        X=rng.integers(0, 20, size=(n, m)).astype(np.int64),
        obs=pd.DataFrame(index=[f"cell_{k}" for k in range(n)]),
        var=pd.DataFrame({"symbol": [f"S{k}" for k in range(m)]}, index=[f"gene_{k}|v1" for k in range(m)]),
        varp={"corr": sparse.random(m, m, density=0.3, format="csr", random_state=14)},
        uns={
            "categorical": pd.Categorical(["x", "y", "x", None], categories=["y", "x"]),
            "nullable": pd.array([1, None, 3], dtype="Int64"),
            "nullable_bool": pd.array([True, None], dtype="boolean"),
            "int64": np.array([1, 2, 3], dtype=np.int64),
            "uint8": np.array([7, 8], dtype=np.uint8),
            "one": np.array([4.5]),
        },
    )
    adata.raw = adata
    path = folder / "names_and_uns_types.h5ad"
    adata.write_h5ad(path)
    return path


def squidpy_two_libraries(folder: Path) -> Path:
    """squidpy's layout for several slices: obs["library_id"] and one uns["spatial"] entry each."""
    rng = _rng(15)
    n = N_OBS
    libs = pd.Categorical(["slice_A"] * (n // 2) + ["slice_B"] * (n - n // 2))
    spatial = {lib: {"images": {"hires": _visium_image((80, 80), k)},
                     "scalefactors": {"tissue_hires_scalef": 0.2, "spot_diameter_fullres": 50.0}}
               for k, lib in enumerate(["slice_A", "slice_B"])}
    adata = ad.AnnData(X=rng.random((n, N_VAR)), obs=pd.DataFrame({"library_id": libs}, index=_names("spot", n)),
                       var=pd.DataFrame(index=_names("g", N_VAR)), obsm={"spatial": rng.random((n, 2)) * 300},
                       uns={"spatial": spatial})
    path = folder / "squidpy_two_libraries.h5ad"
    adata.write_h5ad(path)
    return path


def mudata_partial(folder: Path) -> Path:
    """MuData axis 0 whose modalities hold different cells, with per-modality annotations."""
    import mudata as md

    gex = _modality(16, "gene", N_OBS, N_VAR)
    gex.obs["gex_qc"] = np.arange(N_OBS, dtype=float)
    atac = _modality(17, "peak", N_OBS - 6, 8)
    with md.set_options(pull_on_update=False):
        # a first modality not called "rna": it must keep its name on every route
        mdata = md.MuData({"gex": gex, "atac": atac})
        mdata.obs["sample"] = pd.Categorical(["s1", "s2"] * (N_OBS // 2))
        path = folder / "mudata_partial.h5mu"
        mdata.write_h5mu(path)
    return path


FIXTURES = {
    "anndata_pre07_h5py": anndata_pre07_h5py,
    "anndata_07_h5py": anndata_07_h5py,
    "names_and_uns_types": names_and_uns_types,
    "squidpy_two_libraries": squidpy_two_libraries,
    "mudata_partial": mudata_partial,
    "every_element": every_element,
    "scanpy_visium": scanpy_visium,
    "same_name_layer_obsm": same_name_layer_obsm,
    "no_x": no_x,
    "scanpy_wheel_pbmc68k": scanpy_wheel_pbmc68k,
    "mudata_axis0": mudata_axis0,
    "mudata_axis1": mudata_axis1,
}


# ---- comparison ------------------------------------------------------------------------------


def _dense(x):
    return x.toarray() if sparse.issparse(x) else np.asarray(x)


def _same_array(a, b) -> bool:
    if sparse.issparse(a) != sparse.issparse(b) and not (isinstance(a, pd.DataFrame) or isinstance(b, pd.DataFrame)):
        return False
    if isinstance(a, pd.DataFrame) or isinstance(b, pd.DataFrame):
        return isinstance(a, pd.DataFrame) and isinstance(b, pd.DataFrame) and not _frame_diffs(a, b, "")
    if sparse.issparse(a) and a.format != b.format:
        return False
    da, db = _dense(a), _dense(b)
    if da.shape != db.shape or da.dtype != db.dtype:
        return False
    if da.dtype.kind in "fc":
        return np.array_equal(da, db, equal_nan=True)
    return np.array_equal(da, db)


def _frame_diffs(a: pd.DataFrame, b: pd.DataFrame, where: str, index: bool = True) -> list[str]:
    out = []
    if index and list(a.index) != list(b.index):
        out.append(f"{where}/index")
    for col in a.columns:
        if col not in b.columns:
            out.append(f"{where}/{col}")
            continue
        x, y = a[col], b[col]
        if x.dtype != y.dtype:
            out.append(f"{where}/{col}")
            continue
        if isinstance(x.dtype, pd.CategoricalDtype):
            if list(x.cat.categories) != list(y.cat.categories) or not np.array_equal(x.cat.codes, y.cat.codes):
                out.append(f"{where}/{col}")
            continue
        if not x.reset_index(drop=True).equals(y.reset_index(drop=True)):
            out.append(f"{where}/{col}")
    for col in b.columns:
        if col not in a.columns:
            out.append(f"{where}/{col}")
    if list(a.columns) != list(b.columns) and not out:
        out.append(f"{where}/column order")
    return out


def _uns_diffs(a, b, where: str) -> list[str]:
    if isinstance(a, dict):
        if not isinstance(b, dict):
            return [where]
        out = []
        for k in a.keys() | b.keys():
            if k not in a or k not in b:
                out.append(f"{where}/{k}")
            else:
                out += _uns_diffs(a[k], b[k], f"{where}/{k}")
        return out
    if isinstance(a, pd.DataFrame):
        return _frame_diffs(a, b, where) if isinstance(b, pd.DataFrame) else [where]
    if isinstance(a, (pd.Categorical, pd.api.extensions.ExtensionArray)):
        if type(a) is not type(b) or a.dtype != b.dtype:
            return [where]
        return [] if pd.Series(a).equals(pd.Series(b)) else [where]
    if isinstance(a, (np.ndarray, list)) or sparse.issparse(a):
        if isinstance(a, list):
            a = np.asarray(a)
        if not (isinstance(b, np.ndarray) or sparse.issparse(b)):
            return [where]
        if getattr(a, "dtype", None) is not None and a.dtype.kind in "OSU":
            ok = a.shape == b.shape and b.dtype.kind in "OSU" and np.array_equal(a.astype(str), b.astype(str))
            return [] if ok else [where]
        return [] if _same_array(a, b) else [where]
    if type(a) is not type(b) and not (isinstance(a, (str, np.str_)) and isinstance(b, (str, np.str_))):
        return [where]
    if isinstance(a, float) and np.isnan(a) and np.isnan(b):
        return []
    return [] if a == b else [where]


def _mapping_diffs(a, b, where: str) -> list[str]:
    out = []
    for k in set(a.keys()) | set(b.keys()):
        if k not in a or k not in b:
            out.append(f"{where}/{k}")
        elif not _same_array(a[k], b[k]):
            out.append(f"{where}/{k}")
    return out


def anndata_diffs(a: ad.AnnData, b: ad.AnnData, where: str = "") -> list[str]:
    """Paths of every part that differs between two AnnData objects (values, dtype or layout)."""
    p = f"{where}/" if where else ""
    out = []
    if a.shape != b.shape:
        out.append(f"{p}shape")
        return out
    if list(a.obs_names) != list(b.obs_names):
        out.append(f"{p}obs_names")
    if list(a.var_names) != list(b.var_names):
        out.append(f"{p}var_names")
    if (a.X is None) != (b.X is None) or (a.X is not None and not _same_array(a.X, b.X)):
        out.append(f"{p}X")
    # the frames' indexes are obs_names / var_names, compared above
    out += _frame_diffs(a.obs, b.obs, f"{p}obs", index=False)
    out += _frame_diffs(a.var, b.var, f"{p}var", index=False)
    for key in ("layers", "obsm", "varm", "obsp", "varp"):
        out += _mapping_diffs(getattr(a, key), getattr(b, key), f"{p}{key}")
    out += _uns_diffs(dict(a.uns), dict(b.uns), f"{p}uns")
    if (a.raw is None) != (b.raw is None):
        out.append(f"{p}raw")
    elif a.raw is not None:
        raw_a, raw_b = a.raw.to_adata(), b.raw.to_adata()
        if raw_a.shape != raw_b.shape or not _same_array(raw_a.X, raw_b.X):
            out.append(f"{p}raw")
    return out


def mudata_diffs(a, b) -> list[str]:
    out = []
    if a.axis != b.axis:
        out.append("axis")
    if set(a.mod) != set(b.mod):
        out.append("mod")
    for name in set(a.mod) & set(b.mod):
        out += anndata_diffs(a.mod[name], b.mod[name], where=f"mod/{name}")
    out += _frame_diffs(a.obs, b.obs, "obs")
    own = set(a.mod)  # mudata's own presence masks
    out += _mapping_diffs({k: v for k, v in a.obsm.items() if k not in own},
                          {k: v for k, v in b.obsm.items() if k not in own}, "obsm")
    out += _uns_diffs(dict(a.uns), dict(b.uns), "uns")
    return out


# Words a report may use for each AnnData part, R's names included.
ALIASES = {
    "X": ["x"], "layers": ["layers", "layer", "assay"], "obs": ["obs", "meta.data", "coldata"],
    "var": ["var", "rowdata", "feature"], "obsm": ["obsm", "reduction", "reduceddim", "spatial", "image"],
    "varm": ["varm", "loadings"], "obsp": ["obsp", "graph", "colpair"], "uns_spatial": ["image"], "varp": ["varp"],
    "uns": ["uns", "misc", "metadata"], "raw": ["raw"], "mod": ["mod"], "shape": ["shape"], "axis": ["axis"],
    "obs_names": ["obs_names", "cell"], "var_names": ["var_names", "feature"],
}


def _names_word(text: str, word: str) -> bool:
    """``word`` as a word of ``text`` (not inside another word: "x" is not in "matrix")."""
    import re

    return re.search(rf"(^|[^a-z0-9]){re.escape(word)}($|[^a-z0-9])", text) is not None


def is_reported(path: str, rows: list[tuple[str, str, str]]) -> bool:
    """A difference is named by the report when a row's part names it: the group in any of its
    R or Python spellings, and its key, each as a word."""
    parts = [p for p in path.split("/") if p]
    if parts and parts[0] == "mod" and len(parts) > 2:
        parts = parts[2:]
    group, key = parts[0], (parts[1] if len(parts) > 1 else None)
    leaf = parts[-1] if len(parts) > 2 else None
    for part, _status, _detail in rows:
        text = part.lower()
        if not any(_names_word(text, word) for word in ALIASES.get(group, [group.lower()])):
            continue
        if key is not None and not _names_word(text, key.lower()):
            continue
        # a nested part (uns/spatial/<library>/scalefactors/<name>): the row names the leaf, or a
        # part above it (the whole library's entry)
        if leaf is None or any(_names_word(text, p.lower()) for p in parts[2:]):
            return True
    return False

"""RNA + ATAC (10x Multiome, SNARE-seq, SHARE-seq): MultiVI's joint latent space for paired and
partly paired cells, beside the classical routes: per-modality embeddings (RNA: PCA of the
log-normalised variable genes; ATAC: LSI, i.e. TF-IDF then SVD, as Signac and muon do) and
weighted nearest neighbours (WNN, muon's implementation of Seurat's method) on them.

Partly paired data: a MuData may hold cells measured in one modality only (its modalities then
hold different cells). MultiVI reads a cell with no counts in a modality as "not measured
there", so the model's input holds every cell in both modalities, with zeros where one is
missing. WNN and the per-modality baseline need both modalities in every cell."""

from __future__ import annotations

import re
import warnings
from typing import Any, Sequence

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from . import _classical, _common, _runner
from ._registry import Method, register
from ._runner import Fit, Task, register_task

# chr1-100-200, chr1:100-200, chr1_100_200 (Signac, 10x / ArchR, scMoMaT); contigs such as
# GL000194.1 or KI270728.1 too
_PEAK_NAME = re.compile(r"^[^\s:_-]+[:_-]\d+[_-]\d+$")


def check_peak_names(names, *, what: str = "ATAC") -> None:
    """Refuse an ATAC modality whose features are not genomic regions (a gene-activity matrix or
    genes passed by mistake would be modelled as accessibility without complaint)."""
    names = pd.Index(names).astype(str)
    bad = [n for n in names if not _PEAK_NAME.match(n)]
    if len(bad) > 0.1 * len(names):
        raise ValueError(
            f"isthmus: {len(bad)} of the {len(names)} {what} features are not peak regions (e.g. "
            f"{', '.join(repr(b) for b in bad[:3])}); expected names such as 'chr1-10000-10500', "
            "'chr1:10000-10500' or 'chr1_10000_10500'. Is this a gene activity or RNA matrix?")


def _counts_on(cells: pd.Index, mod, layer: str | None) -> tuple[sparse.csr_matrix, np.ndarray]:
    """The modality's counts on ``cells`` (zero rows for cells it lacks) and which cells have any
    count there."""
    _common.check_counts(mod, layer)
    values = sparse.csr_matrix(_common.matrix_of(mod, layer), dtype=np.float32)
    if mod.obs_names.has_duplicates:
        raise ValueError("isthmus: a modality has duplicated cell names.")
    at = pd.Index(mod.obs_names).get_indexer(cells)
    present = at >= 0
    if present.all():
        rows = values[at]
    else:
        # stack the measured rows with one all-zero row and index into it
        padded = sparse.vstack([values, sparse.csr_matrix((1, values.shape[1]), dtype=np.float32)]).tocsr()
        rows = padded[np.where(present, at, values.shape[0])]
    measured = np.asarray(rows.sum(axis=1)).ravel() > 0
    return rows, measured


def pairing(mdata, *, rna: str = "rna", atac: str = "atac", rna_layer=None, atac_layer=None) -> dict[str, Any]:
    """Both modalities on the MuData's cells, with which cells each one measured; an error when no
    cell has both (the modalities would have nothing to tie them)."""
    for name in (rna, atac):
        if name not in mdata.mod:
            raise ValueError(f"isthmus: no modality {name!r}; the data has {list(mdata.mod)}")
    check_peak_names(mdata.mod[atac].var_names, what=f"{atac!r}")
    cells = pd.Index(mdata.obs_names)
    rna_counts, has_rna = _counts_on(cells, mdata.mod[rna], rna_layer)
    atac_counts, has_atac = _counts_on(cells, mdata.mod[atac], atac_layer)
    paired = has_rna & has_atac
    if not paired.any():
        raise ValueError(
            f"isthmus: no cell has counts in both {rna!r} and {atac!r} (of {len(cells)} cells: {int(has_rna.sum())} "
            f"with RNA, {int(has_atac.sum())} with ATAC). Do the modalities name the same cells the same way "
            f"(e.g. {mdata.mod[rna].obs_names[0]!r} vs {mdata.mod[atac].obs_names[0]!r})?")
    empty = ~(has_rna | has_atac)
    if empty.any():
        raise ValueError(f"isthmus: {int(empty.sum())} cells have no counts in either modality "
                         f"(e.g. {cells[empty][0]!r}); remove them.")
    return {"cells": cells, "rna": rna_counts, "atac": atac_counts, "has_rna": has_rna, "has_atac": has_atac,
            "paired": paired, "rna_features": mdata.mod[rna].var_names, "atac_features": mdata.mod[atac].var_names}


def tfidf_lsi(counts, *, n_comps: int = 30, random_state: int = 0) -> np.ndarray:
    """Latent semantic indexing of peak counts: TF-IDF (term frequency per cell x log inverse
    document frequency, scaled by 1e4 and logged, Signac's default), truncated SVD, components
    scaled to unit variance; the first component, which follows sequencing depth, is dropped."""
    from sklearn.decomposition import TruncatedSVD

    counts = sparse.csr_matrix(counts, dtype=np.float64)
    per_cell = np.asarray(counts.sum(axis=1)).ravel()
    cells_with_peak = np.asarray((counts > 0).sum(axis=0)).ravel()
    idf = counts.shape[0] / np.maximum(cells_with_peak, 1)
    tf = sparse.diags(1.0 / np.maximum(per_cell, 1)) @ counts
    tfidf = (tf @ sparse.diags(idf)).tocsr()
    tfidf.data = np.log1p(tfidf.data * 1e4)
    n = int(min(n_comps + 1, min(tfidf.shape) - 1))
    svd = TruncatedSVD(n_components=n, algorithm="arpack", random_state=random_state)
    components = svd.fit_transform(tfidf)[:, 1:]
    components = (components - components.mean(axis=0)) / components.std(axis=0).clip(1e-12)
    return components.astype(np.float32)


def wnn_graph(rna_embedding: np.ndarray, atac_embedding: np.ndarray, *, n_neighbors: int = 20,
              random_state: int = 0) -> dict[str, Any]:
    """Weighted nearest neighbours (Hao et al. 2021) by muon: per-modality kNN on the L2-normalised
    embeddings (as Seurat does), then the per-cell modality weights and the joint graph. Returns
    the graph's connectivities and distances and the RNA weight per cell."""
    import scanpy as sc

    with warnings.catch_warnings():
        # muon 0.1.9 reads scanpy.__version__, which scanpy 1.11 deprecates
        warnings.filterwarnings("ignore", message=".*__version__.*", category=FutureWarning)
        import mudata as md
        import muon

    def modality(embedding):
        unit = embedding / np.linalg.norm(embedding, axis=1, keepdims=True).clip(1e-12)
        data = ad.AnnData(obs=pd.DataFrame(index=np.arange(len(embedding)).astype(str)), obsm={"X_emb": unit})
        sc.pp.neighbors(data, use_rep="X_emb", n_neighbors=n_neighbors, random_state=random_state)
        return data

    with md.set_options(pull_on_update=False):
        joint = md.MuData({"rna": modality(rna_embedding), "atac": modality(atac_embedding)})
    muon.pp.neighbors(joint, n_neighbors=n_neighbors, key_added="wnn", random_state=random_state)
    return {"connectivities": joint.obsp["wnn_connectivities"].tocsr(),
            "distances": joint.obsp["wnn_distances"].tocsr(),
            "rna_weight": joint.obs["rna:mod_weight"].to_numpy(dtype=np.float32)}


def _prepare(call, entry) -> None:
    call.data = data = pairing(call.mdata, rna=call.rna, atac=call.atac, rna_layer=call.rna_layer,
                               atac_layer=call.atac_layer)
    n_paired = int(data["paired"].sum())
    if entry.name != "multivi" and n_paired < len(data["cells"]):
        raise ValueError(
            f"isthmus: {len(data['cells']) - n_paired} of {len(data['cells'])} cells lack one modality; the "
            f"{entry.name!r} baseline needs both in every cell. MultiVI (method='multivi') is built for partly paired "
            "data; or subset to the paired cells.")
    call.batch = None
    if call.batch_key is not None:
        values = _common.mudata_column(call.mdata, call.batch_key, data["cells"], rna=call.rna)
        if values.isna().any():
            raise ValueError(f"isthmus: batch column {call.batch_key!r} has {int(values.isna().sum())} NA values "
                             "(or cells without it); give every cell a batch.")
        _common.check_categorical(values, call.batch_key, "batch")
        call.batch = values.astype(str).to_numpy()
    if entry.name == "multivi":  # MultiVI's RNA on the chosen genes; the baselines choose their own
        _rna_genes(call, data)
    call.facts = {"n_cells": len(data["cells"]), "n_paired": n_paired,
                  "n_rna_only": int((data["has_rna"] & ~data["has_atac"]).sum()),
                  "n_atac_only": int((data["has_atac"] & ~data["has_rna"]).sum())}


def _rna_genes(call, data) -> None:
    """The RNA genes MultiVI trains on (:func:`_common.model_genes`), chosen on every cell's RNA counts
    (zero rows for cells without RNA) with the RNA modality's own variable-gene marks."""
    obs = pd.DataFrame({"batch": call.batch} if call.batch is not None else {}, index=data["cells"])
    var = call.mdata.mod[call.rna].var[["highly_variable"]] if "highly_variable" in call.mdata.mod[call.rna].var \
        else pd.DataFrame(index=data["rna_features"])
    rna = ad.AnnData(X=data["rna"], obs=obs, var=var)
    genes, source = _common.model_genes(rna, call.genes, layer=None,
                                        batch_key="batch" if call.batch is not None else None)
    if len(genes) < rna.n_vars:
        data["rna"] = data["rna"][:, rna.var_names.get_indexer(genes)]
        data["rna_features"] = genes
    call.gene_facts = _common.gene_facts(genes, source)


DEFAULT_KEYS = {"multivi": "X_multivi", "pca": "X_rna_atac_pca", "wnn": "wnn"}


def _key(call, entry=None) -> str:
    return call.key_added or DEFAULT_KEYS[call.method]


def _fit_multivi_method(call) -> Fit:
    model = _fit_multivi(call.data, call.batch, n_latent=call.n_latent, max_epochs=call.max_epochs,
                         random_state=call.random_state, verbose=call.verbose, train_kwargs=call.train_kwargs or {},
                         **call.model_kwargs)
    out: dict[str, Any] = {"latent": np.asarray(model.get_latent_representation(), dtype=np.float32)}
    fit = Fit(value=out, model=model, record={**call.facts, "n_latent": int(model.module.n_latent),
                                                       **call.gene_facts})
    fit.with_record = lambda record: out.__setitem__("record", record)
    fit.put(call.mdata, "obsm", _key(call), out["latent"])
    return fit


def _per_modality(call) -> tuple[Fit, dict]:
    rna_pcs = _classical.pca_of_counts(call.data["rna"], n_comps=call.n_comps, batch=call.batch,
                                       random_state=call.random_state)
    atac_lsi = tfidf_lsi(call.data["atac"], n_comps=call.n_comps, random_state=call.random_state)
    out: dict[str, Any] = {"rna_pca": rna_pcs, "atac_lsi": atac_lsi}
    fit = Fit(value=out, record=dict(call.facts))
    fit.with_record = lambda record: out.__setitem__("record", record)
    fit.put(call.mdata, "obsm", "X_rna_pca", rna_pcs)
    fit.put(call.mdata, "obsm", "X_atac_lsi", atac_lsi)
    return fit, out


def _fit_pca(call) -> Fit:
    fit, out = _per_modality(call)
    out["latent"] = np.hstack([out["rna_pca"], out["atac_lsi"]]).astype(np.float32)
    fit.put(call.mdata, "obsm", _key(call), out["latent"])
    return fit


def _fit_wnn(call) -> Fit:
    fit, out = _per_modality(call)
    out.update(wnn_graph(out["rna_pca"], out["atac_lsi"], n_neighbors=call.n_neighbors,
                         random_state=call.random_state))
    key = _key(call)
    fit.put(call.mdata, "obsp", f"{key}_connectivities", out["connectivities"])
    fit.put(call.mdata, "obsp", f"{key}_distances", out["distances"])
    fit.put(call.mdata, "obs", f"{key}_rna_weight", out["rna_weight"])
    return fit


register(Method("rna_atac", "multivi", _fit_multivi_method, "dl",
                "MultiVI's joint latent space, for paired and partly paired cells",
                needs=("counts", "atac"), saves_model=True, multi_device=True, writes=("obsm/{key}",),
                r_verb="IntegrateModalities"))
register(Method("rna_atac", "pca", _fit_pca, "baseline", "RNA PCA beside ATAC LSI, side by side",
                needs=("counts", "atac"), writes=("obsm/{key}", "obsm/X_rna_pca", "obsm/X_atac_lsi"),
                r_verb="IntegrateModalities"))
register(Method("rna_atac", "wnn", _fit_wnn, "baseline",
                "weighted nearest neighbours on RNA PCA and ATAC LSI (a graph)", needs=("counts", "atac"),
                writes=("obsm/X_rna_pca", "obsm/X_atac_lsi", "obsp/{key}_connectivities", "obsp/{key}_distances",
                        "obs/{key}_rna_weight")))


def rna_atac(
    mdata,
    *,
    method: str = "multivi",
    rna: str = "rna",
    atac: str = "atac",
    rna_layer: str | None = None,
    atac_layer: str | None = None,
    batch_key: str | None = None,
    genes: str | Sequence[str] = "variable",
    n_latent: int | None = None,
    n_comps: int = 30,
    n_neighbors: int = 20,
    max_epochs: int | None = None,
    model_dir: str | None = None,
    key_added: str | None = None,
    accelerator: str = "auto",
    devices: int | str | Sequence[int] = "auto",
    strategy: str = "auto",
    batch_size: int | None = None,
    random_state: int = 0,
    verbose: bool = True,
    train_kwargs: dict[str, Any] | None = None,
    **model_kwargs: Any,
) -> dict[str, Any]:
    """A joint view of RNA and chromatin accessibility of the same cells.

    ``mdata``: a MuData with modalities ``rna`` (gene counts) and ``atac`` (peak counts; names such
    as chr1-100-600), raw counts in X or the named layers; cells may lack one modality (MultiVI
    only). ``batch_key``: a column of the MuData's or the RNA modality's obs.
    method "multivi": MultiVI (scvi-tools). Writes ``obsm[key_added]`` (default "X_multivi").
    method "pca": the classical per-modality embeddings ``obsm["X_rna_pca"]`` and ``obsm["X_atac_lsi"]``
    (LSI components 2..n_comps+1), side by side in ``obsm[key_added]`` (default "X_rna_atac_pca").
    method "wnn": those embeddings and the weighted nearest neighbour graph, in
    ``obsp["wnn_connectivities"]`` / ``obsp["wnn_distances"]``, with each cell's RNA weight in
    ``obs["wnn_rna_weight"]``; a graph, not an embedding: cluster it with Leiden on that graph.
    ``model_kwargs`` go to ``scvi.model.MULTIVI()``, ``train_kwargs`` to its ``train()``.
    ``genes``: the RNA genes the model trains on: "variable" (default: the RNA modality's
    ``var["highly_variable"]`` when it marks some, else 2000 by scanpy's "seurat_v3" flavour on the
    counts, per batch when ``batch_key`` is given), "all" or a list of gene names; the record
    lists them (``genes_used``). ``accelerator`` / ``devices`` / ``strategy`` / ``batch_size``: where and in what
    minibatches the model trains (see :func:`integrate`); the record's ``device`` says where it ran.
    Returns what was written and the record (also in ``uns[key without X_]``, WNN: ``uns["wnn"]``).
    """
    return _runner.run("rna_atac", locals())


register_task(Task("rna_atac", rna_atac, key=_key,
                   record_at=lambda call, entry, fit: (call.mdata, _key(call).removeprefix("X_")), prepare=_prepare,
                   not_recorded=("mdata",)))


def _fit_multivi(data, batch, *, n_latent, max_epochs, random_state, verbose, train_kwargs, **model_kwargs):
    """MultiVI through scvi-tools' MuData route, on a lean MuData that holds every cell in both
    modalities (zeros where one was not measured), so its registry never touches the user's."""
    import mudata as md
    import scvi

    _common.seed_everything(random_state)
    cells = data["cells"].astype(str)
    obs = pd.DataFrame(index=cells)
    if batch is not None:
        obs["batch"] = pd.Categorical(batch)
    with md.set_options(pull_on_update=False):
        lean = md.MuData({name: ad.AnnData(X=data[name], obs=pd.DataFrame(index=cells),
                                           var=pd.DataFrame(index=pd.Index(data[f"{name}_features"]).astype(str)))
                          for name in ("rna", "atac")})
        lean.obs = obs
        scvi.model.MULTIVI.setup_mudata(lean, batch_key="batch" if batch is not None else None,
                                        modalities={"rna_layer": "rna", "atac_layer": "atac"})
    kwargs = dict(model_kwargs)
    if n_latent is not None:
        kwargs["n_latent"] = int(n_latent)
    with warnings.catch_warnings():
        # MultiVI builds its (empty) protein layers even without proteins; torch notes the no-op
        warnings.filterwarnings("ignore", message="Initializing zero-element tensors is a no-op")
        model = scvi.model.MULTIVI(lean, **kwargs)
    with warnings.catch_warnings():
        # without batches there is nothing for MultiVI's adversarial batch classifier to do
        warnings.filterwarnings("ignore", message="Disabling adversarial classifier")
        _common.train(model, label="MultiVI", max_epochs=max_epochs, verbose=verbose, **train_kwargs)
    return model

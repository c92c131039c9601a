"""RNA + protein (CITE-seq, ECCITE-seq): totalVI's joint latent space, denoised protein and the
probability that each protein count is background, beside the classical per-modality PCA (RNA:
log-normalised HVGs; protein: CLR, as Seurat normalises ADTs). Seurat's weighted nearest
neighbours, the other classical baseline, runs from R (FindMultiModalNeighbors)."""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from .. import _arguments
from . import _classical, _common, _runner
from ._registry import Method, register
from ._runner import Fit, Task, register_task


def aligned_modalities(rna, protein, *, rna_name: str = "rna", protein_name: str = "protein"):
    """``protein`` in ``rna``'s cell order. Different cells are an error that names them; the same
    cells in another order are reordered (MuData allows both)."""
    if rna.n_obs == protein.n_obs and np.array_equal(rna.obs_names, protein.obs_names):
        return protein
    only_rna = rna.obs_names.difference(protein.obs_names)
    only_protein = protein.obs_names.difference(rna.obs_names)
    if len(only_rna) or len(only_protein):
        example = (only_rna if len(only_rna) else only_protein)[0]
        raise ValueError(
            f"isthmus: the {rna_name} and {protein_name} modalities hold different cells: {len(only_rna)} only in "
            f"{rna_name}, {len(only_protein)} only in {protein_name} (e.g. {example!r}). Subset both to the "
            "cells they share.")
    if protein.obs_names.has_duplicates:
        raise ValueError(f"isthmus: the {protein_name} modality has duplicated cell names.")
    return protein[rna.obs_names]


def _protein_counts(protein, layer: str | None) -> pd.DataFrame:
    """Dense cells x proteins counts (a few hundred proteins at most); antibodies with no count in
    any cell are left out with a warning: totalVI's protein background prior is fitted per protein
    and has nothing to fit on them."""
    _common.check_counts(protein, layer)
    values = _common.matrix_of(protein, layer)
    values = values.toarray() if sparse.issparse(values) else np.asarray(values)
    counts = pd.DataFrame(values.astype(np.float32), index=protein.obs_names, columns=protein.var_names.astype(str))
    empty = counts.columns[(counts.to_numpy() == 0).all(axis=0)]
    if len(empty):
        warnings.warn(f"isthmus: {len(empty)} antibodies have no counts in any cell and are left out: "
                      f"{', '.join(map(str, empty[:10]))}{' ...' if len(empty) > 10 else ''}", UserWarning,
                      stacklevel=3)
        counts = counts.drop(columns=empty)
    if counts.shape[1] < 2:
        raise ValueError("isthmus: fewer than 2 antibodies with counts; RNA + protein methods need a protein panel.")
    return counts


def clr(counts: np.ndarray) -> np.ndarray:
    """Centred log-ratio per cell (Seurat's NormalizeData(method = "CLR", margin = 2))."""
    logged = np.log1p(counts)
    return logged - logged.mean(axis=1, keepdims=True)


def _prepare(call, entry) -> None:
    mdata = call.mdata
    for name, argument in ((call.rna, "rna"), (call.protein, "protein")):
        if name not in mdata.mod:
            raise ValueError(f"isthmus: no modality {name!r} ({_arguments.name(argument)}); the data has "
                             f"{list(mdata.mod)}")
    rna_data = mdata.mod[call.rna]
    call.protein_data = aligned_modalities(rna_data, mdata.mod[call.protein], rna_name=call.rna,
                                           protein_name=call.protein)
    call.counts = _protein_counts(call.protein_data, call.protein_layer)
    _common.check_counts(rna_data, call.rna_layer)
    obs = pd.DataFrame(index=rna_data.obs_names)
    if call.batch_key is not None:
        obs[call.batch_key] = _common.mudata_column(mdata, call.batch_key, rna_data.obs_names, rna=call.rna).to_numpy()
    # a lean AnnData over the user's RNA matrix (shared, not copied): setup_anndata writes its
    # registry into this one, never into the user's object
    var = rna_data.var[["highly_variable"]] if "highly_variable" in rna_data.var else pd.DataFrame(index=rna_data.var_names)
    call.work = ad.AnnData(X=_common.matrix_of(rna_data, call.rna_layer), obs=obs, var=var,
                           obsm={"protein_expression": call.counts})
    _common.check_column(call.work, call.batch_key, "batch")
    if entry.kind == "dl":  # totalVI's RNA on the chosen genes; the PCA baseline chooses its own
        genes, source = _common.model_genes(call.work, call.genes, layer=None, batch_key=call.batch_key)
        at = call.work.var_names.get_indexer(genes)
        call.work = ad.AnnData(X=call.work.X[:, at], obs=obs, var=pd.DataFrame(index=genes),
                               obsm={"protein_expression": call.counts})
        call.gene_facts = _common.gene_facts(genes, source)


# the pca route's own name, so that a user's "X_pca" is left alone
DEFAULT_KEYS = {"totalvi": "X_totalvi", "pca": "X_rna_protein_pca"}


def _key(call, entry=None) -> str:
    return call.key_added or DEFAULT_KEYS[call.method]


def _joint(call, out: dict) -> Fit:
    fit = Fit(value=out, record={"proteins": list(call.counts.columns)})
    fit.with_record = lambda record: out.__setitem__("record", record)
    fit.put(call.mdata, "obsm", _key(call), out["latent"])
    return fit


def _fit_totalvi_method(call) -> Fit:
    model = _fit_totalvi(call.work, batch_key=call.batch_key, n_latent=call.n_latent, max_epochs=call.max_epochs,
                         random_state=call.random_state, verbose=call.verbose, **call.model_kwargs)
    out: dict[str, Any] = {"latent": np.asarray(model.get_latent_representation(), dtype=np.float32)}
    _, denoised = model.get_normalized_expression(n_samples=25, return_mean=True, gene_list=[],
                                                  include_protein_background=False)
    foreground = model.get_protein_foreground_probability(n_samples=25, return_mean=True)
    out["denoised"] = np.asarray(denoised, dtype=np.float32)
    out["background"] = 1.0 - np.asarray(foreground, dtype=np.float32)
    out["proteins"] = list(call.counts.columns)
    fit = _joint(call, out)
    fit.record.update(call.gene_facts)
    fit.model = model
    protein_mod = call.mdata.mod[call.protein]
    for name, layer in _protein_layers(protein_mod, call.protein_data.obs_names, call.counts.columns, out).items():
        fit.put(protein_mod, "layers", name, layer, role=f"mod/{call.protein}")
    return fit


def _fit_pca(call) -> Fit:
    batch = call.work.obs[call.batch_key].to_numpy() if call.batch_key is not None else None
    rna_pcs = _classical.pca_of_counts(call.work.X, n_comps=call.n_comps, batch=batch, random_state=call.random_state)
    # Seurat's ADT route: CLR, scale, PCA (a panel has fewer proteins than RNA has genes)
    protein_pcs = _classical.ScaledPCA(min(call.n_comps, call.counts.shape[1] - 1), call.random_state).fit_transform(
        clr(call.counts.to_numpy()))
    out = {"latent": np.hstack([rna_pcs, protein_pcs]).astype(np.float32), "rna_pca": rna_pcs,
           "protein_pca": protein_pcs}
    fit = _joint(call, out)
    fit.put(call.mdata, "obsm", "X_rna_pca", rna_pcs)
    fit.put(call.mdata, "obsm", "X_protein_pca", protein_pcs)
    return fit


register(Method("rna_protein", "totalvi", _fit_totalvi_method, "dl",
                "totalVI's joint latent space, denoised protein and background probability",
                needs=("counts", "protein"), saves_model=True, multi_device=True,
                writes=("obsm/{key}", "mod/{protein}/layers/totalvi_denoised", "mod/{protein}/layers/totalvi_background"),
                r_verb="IntegrateModalities"))
register(Method("rna_protein", "pca", _fit_pca, "baseline",
                "RNA PCA beside protein PCA (CLR), side by side", needs=("counts", "protein"),
                writes=("obsm/{key}", "obsm/X_rna_pca", "obsm/X_protein_pca"), r_verb="IntegrateModalities"))


def rna_protein(
    mdata,
    *,
    method: str = "totalvi",
    rna: str = "rna",
    protein: str = "prot",
    rna_layer: str | None = None,
    protein_layer: str | None = None,
    batch_key: str | None = None,
    genes: str | Sequence[str] = "variable",
    n_latent: int = 20,
    n_comps: int = 20,
    max_epochs: int | None = None,
    model_dir: str | None = None,
    key_added: str | None = None,
    accelerator: str = "auto",
    devices: int | str | Sequence[int] = "auto",
    strategy: str = "auto",
    batch_size: int | None = None,
    random_state: int = 0,
    verbose: bool = True,
    **model_kwargs: Any,
) -> dict[str, Any]:
    """A joint embedding of RNA and protein counts of the same cells.

    ``mdata``: a MuData with modalities ``rna`` and ``protein`` (raw counts in X or the named
    layers); ``batch_key`` is a column of the MuData's or the RNA modality's obs.
    method "totalvi": totalVI (scvi-tools). Writes ``obsm[key_added]`` (default "X_totalvi"), and in
    the protein modality ``layers["totalvi_denoised"]`` (expected protein without background, per
    cell) and ``layers["totalvi_background"]`` (probability that the count is background).
    method "pca": the classical per-modality embeddings, ``obsm["X_rna_pca"]`` and ``obsm["X_protein_pca"]``
    (CLR), side by side in ``obsm[key_added]`` (default "X_rna_protein_pca", so that a user's own
    "X_pca" is left alone) so both can be clustered together.
    Returns the arrays written and the record (also in ``uns[key without X_]``).
    ``model_kwargs`` go to ``scvi.model.TOTALVI()`` and are kept in the record.
    ``genes``: the RNA genes the model trains on: "variable" (default: the RNA modality's
    ``var["highly_variable"]`` when it marks some, else 2000 by scanpy's "seurat_v3" flavour on the
    counts, per batch when ``batch_key`` is given), "all" or a list of gene names; the record
    lists them (``genes_used``). ``accelerator`` / ``devices`` / ``strategy`` / ``batch_size``: where and in what
    minibatches the model trains (see :func:`integrate`); the record's ``device`` says where it ran.
    """
    return _runner.run("rna_protein", locals())


register_task(Task("rna_protein", rna_protein, key=lambda call, entry: {"key": _key(call), "protein": call.protein},
                   record_at=lambda call, entry, fit: (call.mdata, _key(call).removeprefix("X_")), prepare=_prepare,
                   not_recorded=("mdata",)))


def _fit_totalvi(work, *, batch_key, n_latent, max_epochs, random_state, verbose, **model_kwargs):
    import scvi

    _common.seed_everything(random_state)
    with warnings.catch_warnings():
        # the AnnData route (protein counts in obsm) is totalVI's original interface; scvi-tools says
        # its MuData route "does not influence model performance"
        warnings.filterwarnings("ignore", message=".*recommend using setup_mudata.*", category=DeprecationWarning)
        scvi.model.TOTALVI.setup_anndata(work, protein_expression_obsm_key="protein_expression", batch_key=batch_key)
    model = scvi.model.TOTALVI(work, n_latent=int(n_latent), **model_kwargs)
    with warnings.catch_warnings():
        # totalVI's own training plan steps its scheduler itself; Lightning's note about it is noise
        warnings.filterwarnings("ignore", message=".*lr scheduler dict contains the key.*")
        _common.train(model, label="totalVI", max_epochs=max_epochs, verbose=verbose)
    return model


def _protein_layers(protein_mod, cells, proteins, out) -> dict[str, np.ndarray]:
    """totalVI's per-protein outputs as layers of the user's protein modality (its own cell order;
    antibodies left out of the model get NaN)."""
    at_cell = pd.Index(cells).get_indexer(protein_mod.obs_names)
    at_protein = pd.Index(proteins).get_indexer(protein_mod.var_names.astype(str))
    layers = {}
    for name, values in (("totalvi_denoised", out["denoised"]), ("totalvi_background", out["background"])):
        layer = np.full(protein_mod.shape, np.nan, dtype=np.float32)
        kept = at_protein >= 0
        layer[:, kept] = values[at_cell][:, at_protein[kept]]
        layers[name] = layer
    return layers

"""Label transfer from an annotated reference to a query: scANVI with scArches surgery (the query
only fine-tunes the reference model's batch-specific weights) against kNN and a linear SVM on a
PCA fitted on the reference. The output mirrors Seurat's TransferData."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .. import _arguments
from . import _classical, _common, _runner, _scvi_models
from ._registry import Method, register
from ._runner import Fit, Task, register_task

UNKNOWN = "unknown"


def _result(probabilities: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """TransferData's columns: predicted.id, prediction.score.<class>..., prediction.score.max."""
    best = probabilities.to_numpy().argmax(axis=1)
    score_max = probabilities.to_numpy().max(axis=1)
    predicted = probabilities.columns.to_numpy()[best].astype(object)
    predicted[score_max < threshold] = UNKNOWN
    out = pd.DataFrame({"predicted.id": predicted}, index=probabilities.index)
    for name in probabilities.columns:
        out[f"prediction.score.{name}"] = probabilities[name].to_numpy()
    out["prediction.score.max"] = score_max
    return out


def _scanvi_transfer(reference, query, labels, *, batch_key, layer, reference_model, genes, n_latent, max_epochs,
                     scanvi_epochs, query_epochs, allow_non_integer, model_dir, random_state, verbose):
    import scvi

    reference_dir = reference_model if isinstance(reference_model, str) else ""
    if reference_model is None:
        # the model's registry goes here, not into the user's object; on the chosen genes
        reference = _common.lean_copy(reference, genes, layer=layer, verbose=verbose)
        scvi_model = _scvi_models.fit_scvi(
            reference, layer=layer, batch_key=batch_key, labels=labels, n_latent=n_latent, max_epochs=max_epochs,
            allow_non_integer=allow_non_integer, random_state=random_state, verbose=verbose)
        reference_model = _scvi_models.fit_scanvi(scvi_model, reference, max_epochs=scanvi_epochs,
                                                  random_state=random_state, verbose=verbose)
        reference_dir = _common.save_model(reference_model, _common.model_directory(model_dir, "scanvi-reference"))
    # a saved model is used from its directory: surgery reads the registry and weights from disk
    registry = (scvi.model.base.BaseModelClass.load_registry(reference_model) if isinstance(reference_model, str)
                else reference_model.adata_manager.registry)
    if registry["model_name"] != "SCANVI":
        raise ValueError(f"isthmus: the reference model is {registry['model_name']}; label transfer needs SCANVI.")
    # The query as the reference model was set up: same layer, batch and label columns; its labels
    # are unknown by construction. Surgery adds the query's batches as new categories.
    query_in = _query_for_model(query, registry["setup_args"], layer, batch_key, allow_non_integer)
    scvi.model.SCANVI.prepare_query_anndata(query_in, reference_model)
    _common.seed_everything(random_state)
    query_model = scvi.model.SCANVI.load_query_data(query_in, reference_model, **_common.current_device().load_kwargs())
    _common.train(query_model, label="scANVI query surgery", max_epochs=query_epochs, verbose=verbose,
                  plan_kwargs={"weight_decay": 0.0})
    probabilities = query_model.predict(soft=True)
    probabilities.index = query.obs_names
    return probabilities, query_model.get_latent_representation(), reference_dir


def _query_for_model(query, setup: dict, layer, batch_key, allow_non_integer):
    import anndata as ad

    model_layer = setup.get("layer")
    matrix = _common.matrix_of(query, layer)
    query_in = ad.AnnData(X=matrix, obs=pd.DataFrame(index=query.obs_names.copy()), var=pd.DataFrame(index=query.var_names.copy()))
    if model_layer is not None:
        query_in.layers[model_layer] = matrix
    _common.check_counts(query_in, model_layer, allow_non_integer=allow_non_integer)
    if setup.get("batch_key"):
        key = batch_key or setup["batch_key"]
        if key in query.obs:
            _common.check_column(query, key, "batch")
            query_in.obs[setup["batch_key"]] = query.obs[key].astype(str).to_numpy()
        else:  # one new batch: the query as a whole
            query_in.obs[setup["batch_key"]] = "query"
    query_in.obs[setup["labels_key"]] = _common.UNLABELLED
    return query_in


def _shared_pca(reference, query, *, layer, n_comps, n_top_genes, random_state):
    shared = reference.var_names.intersection(query.var_names)
    ref_counts = _common.matrix_of(reference, layer)[:, reference.var_names.get_indexer(shared)]
    query_counts = _common.matrix_of(query, layer)[:, query.var_names.get_indexer(shared)]
    ref_log, query_log = _classical.log_normalise(ref_counts), _classical.log_normalise(query_counts)
    genes = _classical.variable_genes(ref_log, n_top_genes)
    pca = _classical.ScaledPCA(n_comps, random_state)
    return pca.fit_transform(ref_log[:, genes]), pca.transform(query_log[:, genes])


def _classical_transfer(classifier, reference, query, labels, *, layer, n_comps, n_top_genes, random_state):
    ref_pcs, query_pcs = _shared_pca(reference, query, layer=layer, n_comps=n_comps, n_top_genes=n_top_genes,
                                     random_state=random_state)
    labelled = (labels != _common.UNLABELLED).to_numpy()
    classifier.fit(ref_pcs[labelled], labels.to_numpy()[labelled])
    probabilities = pd.DataFrame(classifier.predict_proba(query_pcs), index=query.obs_names,
                                 columns=classifier.classes_)
    return probabilities, query_pcs


def _predictions(call, probabilities, latent, reference_dir="") -> Fit:
    probabilities = probabilities.loc[:, [c for c in probabilities.columns if c != _common.UNLABELLED]]
    result = _result(probabilities, call.threshold)
    fit = Fit(value=result, model_dir=reference_dir, record=dict(call.overlap))
    for column in result.columns:
        fit.put(call.query, "obs", f"{call.key_added}_{column}", result[column].to_numpy())
    fit.put(call.query, "obsm", f"X_{call.key_added}", np.asarray(latent, dtype=np.float32))
    return fit


def _fit_scanvi(call) -> Fit:
    probabilities, latent, reference_dir = _scanvi_transfer(
        call.reference, call.query, call.labels, batch_key=call.batch_key, layer=call.layer,
        reference_model=call.reference_model, genes=call.model_genes[0] if call.model_genes else None,
        n_latent=call.n_latent, max_epochs=call.max_epochs,
        scanvi_epochs=call.scanvi_epochs, query_epochs=call.query_epochs, allow_non_integer=call.allow_non_integer,
        model_dir=call.model_dir, random_state=call.random_state, verbose=call.verbose)
    fit = _predictions(call, probabilities, latent, reference_dir)
    if call.model_genes:
        fit.record.update(_common.gene_facts(*call.model_genes))
    return fit


def _fit_classifier(call, classifier) -> Fit:
    probabilities, latent = _classical_transfer(classifier, call.reference, call.query, call.labels,
                                                layer=call.layer, n_comps=call.n_comps, n_top_genes=call.n_top_genes,
                                                random_state=call.random_state)
    return _predictions(call, probabilities, latent)


def _fit_knn(call) -> Fit:
    from sklearn.neighbors import KNeighborsClassifier

    return _fit_classifier(call, KNeighborsClassifier(n_neighbors=call.n_neighbors, weights="distance"))


def _fit_svm(call) -> Fit:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import LinearSVC

    # Platt-calibrated so that its scores are probabilities, comparable with the others
    return _fit_classifier(call, CalibratedClassifierCV(LinearSVC(C=1.0, random_state=call.random_state), cv=3))


def _prepare(call, entry) -> None:
    """The gene overlap and the labels, before any training (results the methods read from ``call``)."""
    if call.reference_model is not None and entry.name != "scanvi":
        raise ValueError(f"isthmus: {_arguments.name('reference_model')} is for the scanvi method; the baselines "
                         "train on the reference data.")
    if isinstance(call.reference_model, str):
        import scvi

        reference_genes = scvi.model.SCANVI.prepare_query_anndata(call.query, call.reference_model,
                                                                  return_reference_var_names=True)
    else:
        reference = call.reference if call.reference_model is None else call.reference_model.adata
        reference_genes = reference.var_names
    overlap = _common.gene_overlap(reference_genes, call.query.var_names, min_overlap=call.min_gene_overlap)
    call.overlap = {"reference_genes": overlap["first_genes"], "query_genes": overlap["second_genes"],
                    "shared_genes": overlap["shared_genes"], "share_of_reference": overlap["share_of_first"]}
    if call.verbose:
        print(f"isthmus: the query has {overlap['shared_genes']} of the reference's {overlap['first_genes']} "
              f"genes ({overlap['share_of_first']:.0%}).", flush=True)
    call.labels, call.model_genes = None, None
    if call.reference_model is None and entry.name == "scanvi":  # the reference model's genes
        _common.check_column(call.reference, call.batch_key, "batch")
        call.model_genes = _common.model_genes(call.reference, call.genes, layer=call.layer,
                                               batch_key=call.batch_key, n_top_genes=call.n_top_genes)
    if call.reference_model is None:
        _common.check_column(call.reference, call.labels_key, "labels", allow_na=True)
        if entry.name == "scanvi":
            _common.check_column(call.reference, call.batch_key, "batch")
        call.labels = _common.labels_with_unlabelled(call.reference, call.labels_key, call.min_cells_per_label)


register(Method("transfer_labels", "scanvi", _fit_scanvi, "dl",
                "a reference scANVI model fine-tuned on the query by scArches surgery",
                needs=("counts", "reference", "labels"), saves_model=True, multi_device=True,
                writes=("obs/{key}_predicted.id", "obs/{key}_prediction.score.*", "obsm/X_{key}"),
                r_verb="TransferLabels"))
register(Method("transfer_labels", "knn", _fit_knn, "baseline",
                "distance-weighted kNN on a PCA fitted on the reference", needs=("reference", "labels"),
                writes=("obs/{key}_predicted.id", "obs/{key}_prediction.score.*", "obsm/X_{key}"),
                r_verb="TransferLabels"))
register(Method("transfer_labels", "svm", _fit_svm, "baseline",
                "a calibrated linear SVM on a PCA fitted on the reference", needs=("reference", "labels"),
                writes=("obs/{key}_predicted.id", "obs/{key}_prediction.score.*", "obsm/X_{key}"),
                r_verb="TransferLabels"))


def transfer_labels(
    reference,
    query,
    *,
    labels_key: str,
    method: str = "scanvi",
    batch_key: str | None = None,
    layer: str | None = "counts",
    reference_model=None,
    genes: str | Sequence[str] = "variable",
    threshold: float = 0.5,
    min_gene_overlap: float = 0.5,
    min_cells_per_label: int = 3,
    n_latent: int = 10,
    max_epochs: int | None = None,
    scanvi_epochs: int | None = 20,
    query_epochs: int = 100,
    n_comps: int = 30,
    n_top_genes: int = 2000,
    n_neighbors: int = 15,
    allow_non_integer: bool = False,
    model_dir: str | None = None,
    key_added: str = "transfer",
    accelerator: str = "auto",
    devices: int | str | Sequence[int] = "auto",
    strategy: str = "auto",
    batch_size: int | None = None,
    random_state: int = 0,
    verbose: bool = True,
) -> pd.DataFrame:
    """Predict ``query`` cells' labels from ``reference.obs[labels_key]``.

    Returns a frame indexed by the query's cells, as Seurat's TransferData: ``predicted.id``
    ("unknown" where the best score is below ``threshold``), ``prediction.score.<label>`` per label
    and ``prediction.score.max``.

    Sets the following fields of ``query``:

    - ``obs[f"{key_added}_<column>"]``: each column of that frame;
    - ``obsm[f"X_{key_added}"]``: the query's latent space (scANVI) or the shared PCA (baselines);
    - ``uns[key_added]``: the record, with the gene overlap and the reference model's directory.

    method "scanvi": a reference scANVI model (trained here, or ``reference_model``: a trained
    SCANVI or the directory of one saved, e.g. in an earlier session) is fine-tuned on the query by
    scArches surgery, not retrained. Baselines "knn" (distance-weighted, ``n_neighbors``) and "svm"
    (linear, calibrated) on a PCA fitted on the reference and applied to the query.
    ``genes``: the genes the reference model trains on (scanvi, when no ``reference_model`` is
    given): "variable" (default: the reference's ``var["highly_variable"]``, else the
    ``n_top_genes`` most variable by scanpy's "seurat_v3" flavour per batch), "all" or a list; the
    record lists them. ``accelerator`` / ``devices`` / ``strategy`` / ``batch_size``: see :func:`integrate`.
    NA labels in the reference mean unlabelled; labels with fewer than ``min_cells_per_label``
    cells are treated as unlabelled, with a warning.
    """
    return _runner.run("transfer_labels", locals())


register_task(Task("transfer_labels", transfer_labels, key=lambda call, entry: call.key_added,
                   record_at=lambda call, entry, fit: (call.query, call.key_added), prepare=_prepare,
                   not_recorded=("reference", "query")))

"""Task functions, scanpy style: ``adata`` first, options keyword-only, results written into it.

One private module per task, each with its DL method(s) and classical baseline(s) registered in
the method registry (:func:`methods` lists them); every task runs through the task runner
(``_runner.run``). The verbs in R call these through ``isthmus._r``.
"""

from ._common import load_model, save_model
from ._bulk import bulk_scores, deconvolve_bulk, pseudo_bulks
from ._compare import bio_scores, compare, label_transfer_scores, plot_comparison, scib_scores
from ._deconvolve import deconvolution_scores, deconvolve, pseudo_spots
from ._denoise import denoise
from ._domains import domain_scores, match_domains, spatial_domains
from ._embed import cluster, embed, integrate
from ._generate import check_generated, generate
from ._interactions import interactions, plot_interactions
from ._map_cells import holdout_gene_scores, map_cells
from ._perturb import perturbation_scores, predict_perturbation
from ._registry import method_names, methods
from ._rna_atac import rna_atac
from ._rna_protein import rna_protein
from ._transfer import transfer_labels
from ._velocity import plot_velocity, velocity, velocity_scores

__all__ = ["embed", "integrate", "cluster", "transfer_labels", "denoise", "generate", "check_generated",
           "compare", "scib_scores", "label_transfer_scores", "plot_comparison", "save_model", "load_model",
           "spatial_domains", "domain_scores", "match_domains", "deconvolve", "pseudo_spots", "deconvolution_scores", "map_cells",
           "holdout_gene_scores", "interactions", "plot_interactions", "rna_protein", "rna_atac", "bio_scores",
           "velocity", "velocity_scores", "plot_velocity", "methods", "method_names", "predict_perturbation",
           "perturbation_scores", "deconvolve_bulk", "pseudo_bulks", "bulk_scores"]

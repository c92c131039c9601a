"""Task functions, scanpy style: ``adata`` first, options keyword-only, results written into it.

One private module per task, each with its DL method(s) and classical baseline(s); ``METHODS``
lists what each task can run. The verbs in R call these through ``isthmus._r``.
"""

from ._compare import bio_scores, compare, label_transfer_scores, plot_comparison, scib_scores
from ._deconvolve import DECONVOLVE_METHODS, deconvolution_scores, deconvolve, pseudo_spots
from ._denoise import DENOISE_METHODS, denoise
from ._domains import DOMAIN_METHODS, domain_scores, spatial_domains
from ._embed import EMBED_METHODS, INTEGRATE_METHODS, cluster, embed, integrate
from ._generate import GENERATE_METHODS, check_generated, generate
from ._common import load_model, save_model
from ._interactions import INTERACTION_METHODS, interactions, plot_interactions
from ._map_cells import MAPPING_METHODS, holdout_gene_scores, map_cells
from ._rna_atac import RNA_ATAC_METHODS, rna_atac
from ._rna_protein import RNA_PROTEIN_METHODS, rna_protein
from ._transfer import TRANSFER_METHODS, transfer_labels
from ._velocity import VELOCITY_METHODS, plot_velocity, velocity, velocity_scores

METHODS = {
    "embed": EMBED_METHODS,
    "integrate": INTEGRATE_METHODS,
    "transfer_labels": TRANSFER_METHODS,
    "denoise": DENOISE_METHODS,
    "generate": GENERATE_METHODS,
    "spatial_domains": DOMAIN_METHODS,
    "deconvolve": DECONVOLVE_METHODS,
    "map_cells": MAPPING_METHODS,
    "interactions": INTERACTION_METHODS,
    "rna_protein": RNA_PROTEIN_METHODS,
    "rna_atac": RNA_ATAC_METHODS,
    "velocity": VELOCITY_METHODS,
}

__all__ = ["embed", "integrate", "cluster", "transfer_labels", "denoise", "generate", "check_generated",
           "compare", "scib_scores", "label_transfer_scores", "plot_comparison", "save_model", "load_model",
           "spatial_domains", "domain_scores", "deconvolve", "pseudo_spots", "deconvolution_scores", "map_cells",
           "holdout_gene_scores", "interactions", "plot_interactions", "rna_protein", "rna_atac", "bio_scores",
           "velocity", "velocity_scores", "plot_velocity", "METHODS"]

"""Mapping single cells onto spatial spots by gradient descent, after Tangram (Biancalani et al.,
Nature Methods 2021), written here from the method's description.

Each reference cell ``i`` has a learnable row of logits over the spots; their softmax ``M[i, :]``
is the probability that the cell lies in each spot. The spots' expression is predicted as
``M.T @ S`` (S: cells x training genes) and the logits are fitted so that, gene by gene, the
predicted spatial pattern matches the measured one (cosine similarity across spots; Tangram's
"cells" mode). Once fitted, any gene measured in the reference can be projected into space the same
way, which is how genes the spatial assay did not measure are imputed.

Optional terms of the loss, both off by default (as in Tangram's cells mode):

- ``spot_weight``: the same cosine taken spot by spot across genes (each spot's profile should
  look like the cells mapped onto it);
- ``density_weight``: a KL divergence between a prior share of cells per spot (e.g. proportional to
  the spot's counts) and the share the mapping puts there.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._base import SavableModule, train_full_batch


class CellMapper(SavableModule):
    """Cells x spots logits; ``mapping()`` is their softmax over spots (each row sums to 1)."""

    _not_saved = ("generator",)

    def __init__(self, n_cells: int, n_spots: int, *, generator: torch.Generator | None = None):
        super().__init__()
        self._record_init(locals())
        self.logits = nn.Parameter(torch.randn(n_cells, n_spots, generator=generator))

    def mapping(self) -> torch.Tensor:
        return torch.softmax(self.logits, dim=1)

    def forward(self, cells: torch.Tensor) -> torch.Tensor:
        """Predicted spot expression, spots x genes: the cells' profiles summed over where they map."""
        return self.mapping().T @ cells

    def loss(self, cells: torch.Tensor, spots: torch.Tensor, *, spot_weight: float = 0.0,
             density: torch.Tensor | None = None, density_weight: float = 0.0) -> tuple[torch.Tensor, dict]:
        """Minus the mean gene-wise cosine similarity (plus the optional terms); returns the loss and
        its parts as floats."""
        mapping = self.mapping()
        predicted = mapping.T @ cells
        gene_cosine = F.cosine_similarity(predicted, spots, dim=0).mean()
        loss = -gene_cosine
        terms = {"cosine": float(gene_cosine.detach())}
        if spot_weight:
            spot_cosine = F.cosine_similarity(predicted, spots, dim=1).mean()
            loss = loss - spot_weight * spot_cosine
            terms["spot_cosine"] = float(spot_cosine.detach())
        if density is not None and density_weight:
            share = mapping.sum(dim=0) / mapping.shape[0]
            kl = (density * (torch.log(density + 1e-12) - torch.log(share + 1e-12))).sum()
            loss = loss + density_weight * kl
            terms["density_kl"] = float(kl.detach())
        return loss, terms


def fit_cell_mapping(
    cells: np.ndarray,
    spots: np.ndarray,
    *,
    max_epochs: int = 1000,
    learning_rate: float = 0.1,
    spot_weight: float = 0.0,
    density: np.ndarray | None = None,
    density_weight: float = 0.0,
    random_state: int = 0,
    verbose: bool = True,
    label: str = "Tangram",
    device: str = "cpu",
) -> tuple[CellMapper, list[float]]:
    """Fit a :class:`CellMapper` with Adam on ``device`` (a torch device; full batch: every epoch sees all cells and spots).

    ``cells`` (cells x genes) and ``spots`` (spots x genes) hold the training genes in the same order,
    on the same (e.g. normalised) scale; ``density`` (spots,) is a prior share of cells per spot summing
    to 1, used when ``density_weight`` > 0. The logits start from N(0, 1) draws seeded by
    ``random_state`` (no global random state is touched). Prints one line about every tenth of the
    epochs unless ``verbose`` is False. Returns the module (``module.save(dir)`` keeps it) and the
    gene-wise cosine per epoch.
    """
    if cells.shape[1] != spots.shape[1]:
        raise ValueError(f"isthmus: cells have {cells.shape[1]} genes but spots {spots.shape[1]}; give the same genes.")
    max_epochs = int(max_epochs)
    if max_epochs < 1:
        raise ValueError("isthmus: max_epochs must be at least 1.")
    generator = torch.Generator().manual_seed(int(random_state))
    module = CellMapper(cells.shape[0], spots.shape[0], generator=generator)
    cells_t = torch.as_tensor(np.asarray(cells, dtype=np.float32), device=device)
    spots_t = torch.as_tensor(np.asarray(spots, dtype=np.float32), device=device)
    density_t = None if density is None else torch.as_tensor(np.asarray(density, dtype=np.float32), device=device)

    def loss_of():
        return module.loss(cells_t, spots_t, spot_weight=spot_weight, density=density_t,
                           density_weight=density_weight)

    history = train_full_batch(module, loss_of, max_epochs=max_epochs, learning_rate=float(learning_rate),
                               measure="cosine", digits=2, label=label, verbose=verbose,
                               device=device)
    return module.cpu(), history

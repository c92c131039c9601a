"""Our own PyTorch models, for the tasks where no maintained implementation exists: each an
``nn.Module`` that saves and loads (:class:`SavableModule`) plus a fitting function on the one shared
training loop (:func:`train_full_batch`); the task functions in :mod:`isthmus.tl` call them.

- :class:`GraphAttentionAutoencoder`: spatial domains (STAGATE design), ``fit_graph_autoencoder``.
- :class:`CellMapper`: Tangram-style probabilistic cell -> spot mapping, ``fit_cell_mapping``.
- :class:`ScadenEnsemble`: Scaden-style bulk deconvolution (three fully connected networks), ``fit_scaden``.
"""

from ._base import SavableModule, train_full_batch
from ._cell_mapping import CellMapper, fit_cell_mapping
from ._scaden import ScadenEnsemble, fit_scaden
from ._spatial_graph import GraphAttentionAutoencoder, fit_graph_autoencoder

__all__ = ["GraphAttentionAutoencoder", "fit_graph_autoencoder", "CellMapper", "fit_cell_mapping", "SavableModule",
           "train_full_batch", "ScadenEnsemble", "fit_scaden"]

"""Bulk deconvolution by an ensemble of fully connected networks, after Scaden (Menden et al.,
Science Advances 2020), written here in PyTorch from the paper's description (Scaden's own code is
TensorFlow 1).

Three networks of different sizes learn cell-type fractions from simulated bulk samples; their
softmax outputs are averaged. From the paper (Table S1):

- M256: hidden layers 256, 128, 64, 32; dropout 0, 0, 0, 0
- M512: hidden layers 512, 256, 128, 64; dropout 0, 0.3, 0.2, 0.1
- M1024: hidden layers 1024, 512, 256, 128; dropout 0, 0.6, 0.3, 0.1

ReLU activations, a softmax output, mean squared error on the fractions, Adam with learning rate
1e-4, batches of 128 samples, 5000 steps per network. Input: log2(x + 1) of each sample's counts,
then each sample min-max scaled to [0, 1] (Scaden's preprocessing, which makes bulk and simulated
samples comparable whatever their depth or normalisation).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .. import _progress
from ._base import SavableModule

# (hidden sizes, dropout rates) of Scaden's three networks
ARCHITECTURES = {
    "M256": ((256, 128, 64, 32), (0.0, 0.0, 0.0, 0.0)),
    "M512": ((512, 256, 128, 64), (0.0, 0.3, 0.2, 0.1)),
    "M1024": ((1024, 512, 256, 128), (0.0, 0.6, 0.3, 0.1)),
}


def scaden_input(values: np.ndarray) -> np.ndarray:
    """log2(x + 1), then each sample (row) min-max scaled to [0, 1] (a constant row becomes 0)."""
    logged = np.log2(np.asarray(values, dtype=np.float64) + 1.0)
    low, high = logged.min(axis=1, keepdims=True), logged.max(axis=1, keepdims=True)
    span = np.where(high > low, high - low, 1.0)
    return ((logged - low) / span).astype(np.float32)


def _network(n_genes: int, n_types: int, hidden, dropout) -> nn.Sequential:
    layers, width = [], n_genes
    for size, rate in zip(hidden, dropout):
        layers += [nn.Linear(width, size), nn.ReLU()]
        if rate:
            layers.append(nn.Dropout(rate))
        width = size
    layers.append(nn.Linear(width, n_types))
    return nn.Sequential(*layers)


class ScadenEnsemble(SavableModule):
    """Scaden's three networks; ``forward`` returns the mean of their softmax fractions."""

    def __init__(self, n_genes: int, n_types: int, architectures: tuple[str, ...] = tuple(ARCHITECTURES)):
        super().__init__()
        self._record_init(locals())
        self.architectures = list(architectures)
        self.networks = nn.ModuleList(_network(n_genes, n_types, *ARCHITECTURES[a]) for a in self.architectures)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.softmax(net(x), dim=1) for net in self.networks]).mean(dim=0)


def fit_scaden(module: ScadenEnsemble, x: np.ndarray, fractions: np.ndarray, *, max_steps: int = 5000,
               batch_size: int = 128, learning_rate: float = 1e-4, seed: int = 0, verbose: bool = True,
               device: str = "cpu") -> ScadenEnsemble:
    """Train each network on its own (Scaden trains them separately), ``max_steps`` mini-batches of
    ``batch_size`` simulated samples drawn at random, MSE on the fractions; history per network."""
    module.to(device)
    data = torch.as_tensor(x, dtype=torch.float32, device=device)
    target = torch.as_tensor(fractions, dtype=torch.float32, device=device)
    generator = torch.Generator().manual_seed(int(seed))
    n = data.shape[0]
    for name, network in zip(module.architectures, module.networks):
        optimiser = torch.optim.Adam(network.parameters(), lr=learning_rate)
        progress = _progress.EpochProgress(f"Scaden {name}", max_steps, verbose=verbose, unit="step")
        history = []
        network.train()
        for step in range(1, max_steps + 1):
            rows = torch.randint(0, n, (min(batch_size, n),), generator=generator).to(device)
            optimiser.zero_grad()
            loss = torch.mean((torch.softmax(network(data[rows]), dim=1) - target[rows]) ** 2)
            loss.backward()
            optimiser.step()
            history.append(float(loss.detach()))
            progress.update(step, name="MSE", value=history[-1], digits=5)
        network.eval()
        module.history_[name] = history
    module.eval()
    return module

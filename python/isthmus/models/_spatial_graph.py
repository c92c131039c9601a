"""A graph attention autoencoder on the spatial neighbour graph (the STAGATE design, Dong & Zhang,
Nat Commun 2022), written in plain PyTorch (no torch_geometric).

Why this member of the family: among the spatial-domain models, STAGATE and GraphST lead both
independent benchmarks on the DLPFC slices (Yuan et al., Nat Methods 2024; Hu et al., Genome
Biol 2024). STAGATE's objective is plain reconstruction, with no corrupted graphs or negative
samples to tune, and its attention lets a spot weigh down neighbours across a domain boundary.
GraphST's contrastive loss adds hyperparameters without a clear gain on these benchmarks. The
main complaint about both is run-to-run instability, which the task layer answers with a
consensus over seeds (isthmus.tl.spatial_domains).

Architecture (as STAGATE): encoder = attention layer (input -> 512, ELU) then linear (512 -> 30,
the embedding); decoder = the transposed weights, with the first layer's attention reused, so
the decoder has no parameters of its own. Self loops are part of the graph. Attention of an edge
j -> i is sigmoid(a_src . z_j + a_dst . z_i), normalised over i's neighbours by a softmax.
Weights start as STAGATE's (xavier-normal, gain 1.414: :data:`INITIALISATION`).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from ._base import SavableModule, train_full_batch, train_in_batches


class _EdgeWeightedSum(torch.autograd.Function):
    """out[i] = sum over edges j -> i of weight(j -> i) * values[j], with both gradients by hand:
    autograd's own routes either gather a row per edge and scatter it back (index_put, slow on the
    CPU) or form a dense n x n gradient for the sparse matrix. Here each backward is one sparse
    product and one per-edge dot product."""

    @staticmethod
    def forward(ctx, weights, values, source, target):
        n = values.shape[0]
        matrix = torch.sparse_coo_tensor(torch.stack([target, source]), weights, (n, n),
                                         check_invariants=False).coalesce()
        ctx.save_for_backward(values, source, target, matrix)
        return torch.sparse.mm(matrix, values)

    @staticmethod
    def backward(ctx, grad_out):
        values, source, target, matrix = ctx.saved_tensors
        # d out / d weight(j -> i) = grad_out[i] . values[j]: the product grad_out @ values.T,
        # computed only on the graph's edges
        pattern = torch.sparse_coo_tensor(matrix.indices(), torch.zeros_like(matrix.values()), matrix.shape,
                                          check_invariants=False)
        with warnings.catch_warnings():
            # "sparse CSR support is in beta": sampled_addmm exists only for CSR
            warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")
            sampled = torch.sparse.sampled_addmm(pattern.to_sparse_csr(), grad_out, values.T, beta=0.0)
        grad_weights = sampled.to_sparse_coo().coalesce().values()
        grad_values = torch.sparse.mm(matrix.t(), grad_out)
        return grad_weights, grad_values, None, None


# How the weights start. "stagate": as STAGATE's code (xavier-normal with gain 1.414, the weights
# and the attention vectors alike); "xavier_uniform": isthmus's first choice (xavier-uniform
# weights, gain 1; attention uniform(-0.1, 0.1)), kept for comparison. BENCHMARKS.md, issue 17,
# "STAGATE's loss scale and initialisation".
INITIALISATION = "stagate"


class GraphAttentionAutoencoder(SavableModule):
    def __init__(self, n_input: int, n_hidden: int = 512, n_latent: int = 30):
        super().__init__()
        self._record_init(locals())
        self.w_hidden = nn.Parameter(torch.empty(n_input, n_hidden))
        self.w_latent = nn.Parameter(torch.empty(n_hidden, n_latent))
        self.att_src = nn.Parameter(torch.empty(n_hidden))
        self.att_dst = nn.Parameter(torch.empty(n_hidden))
        if INITIALISATION == "stagate":
            for parameter in (self.w_hidden, self.w_latent, self.att_src, self.att_dst):
                # a vector as STAGATE's (1, heads, n_hidden) tensor: fan in and out both n_hidden
                nn.init.xavier_normal_(parameter if parameter.dim() > 1 else parameter.view(1, 1, -1), gain=1.414)
        else:
            for weight in (self.w_hidden, self.w_latent):
                nn.init.xavier_uniform_(weight)
            for vector in (self.att_src, self.att_dst):
                nn.init.uniform_(vector, -0.1, 0.1)

    @staticmethod
    def _softmax_by_target(scores: torch.Tensor, target: torch.Tensor, n: int) -> torch.Tensor:
        top = torch.full((n,), -torch.inf, dtype=scores.dtype, device=scores.device).scatter_reduce(0, target, scores.detach(), "amax")
        weights = torch.exp(scores - top[target])
        totals = torch.zeros(n, dtype=scores.dtype, device=scores.device).index_add(0, target, weights)
        return weights / totals[target]

    def attention(self, hidden: torch.Tensor, source, target) -> torch.Tensor:
        """One weight per edge. Scores are computed per node, then gathered per edge."""
        scores = torch.sigmoid((hidden @ self.att_src)[source] + (hidden @ self.att_dst)[target])
        return self._softmax_by_target(scores, target, hidden.shape[0])

    def forward(self, x: torch.Tensor, source: torch.Tensor, target: torch.Tensor):
        projected = x @ self.w_hidden
        attention = self.attention(projected, source, target)
        hidden = nn.functional.elu(_EdgeWeightedSum.apply(attention, projected, source, target))
        latent = hidden @ self.w_latent
        decoded = nn.functional.elu(_EdgeWeightedSum.apply(attention, latent @ self.w_latent.T, source, target))
        return latent, decoded @ self.w_hidden.T


def _edge_tensors(edges: np.ndarray, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Source and target per edge, ordered by (target, source): the order of a coalesced torch sparse
    matrix, which the hand-written backward relies on; duplicate edges merged."""
    from scipy import sparse

    graph = sparse.coo_matrix((np.ones(len(edges[0])), (edges[1], edges[0])), shape=(n, n))
    graph.sum_duplicates()
    return (torch.as_tensor(graph.col.astype(np.int64), device=device),
            torch.as_tensor(graph.row.astype(np.int64), device=device))


def spatial_tiles(xy: np.ndarray, spots_per_tile: int) -> list[np.ndarray]:
    """Spots split into about ``len(xy) / spots_per_tile`` tiles of neighbouring spots: strips of
    equal counts along x, each cut into equal counts along y (quantiles, so dense and sparse
    regions give tiles of the same size). Each tile's indices, sorted. One coordinate frame: the
    slices of a multi-slice run are tiled one by one (tl._domains._gat_tiles)."""
    n = len(xy)
    n_tiles = max(1, int(np.ceil(n / spots_per_tile)))
    n_strips = max(1, int(np.round(np.sqrt(n_tiles))))
    per_strip = int(np.ceil(n_tiles / n_strips))
    tiles = []
    for strip in np.array_split(np.argsort(xy[:, 0], kind="stable"), n_strips):
        for tile in np.array_split(strip[np.argsort(xy[strip, 1], kind="stable")], per_strip):
            if len(tile):
                tiles.append(np.sort(tile))
    return tiles


class _Subgraph:
    """The part of the graph one step sees: ``nodes`` (global indices; the first ``n_core`` are the
    tile's own), its features and the edges into the core nodes, renumbered."""

    def __init__(self, x: torch.Tensor, source: np.ndarray, target: np.ndarray, core: np.ndarray, *, halo: bool,
                 device):
        into_core = np.isin(target, core)
        src, tgt = source[into_core], target[into_core]
        if halo:  # the core's in-neighbours too: what the encoder's one hop reads (exact embedding)
            nodes = np.concatenate([core, np.setdiff1d(np.unique(src), core)])
        else:  # training: the tile alone, as STAGATE's subgraph batches
            keep = np.isin(src, core)
            src, tgt, nodes = src[keep], tgt[keep], core
        local = np.full(int(max(nodes.max(), tgt.max()) + 1), -1, dtype=np.int64)
        local[nodes] = np.arange(len(nodes))
        self.n_core = len(core)
        self.nodes = nodes
        self.x = x[torch.as_tensor(nodes, device=x.device)]
        self.source, self.target = _edge_tensors(np.vstack([local[src], local[tgt]]), len(nodes), device)


def fit_graph_autoencoder(
    features: np.ndarray,
    edges: np.ndarray,
    *,
    n_hidden: int = 512,
    n_latent: int = 30,
    max_epochs: int = 1000,
    learning_rate: float = 1e-3,
    weight_decay: float = 1e-4,
    gradient_clip: float = 5.0,
    loss_scale: float = 1.0,
    tiles: list[np.ndarray] | None = None,
    seed: int = 0,
    verbose: bool = True,
    label: str = "GAT",
    device: str = "cpu",
) -> tuple[np.ndarray, GraphAttentionAutoencoder]:
    """Train on ``features`` (spots x features) over ``edges`` ((2, m) source, target; self loops
    included by the caller); returns the embedding (spots x n_latent) and the trained model (its
    loss per epoch in ``model.history_["loss"]``; ``model.save(dir)`` keeps it). STAGATE's optimiser
    settings (Adam 1e-3, weight decay 1e-4, gradient norm clipped at 5, 1000 epochs).
    ``loss_scale`` multiplies the mean squared error (the weight decay and the clipping are not
    scaled with it): with ``features`` the leading components of G genes rather than the genes,
    components / G gives the MSE STAGATE takes over the genes, restricted to those components.

    ``tiles`` None: the whole graph each epoch (one step). Else the graph inside each tile, one at a
    time, with their gradients added up into the epoch's one step: the whole-graph step, but for
    the edges that cross tiles, in memory that follows the tile, not the slice. (One step per tile,
    as STAGATE's subgraph batches, scored ARI 0.41 instead of 0.58 on DLPFC 151673 with 4 tiles:
    each step pulled the model towards one region.)
    The embedding is then computed tile by tile with each tile's in-neighbours, which gives exactly
    the full-graph embedding of the trained model (the encoder looks one hop away).

    Deterministic on the CPU for a given seed; ``device`` is the torch device it trains on (the
    weights start on the CPU, so a seed starts the same on every device)."""
    torch.manual_seed(int(seed))
    x = torch.as_tensor(np.ascontiguousarray(features, dtype=np.float32), device=device)
    n = x.shape[0]
    model = GraphAttentionAutoencoder(x.shape[1], n_hidden, n_latent)
    if tiles is None:
        source, target = _edge_tensors(edges, n, device)

        def loss_of():
            _, reconstruction = model(x, source, target)
            loss = nn.functional.mse_loss(reconstruction, x) * loss_scale
            return loss, {"loss": float(loss.detach())}

        train_full_batch(model, loss_of, max_epochs=int(max_epochs), learning_rate=learning_rate,
                         weight_decay=weight_decay, gradient_clip=gradient_clip, measure="loss", digits=4,
                         label=label, verbose=verbose, device=device)
        with torch.no_grad():
            latent, _ = model(x, source, target)
        return latent.cpu().numpy().astype(np.float32), model.cpu()

    source_np, target_np = np.asarray(edges[0], dtype=np.int64), np.asarray(edges[1], dtype=np.int64)
    batches = [_Subgraph(x, source_np, target_np, tile, halo=False, device=device) for tile in tiles]

    def loss_of(batch):  # the tile's share of the whole slice's mean squared error
        _, reconstruction = model(batch.x, batch.source, batch.target)
        return nn.functional.mse_loss(reconstruction, batch.x, reduction="sum") * loss_scale / (n * x.shape[1])

    train_in_batches(model, batches, loss_of, max_epochs=int(max_epochs), learning_rate=learning_rate,
                     weight_decay=weight_decay, gradient_clip=gradient_clip, label=label, verbose=verbose,
                     device=device)
    latent = np.empty((n, n_latent), dtype=np.float32)
    with torch.no_grad():
        for tile in tiles:
            part = _Subgraph(x, source_np, target_np, tile, halo=True, device=device)
            z, _ = model(part.x, part.source, part.target)
            latent[part.nodes[:part.n_core]] = z[:part.n_core].cpu().numpy()
    return latent, model.cpu()

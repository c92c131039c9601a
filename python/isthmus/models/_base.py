"""What makes isthmus's own torch modules real models, as scvi-tools' are: the arguments they were
built with are recorded (scvi-tools' ``_get_init_params(locals())``), they train in one shared loop
with the one progress line, and they save to and load from a directory that ``tl.load_model``
recognises.

A saved directory holds ``model.pt`` (the weights) and ``isthmus_model.json`` (the class, its init
arguments, the training history and versions).
"""

from __future__ import annotations

import inspect
import json
import os
from typing import Any, Callable, Sequence

import torch
from torch import nn

from .. import _progress

SAVED_FILE = "isthmus_model.json"
WEIGHTS_FILE = "model.pt"
MODEL_CLASSES: dict[str, type] = {}


class SavableModule(nn.Module):
    """An ``nn.Module`` whose subclasses call ``self._record_init(locals())`` in ``__init__``; it
    can then be saved with :meth:`save` and rebuilt with :meth:`load`. Subclasses register
    themselves by name, so a directory names its class and needs no pickled code."""

    # init arguments that are not part of the model (a random generator for the first weights)
    _not_saved: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        MODEL_CLASSES[cls.__name__] = cls

    def _record_init(self, arguments: dict[str, Any]) -> None:
        names = inspect.signature(type(self).__init__).parameters
        self.init_params_ = {k: v for k, v in arguments.items()
                             if k in names and k not in ("self", "__class__", *self._not_saved)}
        self.history_: dict[str, list[float]] = {}

    def save(self, directory: str, overwrite: bool = True, **_ignored) -> str:
        """Weights and description into ``directory`` (the scvi-tools call shape, so the task runner
        saves every model the same way)."""
        os.makedirs(directory, exist_ok=True)
        weights = os.path.join(directory, WEIGHTS_FILE)
        if os.path.exists(weights) and not overwrite:
            raise ValueError(f"isthmus: {directory!r} already holds a model.")
        from ..tl._common import versions

        torch.save(self.state_dict(), weights)
        with open(os.path.join(directory, SAVED_FILE), "w") as handle:
            json.dump({"class": type(self).__name__, "init_params": self.init_params_, "history": self.history_,
                       "versions": versions()}, handle, indent=1)
        return directory

    @classmethod
    def load(cls, directory: str) -> "SavableModule":
        with open(os.path.join(directory, SAVED_FILE)) as handle:
            saved = json.load(handle)
        model_class = MODEL_CLASSES.get(saved["class"])
        if model_class is None:
            raise ValueError(f"isthmus: {directory!r} holds a {saved['class']}, which this isthmus does not know.")
        module = model_class(**saved["init_params"])
        module.load_state_dict(torch.load(os.path.join(directory, WEIGHTS_FILE), map_location="cpu"))
        module.history_ = saved.get("history", {})
        module.eval()
        return module


def is_saved_module(directory: str) -> bool:
    return os.path.isfile(os.path.join(directory, SAVED_FILE))


def train_full_batch(
    module: SavableModule,
    loss_of: Callable[[], tuple[torch.Tensor | None, dict[str, float]]],
    *,
    max_epochs: int,
    learning_rate: float,
    weight_decay: float = 0.0,
    gradient_clip: float | None = None,
    measure: str = "loss",
    digits: int = 4,
    label: str = "model",
    verbose: bool = True,
    device: str | torch.device = "cpu",
) -> list[float]:
    """Adam on the whole data each epoch (the own models' graphs and mappings are one batch):
    ``loss_of()`` returns the loss and named values (the loss None: it has put the gradients in
    place itself, as :func:`train_in_batches` does a batch at a time); ``measure`` is the one shown
    in the progress line and kept per epoch in ``module.history_``. Returns that history. The
    module is moved to ``device`` first (the data ``loss_of`` reads must be there too) and stays
    there."""
    module.to(device)
    optimiser = torch.optim.Adam(module.parameters(), lr=learning_rate, weight_decay=weight_decay)
    progress = _progress.EpochProgress(label, max_epochs, verbose=verbose)
    history: list[float] = []
    module.train()
    for epoch in range(1, max_epochs + 1):
        optimiser.zero_grad()
        loss, terms = loss_of()
        if loss is not None:
            loss.backward()
        if gradient_clip is not None:
            nn.utils.clip_grad_norm_(module.parameters(), gradient_clip)
        optimiser.step()
        history.append(terms[measure])
        progress.update(epoch, name=measure, value=history[-1], digits=digits)
    module.eval()
    module.history_[measure] = history
    return history


def train_in_batches(
    module: SavableModule,
    batches: Sequence[Any],
    loss_of: Callable[[Any], torch.Tensor],
    **options: Any,
) -> list[float]:
    """:func:`train_full_batch` over mini-batches that make up the whole data: each epoch adds up
    the gradients of ``loss_of(batch)`` over ``batches`` (each batch's share of the whole data's
    loss) before the one step, so an epoch is the whole-data
    step computed a batch at a time: memory follows the batch, the optimisation stays the whole
    data's. The loss kept per epoch in ``module.history_["loss"]`` is the sum; ``options`` as
    :func:`train_full_batch`'s."""

    def epoch_loss():
        total = 0.0
        for batch in batches:
            loss = loss_of(batch)
            loss.backward()  # the batch's graph is freed here; its gradient adds up
            total += float(loss.detach())
        return None, {"loss": total}

    return train_full_batch(module, epoch_loss, **options)

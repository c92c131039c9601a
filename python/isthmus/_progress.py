"""The one progress line every training loop in isthmus prints: scvi-tools models (through a
Lightning callback) and isthmus's own models (through :class:`EpochProgress` directly).

About one line per tenth of training, flushed at once: readable in the R console, a log or a
knitted page, unlike a carriage-return progress bar.
"""

from __future__ import annotations

import time


class EpochProgress:
    """``update(epoch, ...)`` prints ``isthmus <label>: epoch 30/300  ELBO 812.4  (4.2 s)`` at every
    tenth of ``total`` epochs and at the last one."""

    def __init__(self, label: str, total: int, *, verbose: bool = True, unit: str = "epoch"):
        self.label, self.total, self.verbose, self.unit = label, int(total), verbose, unit
        self.every = max(1, self.total // 10)
        self.started = time.perf_counter()

    def due(self, epoch: int) -> bool:
        return self.verbose and (epoch % self.every == 0 or epoch == self.total)

    def update(self, epoch: int, *, name: str | None = None, value: float | None = None, digits: int = 1) -> None:
        if not self.due(epoch):
            return
        measure = f"  {name} {value:.{digits}f}" if name is not None and value is not None else ""
        print(f"isthmus {self.label}: {self.unit} {epoch}/{self.total}{measure}"
              f"  ({time.perf_counter() - self.started:.1f} s)", flush=True)


def say(label: str, text: str, verbose: bool = True) -> None:
    """A one-off progress line in the same voice (``isthmus <label>: <text>``)."""
    if verbose:
        print(f"isthmus {label}: {text}", flush=True)


def lightning_callback(label: str):
    """The line above as a Lightning callback, for scvi-tools' ``model.train(callbacks=...)``."""
    from lightning.pytorch.callbacks import Callback

    class LightningEpochProgress(Callback):
        def on_train_start(self, trainer, pl_module):
            self.progress = EpochProgress(label, trainer.max_epochs)

        def on_train_epoch_end(self, trainer, pl_module):
            metrics = trainer.callback_metrics
            loss = metrics.get("elbo_train", metrics.get("train_loss_epoch"))
            self.progress.update(trainer.current_epoch + 1, name="ELBO" if loss is not None else None,
                                 value=None if loss is None else float(loss))

    return LightningEpochProgress()

"""The method registry: one plain-data entry per (task, method), the only list of what isthmus can
run. Task functions look their methods up here, the task runner (:mod:`._runner`) checks and
records by it, the contract test runs every entry, and R reads it (``isthmus_methods()``, each
verb's ``method`` choices).

An entry says what a method is, not how a task runs: the function that fits it, whether it is a
deep-learning method or a classical baseline, what it needs, the keys it writes (the key scheme of
STYLE.md, ``{key}`` standing for the task's ``key_added``), whether it saves a model and the R verb
that offers it. A method's own defaults (epochs, learning rate) stay in its task function's
signature and module, where its docstring explains them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

# What a method can need, in words R and Python users both read in isthmus_methods().
NEEDS = {
    "counts": "raw counts",
    "batch": "a batch column",
    "labels": "a cell-type column",
    "coordinates": "spatial coordinates",
    "reference": "an annotated single-cell reference",
    "protein": "protein counts of the same cells",
    "atac": "peak counts of the same cells",
    "spliced_unspliced": "spliced and unspliced counts",
    "model": "a trained scVI / scANVI model",
    "condition": "a condition column with control and perturbed cells",
    "bulk": "bulk RNA-seq samples (genes x samples)",
}


@dataclasses.dataclass(frozen=True)
class Method:
    task: str
    name: str
    fit: Callable[..., Any]
    # "dl" (a trained model), "baseline" (the classical route a DL method is measured against) or
    # "classical" (a task's own method where it has no DL one, e.g. the spatial interaction test)
    kind: str
    summary: str
    needs: tuple[str, ...] = ()
    # keys written, as "<slot>/<key>" with "{key}" for the task's key; a trailing "?" marks a key
    # written only for some inputs (e.g. cell types only when labels are given), a "*" one per
    # label or type of the data (e.g. one score column per cell type)
    writes: tuple[str, ...] = ()
    saves_model: bool = False
    # trains under Lightning's DDP on several devices (scvi-tools' SCVI, SCANVI, TOTALVI, MULTIVI;
    # DestVI's CondSCVI + DestVI pair is not marked: untested there); the others take one device
    multi_device: bool = False
    # options of its task that only some of the task's methods take, and this one does (spatial
    # domains' image_features: the graph model's input); the task refuses them for the others
    options: tuple[str, ...] = ()
    r_verb: str | None = None  # the R verb whose `method` offers it (None: Python only)

    def __post_init__(self):
        if self.kind not in ("dl", "baseline", "classical"):
            raise ValueError(f"isthmus: internal: kind of {self.task}/{self.name} must be dl, baseline or classical")
        unknown = [n for n in self.needs if n not in NEEDS]
        if unknown:
            raise ValueError(f"isthmus: internal: {self.task}/{self.name} needs unknown things {unknown}")

    def written_keys(self, fields: str | Mapping[str, str], *, optional: bool = True) -> list[str]:
        """The declared keys with the task's fields filled in (a plain string is ``{key}``)."""
        fields = {"key": fields} if isinstance(fields, str) else dict(fields)
        out = []
        for template in self.writes:
            if template.endswith("?") and not optional:
                continue
            out.append(template.rstrip("?").format(**fields))
        return out


REGISTRY: dict[tuple[str, str], Method] = {}


def register(method: Method) -> Method:
    if (method.task, method.name) in REGISTRY:
        raise ValueError(f"isthmus: internal: {method.task}/{method.name} is registered twice")
    REGISTRY[(method.task, method.name)] = method
    return method


def method_names(task: str) -> tuple[str, ...]:
    """The methods of ``task``, in registration order (the first is the task's default)."""
    return tuple(name for (t, name) in REGISTRY if t == task)


def methods_taking(task: str, option: str) -> tuple[str, ...]:
    """The methods of ``task`` that take ``option`` (one of the options only some of them take)."""
    return tuple(m.name for m in REGISTRY.values() if m.task == task and option in m.options)


def tasks() -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for (t, _) in REGISTRY))


def lookup(task: str, method: str) -> Method:
    from .. import _arguments

    if task not in tasks():
        raise ValueError(f"isthmus: unknown task {task!r}; tasks: {', '.join(tasks())}")
    entry = REGISTRY.get((task, method))
    if entry is None:
        raise ValueError(f"isthmus: unknown {_arguments.name('method')} {_arguments.value_text(method)} for {task}; "
                         f"available: {', '.join(method_names(task))}.")
    return entry


def methods(task: str | None = None):
    """Every registered method as a table: task, method, kind ("dl" / "baseline" / "classical"), needs, writes,
    saves_model, r_verb and a one-line summary. ``task`` keeps one task's rows."""
    import pandas as pd

    rows = [{"task": m.task, "method": m.name, "kind": m.kind, "needs": ", ".join(m.needs),
             "writes": ", ".join(m.writes), "saves_model": m.saves_model, "r_verb": m.r_verb or "",
             "summary": m.summary}
            for m in REGISTRY.values() if task is None or m.task == task]
    if task is not None and not rows:
        raise ValueError(f"isthmus: unknown task {task!r}; tasks: {', '.join(tasks())}")
    return pd.DataFrame(rows)

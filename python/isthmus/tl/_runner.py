"""The task runner: every task function hands its call to :func:`run`, which does, in one place,
what each task did for itself before:

1. looks the method up in the registry (one "unknown method" message for every task);
2. checks the arguments' types and ranges against the task function's signature, before any work,
   naming them as the caller types them (R users see ``seed.use``, Python users ``random_state``);
3. runs the task's own input checks, then times and fits the method (its own function, which seeds
   where its libraries draw random numbers);
4. saves the model where the method trains one;
5. writes the results and the record only once the fit succeeded, so a failed call leaves the
   user's object as it was; the record is built from the call's own arguments, model keyword
   arguments included (as scvi-tools' ``_get_init_params(locals())``), plus what the fit learnt;
6. puts back the global library settings a task changes, in its checks or its fit (scvi-tools'
   verbosity, Lightning's loggers, torch's thread count, the process's interrupt handler).

A method's function takes the call (:class:`Call`: every argument of the task function by name)
and returns a :class:`Fit`: what to write, the model to save, facts for the record and the task's
return value.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import inspect
import logging
import math
import numbers
import sys
import time
from typing import Any, Callable, Mapping

import numpy as np

from .. import _arguments
from . import _common
from ._registry import Method, lookup

# ---- the call and its result ----------------------------------------------------------------


class Call:
    """The arguments of one task call by name (``call.batch_key``); ``call.model_kwargs`` holds the
    keyword arguments the task passes on to the model (empty when it takes none)."""

    def __init__(self, arguments: Mapping[str, Any]):
        self.__dict__.update(arguments)
        self.__dict__.setdefault("model_kwargs", {})

    def get(self, name: str, default: Any = None) -> Any:
        return self.__dict__.get(name, default)


@dataclasses.dataclass
class Fit:
    """What a method's function returns; the runner writes it (and nothing is written before)."""

    value: Any = None  # what the task function returns
    model: Any = None  # a trained model the runner saves (methods that save their own set model_dir)
    model_dir: str | None = None
    record: dict = dataclasses.field(default_factory=dict)  # facts learnt: genes used, epochs run, ...
    record_top: dict = dataclasses.field(default_factory=dict)  # beside "params" in the record (a result table)
    with_record: Callable[[dict], None] | None = None  # called with the final record (a result that holds it)
    writes: list = dataclasses.field(default_factory=list)  # (container, slot, key, value, path)

    def put(self, container, slot: str, key: str, value, *, role: str | None = None) -> None:
        """Write ``value`` into ``container.<slot>[key]`` once the fit succeeded. ``role`` names the
        container in the written paths when it is not the task's own object (e.g. "mod/prot" for a
        MuData's protein modality)."""
        path = f"{role}/{slot}/{key}" if role else f"{slot}/{key}"
        self.writes.append((container, slot, key, value, path))

    @property
    def paths(self) -> list[str]:
        return [w[4] for w in self.writes]


@dataclasses.dataclass(frozen=True)
class Task:
    """How the runner treats one task: its public function (whose signature is validated), the key
    its results go under, and the checks every method of the task shares."""

    name: str
    function: Callable[..., Any]
    key: Callable[[Call, Method], str]  # the "{key}" of the registry's write templates
    record_at: Callable[[Call, Method, Fit], tuple[Any, str]]  # (container, uns key) of the record
    prepare: Callable[[Call, Method], None] | None = None  # checks and set-up all its methods share
    # arguments that are data, models or callables: validated by the task, not recorded
    not_recorded: tuple[str, ...] = ()


TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    TASKS[task.name] = task
    return task


# ---- argument checks --------------------------------------------------------------------------

# Ranges of the numeric arguments the tasks share, by name: (lowest, highest, lowest allowed?)
RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    **{name: (1, None, True) for name in (
        "max_epochs", "scanvi_epochs", "query_epochs", "reference_epochs", "n_latent", "n_comps", "n_neighbors",
        "n_seeds", "n_samples", "n_cells", "min_cells_per_type", "min_cells_per_label", "min_cells", "n_pcs",
        "n_jobs", "batch_size", "n_pseudobulks",
        "cells_per_pseudobulk", "max_steps", "n_hidden", "n_layers")},
    "n_top_genes": (2, None, True),
    **{name: (0, None, True) for name in ("n_perms", "min_pairs", "min_shared_counts")},
    "n_domains": (2, None, True),
    **{name: (0, None, False) for name in ("resolution", "learning_rate", "library_size")},
    **{name: (0, 1, True) for name in ("threshold", "expr_prop", "min_gene_overlap", "lambda_")},
}
_WHAT = {"int": "a whole number", "float": "a number", "bool": "TRUE or FALSE", "str": "a single string"}


def _simple_type(annotation: Any) -> tuple[str | None, bool]:
    """("int" / "float" / "bool" / "str" or None for anything else, None allowed?) from an
    annotation string such as "int | None"."""
    if not isinstance(annotation, str):
        annotation = getattr(annotation, "__name__", str(annotation))
    parts = [p.strip() for p in annotation.split("|")]
    allow_none = "None" in parts
    kinds = [p for p in parts if p != "None"]
    if len(kinds) == 1 and kinds[0] in _WHAT:
        return kinds[0], allow_none
    return None, allow_none


def _bool_text() -> str:
    return "TRUE or FALSE" if _arguments.in_r() else "True or False"


def check_argument(python_name: str, value: Any, kind: str, allow_none: bool) -> Any:
    """The value, converted (a whole 3.0 from R becomes 3), or a ValueError naming the argument as
    the caller types it."""
    shown = _arguments.name(python_name)
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"isthmus: {shown} must be {_WHAT[kind] if kind != 'bool' else _bool_text()}, "
                         f"not {_arguments.value_text(None)}.")
    if isinstance(value, (list, tuple, np.ndarray)):  # R's vectors arrive as lists or arrays
        items = list(np.asarray(value).ravel()) if isinstance(value, np.ndarray) else list(value)
        if len(items) != 1:
            raise ValueError(f"isthmus: {shown} must be a single value, not {len(items)} "
                             f"({_arguments.value_text([_plain(v) for v in items[:5]])}).")
        value = items[0]
    value = _plain(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"isthmus: {shown} must be {_bool_text()}; got {_arguments.value_text(value)}.")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError(f"isthmus: {shown} must be a single string; got {_arguments.value_text(value)}.")
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or isinstance(value, float) and math.isnan(value):
        raise ValueError(f"isthmus: {shown} must be {_WHAT[kind]}; got {_arguments.value_text(value)}.")
    if kind == "int":
        if not float(value).is_integer():
            raise ValueError(f"isthmus: {shown} must be a whole number; got {value}.")
        value = int(value)
    else:
        value = float(value)
    low, high, low_allowed = RANGES.get(python_name, (None, None, True))
    too_low = low is not None and (value < low or (value == low and not low_allowed))
    if too_low or (high is not None and value > high):
        if high is not None:
            allowed = f"between {low:g} and {high:g}"
        else:
            allowed = f"at least {low:g}" if low_allowed else f"greater than {low:g}"
        raise ValueError(f"isthmus: {shown} must be {allowed}; got {_arguments.value_text(value)}.")
    return value


def _plain(value):
    """NumPy scalars as Python numbers (R's numbers arrive as NumPy or Python floats)."""
    return value.item() if isinstance(value, np.generic) else value


def validate(function: Callable[..., Any], arguments: dict[str, Any]) -> dict[str, Any]:
    """Check every argument whose annotation is a plain int / float / bool / str (optionally None);
    returns the arguments with numbers converted. Other annotations are the task's to check."""
    signature = inspect.signature(function)
    out = dict(arguments)
    for name, parameter in signature.parameters.items():
        if name not in arguments or parameter.kind is inspect.Parameter.VAR_KEYWORD:
            continue
        kind, allow_none = _simple_type(parameter.annotation)
        if kind is not None:
            out[name] = check_argument(name, arguments[name], kind, allow_none)
        elif "Sequence[str]" in str(parameter.annotation) and isinstance(arguments[name], str):
            # one name where a list of names is asked for (R's length-1 vectors arrive as strings):
            # a list of one, not a string's letters
            out[name] = [arguments[name]]
    return out


# ---- global settings ----------------------------------------------------------------------------


@contextlib.contextmanager
def settings_kept():
    """Put back what a task changes process-wide: scvi-tools' verbosity, Lightning's log levels, the
    process's SIGINT handler (Lightning replaces R's) and torch's thread count (numba resets it when
    scanpy's or scVelo's parallel code starts). A library the task loads first keeps the settings it
    was loaded with."""
    loggers = {name: logging.getLogger(name).level
               for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning")}
    scvi = sys.modules.get("scvi")
    verbosity = scvi.settings.verbosity if scvi is not None else None
    try:
        with _common.torch_threads_kept(), _common.interrupt_handler_kept():
            yield
    finally:
        for name, level in loggers.items():
            logging.getLogger(name).setLevel(level)
        if verbosity is not None:
            scvi.settings.verbosity = verbosity


# ---- the record ---------------------------------------------------------------------------------


def _recordable(value: Any) -> Any:
    """A value as the record keeps it (.h5ad- and R-list-safe): None as "", tuples as lists, NumPy
    scalars as numbers; data frames and other objects by a short description."""
    import pandas as pd

    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_recordable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _recordable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray) and value.ndim == 1 and value.size <= 10_000:
        return [_recordable(v) for v in value.tolist()]
    if isinstance(value, pd.DataFrame):
        return f"a data frame of {value.shape[0]} rows"
    return type(value).__name__


def record_params(task: Task, arguments: Mapping[str, Any], facts: Mapping[str, Any]) -> dict[str, Any]:
    """The call's own arguments (model keyword arguments under "model_kwargs"), then what the fit
    learnt, which wins where both name the same thing (e.g. the epochs a model's default chose)."""
    skip = {"method", *task.not_recorded}
    params = {k: _recordable(v) for k, v in arguments.items() if k not in skip and k != "model_kwargs"}
    if arguments.get("model_kwargs"):
        params["model_kwargs"] = _recordable(dict(arguments["model_kwargs"]))
    params.update({k: _recordable(v) for k, v in facts.items()})
    return params


# ---- running a task -----------------------------------------------------------------------------


def _write(fit: Fit) -> None:
    for container, slot, key, value, _ in fit.writes:
        getattr(container, slot)[key] = value


class Written:
    """What the outermost task run inside :func:`collecting` wrote: ``entries`` maps each written
    path ("obsm/X_scvi", "mod/prot/layers/denoised", "uns/scvi") to its value, ``record`` is the
    record. The R bridge returns these as its one result shape."""

    def __init__(self):
        self.entries: dict[str, Any] = {}
        self.record: dict[str, Any] | None = None


_collectors: list[Written] = []
_depth = 0  # tasks run by other tasks (CompareMethods fits several) are not collected


@contextlib.contextmanager
def collecting():
    written = Written()
    _collectors.append(written)
    try:
        yield written
    finally:
        _collectors.pop()


def run(task_name: str, arguments: Mapping[str, Any]):
    """Run one call of a task function; ``arguments`` is its ``locals()`` at entry."""
    global _depth
    _depth += 1
    try:
        return _run(task_name, arguments, outermost=_depth == 1)
    finally:
        _depth -= 1


def _device_of(call: Call) -> _common.Device:
    """Where the call's models run: its ``accelerator`` / ``devices`` / ``batch_size`` resolved once,
    before any work ("auto": the GPU when torch sees one), for every model the call trains or loads.
    A task without these arguments runs where its caller's models run (the CPU at the top level)."""
    if call.get("accelerator") is None:
        return _common.current_device()
    return _common.resolve_device(call.accelerator, call.get("devices", "auto"), call.get("batch_size"),
                                  call.get("strategy", "auto"))


def _run(task_name: str, arguments: Mapping[str, Any], outermost: bool):
    task = TASKS[task_name]
    arguments = dict(arguments)
    model_kwargs = arguments.pop("model_kwargs", None) or {}
    entry = lookup(task_name, arguments["method"])
    arguments = validate(task.function, arguments)
    call = Call({**arguments, "model_kwargs": model_kwargs})
    device = _device_of(call)
    if entry.kind == "dl":  # the baselines run on the CPU, whatever the devices
        _common.check_several_devices(device, f"{task_name} method {entry.name!r}", entry.multi_device)
    # the shared checks too: some seed, or run numba (scanpy), before the fit
    with settings_kept(), _common.using_device(device):
        if task.prepare is not None:
            task.prepare(call, entry)
        started = time.perf_counter()
        try:
            fit = entry.fit(call)
        except SystemExit as stopped:
            # Lightning answers Esc / Ctrl-C by cleaning up and calling sys.exit(1): to the caller
            # (an R session, a notebook) that is an interrupt, not a request to end the process
            raise KeyboardInterrupt("isthmus: training interrupted") from stopped
        seconds = time.perf_counter() - started
        if "accelerator" in arguments:  # the device actually used (the baselines' is the CPU)
            fit.record.setdefault("device", device.name if entry.kind == "dl" else "cpu")
        model_dir = fit.model_dir
        if fit.model is not None and entry.saves_model:
            model_dir = _common.save_model(fit.model, _common.model_directory(call.get("model_dir"), entry.name))
    container, record_key = task.record_at(call, entry, fit)
    params = record_params(task, {**arguments, "model_kwargs": model_kwargs}, fit.record)
    record = {**_common.record(entry.name, params, seconds=seconds, model_dir=model_dir), **fit.record_top}
    fit.put(container, "uns", record_key, record)
    declared = [*entry.written_keys(task.key(call, entry)), f"uns/{record_key}"]
    undeclared = [p for p in fit.paths if not any(fnmatch.fnmatchcase(p, d) for d in declared)]
    if undeclared:  # the registry is the contract: a method may not write what its entry does not list
        raise RuntimeError(f"isthmus: internal: {task_name}/{entry.name} wrote undeclared keys {undeclared}")
    _write(fit)
    if fit.with_record is not None:
        fit.with_record(record)
    if outermost and _collectors:
        _collectors[-1].entries.update({path: value for _, _, _, value, path in fit.writes})
        _collectors[-1].record = record
    return fit.value

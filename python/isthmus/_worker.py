"""A task in its own Python process, for R: ``python -m isthmus._worker <job folder>``.

Why: a model that crashes (a CUDA error, a segfault in a native library) or is killed for memory
takes only this process down, not the user's R session with its objects; and R can stop it at
once on an interrupt. The R side (R/worker.R) writes the job with :func:`write_job`, starts this
module, streams its output lines to the console, and reads the result back with
:func:`read_result`.

A job folder holds ``job.pkl`` (task, argument names for messages, keyword arguments, options and
the data items, each AnnData saved as an .h5ad beside it, a backed one named by its file) and, when the task has run,
``result.pkl`` (what ``_r.call("run", ...)`` returns: the one result shape and isthmus's warnings)
or ``error.pkl`` (the exception's type and message).
"""

from __future__ import annotations

import os
import pickle
import sys
import tempfile
from typing import Any, Mapping


def _save_item(item, folder: str, name: str):
    """A data item with each AnnData replaced by the path of its .h5ad (dicts of AnnDatas too)."""
    import anndata as ad

    if isinstance(item, ad.AnnData) and item.isbacked:  # counts on disk stay where they are
        return {".backed": item.filename, ".obs": item.obs}
    if isinstance(item, ad.AnnData):
        path = os.path.join(folder, f"{name}.h5ad")
        item.write_h5ad(path)
        return {".h5ad": path}
    if isinstance(item, Mapping):
        return {key: _save_item(value, folder, f"{name}_{key}") for key, value in item.items()}
    return item


def _load_item(item):
    import anndata as ad

    if isinstance(item, Mapping) and ".h5ad" in item:
        return ad.read_h5ad(item[".h5ad"])
    if isinstance(item, Mapping) and ".backed" in item:
        adata = ad.read_h5ad(item[".backed"], backed="r")
        adata.obs = item[".obs"]
        return adata
    if isinstance(item, Mapping):
        return {key: _load_item(value) for key, value in item.items()}
    return item


def write_job(task: str, data: list, kwargs: Mapping[str, Any], options: Mapping[str, Any] | None,
              argument_names: Mapping[str, str] | None, folder: str | None = None) -> str:
    """Save one task call into a new job folder (returned)."""
    folder = folder or tempfile.mkdtemp(prefix="isthmus-job-")
    items = [_save_item(item, folder, f"data{i}") for i, item in enumerate(data)]
    job = {"task": task, "data": items, "kwargs": dict(kwargs or {}), "options": dict(options or {}),
           "argument_names": dict(argument_names or {})}
    with open(os.path.join(folder, "job.pkl"), "wb") as handle:
        pickle.dump(job, handle)
    return folder


def read_result(folder: str) -> dict[str, Any]:
    """The worker's result ({"value": the one result shape, "warnings": [...]}); its error raised
    again here, with the same type and message; or an error saying it died without a word."""
    result, error = os.path.join(folder, "result.pkl"), os.path.join(folder, "error.pkl")
    if os.path.exists(result):
        with open(result, "rb") as handle:
            return pickle.load(handle)
    if os.path.exists(error):
        with open(error, "rb") as handle:
            kind, message = pickle.load(handle)
        raise (kind if isinstance(kind, type) and issubclass(kind, Exception) else RuntimeError)(message)
    raise RuntimeError("isthmus: the worker process ended without a result.")


def _injected_fault() -> None:
    """ISTHMUS_WORKER_FAULT (tests only): "exit" ends the process without a result, "segv" crashes
    it as a native library would, "sleep" makes it hang until killed; with the pid written to
    ``fault.pid`` in the job folder, so a test can see the process is gone."""
    fault = os.environ.get("ISTHMUS_WORKER_FAULT", "")
    if fault == "exit":
        os._exit(3)
    if fault == "segv":
        import ctypes

        ctypes.string_at(0)
    if fault == "sleep":
        import time

        print("isthmus worker: sleeping until killed", flush=True)
        time.sleep(600)


def _without_models(value):
    """A trained model does not cross back (the R verbs read it from its saved directory, and a
    model that trained under DDP holds locks that cannot be pickled)."""
    if type(value).__module__.split(".")[0] in ("scvi", "torch", "isthmus"):
        return None
    return value


def main(folder: str) -> int:
    from . import _r
    from .tl import _common

    # With several devices, Lightning's DDP starts this module again once per further device (rank);
    # those ranks train beside the first but stay silent and leave the job folder to it.
    first_rank = _common.is_rank_zero()
    if first_rank:
        with open(os.path.join(folder, "worker.pid"), "w") as handle:
            handle.write(str(os.getpid()))
    else:
        sys.stdout = open(os.devnull, "w")
    _injected_fault()
    with open(os.path.join(folder, "job.pkl"), "rb") as handle:
        job = pickle.load(handle)
    data = [_load_item(item) for item in job["data"]]
    try:
        out = _r.call("run", job["task"], data, job["kwargs"], job["options"],
                      argument_names=job["argument_names"])
        if not first_rank:
            return 0
        out = {**out, "value": {**out["value"], "value": _without_models(out["value"].get("value"))}}
    except Exception as error:  # the R session raises it again (read_result)
        if not first_rank:
            raise
        with open(os.path.join(folder, "error.pkl"), "wb") as handle:
            try:
                pickle.dump((type(error), str(error)), handle)
            except Exception:  # an exception type that cannot be pickled: its text is enough
                pickle.dump((RuntimeError, f"{type(error).__name__}: {error}"), handle)
        return 1
    with open(os.path.join(folder, "result.pkl"), "wb") as handle:
        pickle.dump(out, handle)
    return 0


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # progress lines reach R as they are printed
    sys.exit(main(sys.argv[1]))

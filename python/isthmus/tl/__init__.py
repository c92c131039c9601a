"""Task functions, scanpy style: ``adata`` first, options keyword-only, results written into it.

One private module per task; ``METHODS`` lists what each task can run.
"""

from ._embed import embed

METHODS = {"embed": {"scvi": embed}}

__all__ = ["embed", "METHODS"]

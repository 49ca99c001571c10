"""Numpy-only scoring of a ``TabularModel``: compile once, score anywhere without the ML stack.

``compile_model`` turns the encoder and every member into plain arrays (flat tree nodes, leaf
values, linear coefficients, link functions); ``save``/``load`` move them through
``fastpath.json`` + ``arrays.npz``; ``CompiledModel`` scores records with numpy alone;
``verify`` checks it against the native model before it is served.

Modules, in the order a record meets them: ``encoder`` (record values to the float64 matrix,
shared with ``TabularModel``), ``forest`` (every tree member in one descent, over the flat
arrays of ``trees``), the family modules ``lightgbm``, ``xgboost`` and ``sklearn`` (compile
the native model, reproduce its numeric conventions on the leaves), ``model`` (the compiled
model and ``compile_model``), ``io`` and ``verify``.

Loading and scoring import nothing beyond numpy and the standard library.
"""

from lib.local.fastpath.encoder import CATEGORICAL, NUMERIC, RecordEncoder, is_missing
from lib.local.fastpath.io import ARRAYS_FILE, FORMAT, FORMAT_VERSION, META_FILE, load, save
from lib.local.fastpath.model import CompiledModel, compile_model
from lib.local.fastpath.trees import NotCompilable
from lib.local.fastpath.verify import PROB_TOLERANCE, verify

__all__ = [
    "ARRAYS_FILE",
    "CATEGORICAL",
    "FORMAT",
    "FORMAT_VERSION",
    "META_FILE",
    "NUMERIC",
    "PROB_TOLERANCE",
    "CompiledModel",
    "NotCompilable",
    "RecordEncoder",
    "compile_model",
    "is_missing",
    "load",
    "save",
    "verify",
]

"""Compiled models on disk: ``fastpath.json`` (metadata) + ``arrays.npz``, replaced atomically.

Loading imports nothing beyond numpy and the standard library.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from lib.local.fastpath.model import CompiledModel

FORMAT = "opsdeck-fastpath"
FORMAT_VERSION = 1
META_FILE = "fastpath.json"
ARRAYS_FILE = "arrays.npz"


def save(compiled: CompiledModel, directory: str | os.PathLike[str]) -> Path:
    """Write ``fastpath.json`` + ``arrays.npz`` into ``directory``, replacing it atomically."""
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "task": compiled.task,
        "classes": compiled.classes_,
        "threshold": compiled.threshold,
        "positive_label": compiled.positive_label,
        "feature_spec": compiled.feature_spec,
        "members": compiled.members,
        "ignored_inputs": list(compiled.ignored_inputs),
    }
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        with open(tmp / ARRAYS_FILE, "wb") as fh:
            np.savez(fh, **compiled.arrays)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def load(directory: str | os.PathLike[str]) -> CompiledModel:
    """Read a compiled model; imports nothing beyond numpy and the standard library."""
    path = Path(directory)
    meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path / META_FILE} is not a {FORMAT} v{FORMAT_VERSION} file")
    with np.load(path / ARRAYS_FILE, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return CompiledModel(
        task=meta["task"],
        feature_spec=meta["feature_spec"],
        classes=meta["classes"],
        threshold=meta["threshold"],
        positive_label=meta["positive_label"],
        members=meta["members"],
        arrays=arrays,
        ignored_inputs=meta.get("ignored_inputs", []),
    )

"""Small helpers shared by pages: the cached workspace and display formatting."""

from __future__ import annotations

import gc
import importlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from lib.backend import open_workspace
from lib.settings import load_settings
from lib.workspace import Workspace


@st.cache_resource(show_spinner=False)
def _open_workspace(home: str, backend: str) -> Workspace:
    ws = open_workspace(load_settings())
    # What is loaded by now (libraries, the workspace) lives as long as the process: keep the
    # garbage collector from walking it again on every full collection.
    gc.collect()
    gc.freeze()
    return ws


def _run_through_navigation() -> None:
    """Rerun through app.py when Streamlit ran a page file on its own."""
    from streamlit.runtime.pages_manager import PagesManager

    # With a `pages/` folder beside the main script, Streamlit starts in its legacy multipage
    # mode until a run calls st.navigation: a deep link as the first request after a start
    # runs the page file alone (raw file names, no groups, no page config). Leaving that mode
    # and rerunning executes app.py, whose navigation maps the same URL path to the same page.
    # Once per session: AppTest re-enters the legacy mode on every run, and a rerun would
    # drop the widget event that started the run.
    if PagesManager.uses_pages_directory and not st.session_state.get("_ui_navigation_checked"):
        st.session_state["_ui_navigation_checked"] = True
        PagesManager.uses_pages_directory = False
        st.rerun()


def workspace() -> Workspace:
    """The workspace for the current settings (one per home folder and backend)."""
    _run_through_navigation()
    settings = load_settings()
    return _open_workspace(str(settings.home), settings.backend)


@st.cache_resource(max_entries=256, ttl=600, show_spinner=False)
def _built_figure(module: str, name: str, args: tuple, kwargs: dict) -> go.Figure:
    # By name: Streamlit hashes arguments by value and a function has none.
    return getattr(importlib.import_module(module), name)(*args, **kwargs)


def figure(build: Callable[..., go.Figure], *args: Any, **kwargs: Any) -> go.Figure:
    """`build(*args, **kwargs)`, built once per distinct input and shared by every session.

    Plotly validates every property as a figure is built (0.1-0.2 s for a page of charts, more
    than the queries behind them); a page shown again on unchanged data reuses its figures.
    Arguments are hashed by value (DataFrames by content); the figure is never modified after.
    """
    return _built_figure(build.__module__, build.__qualname__, args, kwargs)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def ago(when: datetime | None) -> str:
    """'3 min ago' style relative time."""
    if when is None:
        return ""
    seconds = (datetime.now(UTC) - when).total_seconds()
    if seconds < 60:
        return f"{int(seconds)} s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} d ago"


# One look per state: a spinner-free icon, so a finished step never shows next to "Running".
_STATE_LOOK = {
    "NotStarted": ("gray", "radio_button_unchecked"),
    "Queued": ("gray", "schedule"),
    "Running": ("blue", "progress_activity"),
    "Finalizing": ("blue", "progress_activity"),
    "CancelRequested": ("orange", "cancel"),
    "Completed": ("green", "check_circle"),
    "Failed": ("red", "error"),
    "Canceled": ("orange", "cancel"),
}


def state_label(state: str) -> str:
    """Markdown for a run's state: its own colored icon, then the state's name."""
    color, icon = _STATE_LOOK.get(state, ("gray", "help"))
    return f":{color}[:material/{icon}:] {state}"


_KEPT = "_kept_form_values"
_SAID = "_said_after_rerun"


def say_after_rerun(message: str) -> None:
    """A success message for the next run (a toast or message before ``st.rerun`` is lost)."""
    st.session_state[_SAID] = message


def show_said() -> None:
    """The message ``say_after_rerun`` left, once."""
    message = st.session_state.pop(_SAID, None)
    if message:
        st.success(message, icon=":material/check_circle:")


def remember(key: str, default: Any, options: list | tuple | None = None) -> None:
    """Give the widget ``key`` (created next, without a ``value`` or ``index`` of its own) the
    value it had when the operator last left the page, else ``default``.

    Streamlit forgets a widget's value once a run does not draw it: a form half filled in was
    back to its defaults after a look at another page. A value no longer among ``options`` (a
    deleted dataset) gives way to ``default``.
    """
    kept: dict[str, Any] = st.session_state.setdefault(_KEPT, {})
    if key in st.session_state:
        kept[key] = st.session_state[key]
        return
    value = kept.get(key, default)
    if options is not None and value not in options:
        value = default
    st.session_state[key] = value


def preview_columns(frame: Any) -> dict[str, Any]:
    """Column formats of a data preview: dates with no time of day read as dates
    (2023-11-09, not 2023-11-09 00:00:00)."""
    import pandas as pd

    out: dict[str, Any] = {}
    for name in frame.columns:
        col = frame[name]
        if not pd.api.types.is_datetime64_any_dtype(col):
            continue
        values = col.dropna()
        if len(values) and (values == values.dt.normalize()).all():
            out[str(name)] = st.column_config.DateColumn(format="YYYY-MM-DD")
    return out

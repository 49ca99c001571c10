"""Score: a form generated from the model's input schema, raw JSON, and batch CSV scoring."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from lib.metrics import REGRESSION, task_of
from lib.scoring import (
    FORM_FIELDS_MAX,
    LABELS_ONLY,
    BatchScoringError,
    ScoringError,
    build_payload,
    date_help,
    decimals_format,
    number_help,
    post_json,
    prediction_text,
    request_for,
    score,
    score_frame,
)
from lib.tabular import TableError, parse_table
from lib.ui import workspace
from lib.workspace import WorkspaceError

NO_VALUE = "(no value)"
# Rows of a batch file set aside, each costing its request once more, before the batch stops.
REFUSED_ROWS_MAX = 100
# Why an endpoint cannot be scored, and what to do about it, by state.
NOT_LIVE = {
    "Stopped": "stopped — restart it on the Endpoints page",
    "Creating": "starting — it can be scored once it is Succeeded",
    "Failed": "failed — its server log on the Endpoints page says why; restart or redeploy it",
    "Unhealthy": "not answering — restart it on the Endpoints page",
}

ws = workspace()
st.title("Score")
if ws.endpoints is None or ws.models is None:
    st.info("This workspace has no endpoint service.")
    st.stop()

listing = ws.endpoints.list()
live = [e for e in listing if e.state == "Succeeded"]
if not live:
    if not listing:
        st.info("No endpoint yet: deploy a model on the Endpoints page.")
    for e in listing:
        st.info(f"Endpoint **{e.name}** is {NOT_LIVE.get(e.state, e.state.lower())}.")
    st.page_link("pages/endpoints.py", label="Endpoints", icon=":material/rocket_launch:")
    st.stop()

names = [e.name for e in live]
name = st.selectbox("Endpoint", names, key="score_endpoint")
ep = live[names.index(name)]
key = ws.endpoints.keys(ep.name)[0]
try:
    spec = ws.models.feature_spec(ep.model_name, ep.model_version)
    model = ws.models.get(ep.model_name, ep.model_version)
except WorkspaceError as exc:
    st.error(str(exc))
    st.stop()
st.caption(f"{ep.model_name} v{ep.model_version} · {ep.scoring_uri}")
# The body the endpoint's deployment accepts, with probabilities only where it can return them.
shape, method = request_for(ep.request_shape, ep.probabilities)
if not ep.probabilities and task_of(model.metrics) != REGRESSION:
    st.caption(LABELS_ONLY)  # a regression model has no classes to give probabilities of


def show_result(result, records: list[dict]) -> None:  # noqa: ANN001
    """Predicted label(s) and, for one row, each class's probability as a number and a bar."""
    c1, c2 = st.columns([1, 3])
    label = result.predictions[0] if result.predictions else None
    c1.metric("Prediction", prediction_text(label), border=True)
    c1.caption(f"HTTP {result.status_code} · {result.latency_ms:.1f} ms")
    if result.probabilities and result.classes:
        probs = pd.DataFrame(
            {"class": [str(c) for c in result.classes], "probability": result.probabilities[0]}
        ).sort_values("probability", ascending=False)
        c2.dataframe(
            probs,
            hide_index=True,
            key="score_probabilities",
            column_config={
                "probability": st.column_config.ProgressColumn(
                    "probability", format="%.4f", min_value=0.0, max_value=1.0
                )
            },
        )


# The form and the JSON body are the model's: another endpoint or version starts them afresh
# (the JSON tab kept the first model's row, which the next endpoint refused).
scored = [ep.name, ep.model_name, ep.model_version]
if st.session_state.get("score_for") != scored:
    for field in [k for k in st.session_state if str(k).startswith(("score_f_", "score_json"))]:
        del st.session_state[field]
    st.session_state["score_for"] = scored

tab_form, tab_json, tab_batch = st.tabs(["Form", "JSON", "Batch CSV"])
with tab_form:
    if len(spec) > FORM_FIELDS_MAX:
        st.caption(
            f"The model reads {len(spec):,} columns: the form shows the first "
            f"{FORM_FIELDS_MAX}; the others are sent as the example row has them (the JSON and "
            "Batch CSV tabs send any value)."
        )
    with st.form("score_form"):
        # A wide model's other columns, as the example row has them.
        record: dict = {c["name"]: c.get("example") for c in spec[FORM_FIELDS_MAX:]}
        cols = st.columns(3)
        for i, col in enumerate(spec[:FORM_FIELDS_MAX]):
            box = cols[i % 3]
            label = col["name"]
            example = col.get("example")
            if col.get("kind") == "categorical" and col.get("categories"):
                options = [str(c) for c in col["categories"]]
                idx = options.index(str(example)) if str(example) in options else 0
                # The last choice sends no value, as a blank cell of a file does.
                record[label] = box.selectbox(
                    label,
                    [*options, None],
                    index=idx,
                    key=f"score_f_{label}",
                    format_func=lambda v: NO_VALUE if v is None else v,
                )
            elif str(col.get("dtype", "")).startswith("bool"):
                choices = [True, False, None]
                record[label] = box.selectbox(
                    label,
                    choices,
                    index=choices.index(example) if example in choices else 0,
                    key=f"score_f_{label}",
                    format_func=lambda v: NO_VALUE if v is None else str(v),
                )
            elif col.get("kind") == "datetime":
                text = example if example is not None else ""
                record[label] = box.text_input(
                    label,
                    str(text),
                    help=date_help(col.get("format")),
                    key=f"score_f_{label}",
                )
            elif col.get("kind") == "categorical":
                # Text known only by its signature type: a free text field, never a number box.
                text = example if example is not None else ""
                record[label] = box.text_input(label, str(text), key=f"score_f_{label}")
            else:
                lo, hi = col.get("min"), col.get("max")
                value = float(example) if example is not None else float(lo or 0.0)
                integer = str(col.get("dtype", "")).startswith("int")
                field = f"score_f_{label}"
                # Seeded with the example through the session rather than `value`, so that
                # the box may be cleared: an empty box sends no value.
                if field not in st.session_state:
                    st.session_state[field] = int(value) if integer else value
                record[label] = box.number_input(
                    label,
                    value=None,
                    help="; ".join(filter(None, [number_help(col), "empty: no value"])),
                    key=field,
                    step=1 if integer else None,
                    placeholder=NO_VALUE,
                    # Streamlit shows two decimals by default: 92.893 read 92.89 on the form.
                    format=None if integer else decimals_format(value),
                )
        submitted = st.form_submit_button("Score", type="primary")
    if submitted:
        try:
            result = score(ep.scoring_uri, key, [record], shape=shape, method=method)
        except ScoringError as exc:
            st.error(exc.message)
        else:
            show_result(result, [record])
            with st.expander("Request and response"):
                st.json(build_payload([record], shape, method))
                st.json(result.raw)
with tab_json:
    example = {c["name"]: c.get("example") for c in spec}
    text = st.text_area(
        "Request body",
        json.dumps(build_payload([example], shape, method), indent=2),
        height=260,
        key="score_json",
    )
    if st.button("Send", key="score_send"):
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            st.error(f"Not valid JSON: {exc}")
        else:
            try:
                resp = post_json(ep.scoring_uri, key, body)
            except ScoringError as exc:
                st.error(exc.message)
            else:
                (st.success if resp.ok else st.error)(
                    f"HTTP {resp.status_code} · {resp.latency_ms:.1f} ms"
                )
                if resp.body is not None:
                    st.json(resp.body)
                else:
                    st.code(resp.text, language=None)
with tab_batch:
    limits = ws.settings.limits
    upload_mb = min(limits.max_upload_mb, int(st.get_option("server.maxUploadSize")))
    upload = st.file_uploader(
        f"A file with the model's input columns, in any form the Datasets page reads (CSV, "
        f"Parquet, JSON, a spreadsheet, compressed …), up to {upload_mb} MB",
        key="score_batch_file",
        max_upload_size=upload_mb,
    )
    c1, c2 = st.columns(2)
    chunk = c1.number_input("Rows per request", 1, 10_000, 1000, key="score_batch_chunk")
    skip = c2.toggle(
        f"Score the other rows when some are refused (up to {REFUSED_ROWS_MAX})",
        value=True,
        key="score_batch_skip",
        help="A row the endpoint refuses (a value it cannot read) is set aside with its reason "
        "in an `error` column, and the rest of its request sent again. Off: the first refused "
        "row stops the batch.",
    )
    if upload is not None and st.button("Score file", key="score_batch_go"):
        try:
            # Columns the model learnt as text are read as written ("22" stays "22"), and so
            # are dates in the training file's own form: the endpoint reads 01/11/2021 as that
            # file did (1 November), where guessing from this file alone may say 11 January.
            text_columns = [
                c["name"]
                for c in spec
                if c.get("kind") == "categorical"
                or (c.get("kind") == "datetime" and c.get("format"))
            ]
            frame = parse_table(
                upload.name, upload.getvalue(), limits=limits, text_columns=text_columns
            ).frame
        except TableError as exc:
            st.error(str(exc))
        else:
            wanted = [c["name"] for c in spec]
            missing = [c for c in wanted if c not in frame.columns]
            if missing:
                st.error(f"The file lacks column(s): {', '.join(missing)}.")
            else:
                bar = st.progress(0.0, text="Scoring …")

                def advance(done: int, total: int) -> None:
                    bar.progress(done / total, text=f"{done:,} / {total:,} rows")

                try:
                    scored = score_frame(
                        ep.scoring_uri,
                        key,
                        frame[wanted],
                        chunk_size=int(chunk),
                        method=method,
                        shape=shape,
                        progress=advance,
                        skip_refused=REFUSED_ROWS_MAX if skip else 0,
                    )
                except BatchScoringError as exc:
                    bar.empty()
                    first, last = exc.first, exc.first + exc.rows
                    st.error(
                        f"Batch scoring failed in the request for rows {first + 1:,}–{last:,} "
                        f"of {len(frame):,}; nothing after them was sent. The endpoint said: "
                        f"{exc.in_file_terms()}"
                    )
                    if first:
                        done = pd.concat(
                            [frame.iloc[:first].drop(columns=wanted), exc.scored], axis=1
                        )
                        st.download_button(
                            f"Download the {first:,} rows scored before it",
                            done.to_csv(index=False).encode(),
                            file_name=f"scored-rows-1-{first}-{upload.name.rsplit('.', 1)[0]}.csv",
                            key="score_batch_partial",
                        )
                else:
                    bar.empty()
                    out = pd.concat([frame.drop(columns=wanted), scored], axis=1)
                    refused = int((scored["error"] != "").sum()) if "error" in scored else 0
                    if refused:
                        first = scored.loc[scored["error"] != "", "error"].iloc[0]
                        st.warning(
                            f"{refused:,} of {len(frame):,} rows were refused and not scored; "
                            f"the `error` column says why. The first: {first}"
                        )
                    st.dataframe(out.head(200), key="score_batch_result")
                    st.download_button(
                        "Download scored CSV",
                        out.to_csv(index=False).encode(),
                        file_name=f"scored-{upload.name.rsplit('.', 1)[0]}.csv",
                        key="score_batch_download",
                    )

"""Import: upload reading or session files; preview, map columns, then see what was stored and rejected."""

import tempfile
from pathlib import Path
from zoneinfo import available_timezones

import polars as pl
import streamlit as st

from core import queries
from core.errors import ChargeLensError
from core.importers import FORMATS, ImportOptions, parse_file
from core.importers.rules import RULES
from core.pipeline import ingest_file
from ui.common import literal, store

ZONES = ["", *sorted(available_timezones())]
PREVIEW_LIMIT = 20 * 1024 * 1024
MAPPABLE = ["entity_id", "ts", *[r.column for r in RULES], "entity_type"]

st.title("Import")
db = store()
st.write(
    "Upload readings (canonical CSV, Parquet or JSON lines, Readings API JSON, TeslaFi CSV) or session tables "
    "(sessions CSV, ACN-Data, EPFL). The format is recognised from the columns; other CSVs get a mapping step."
)
files = st.file_uploader("Files", accept_multiple_files=True, key="upload")
left, middle, right = st.columns(3)
fmt = left.selectbox("Format", FORMATS, index=0)
timezone = middle.selectbox("Time zone of naive times", ZONES, format_func=lambda z: z or "(times carry a zone)")
entity_type = right.selectbox("Entity type when the file has none", ["EV", "ChargePoint"])
mapping: dict[str, str] = {}


def saved(upload, folder: str) -> Path:
    path = Path(folder) / Path(upload.name).name
    path.write_bytes(upload.getvalue())
    return path


if files and files[0].size > PREVIEW_LIMIT:
    st.caption(
        f"{literal(files[0].name)} is large; the preview is skipped and the file is checked while it is imported."
    )
elif files:
    first = files[0]
    with tempfile.TemporaryDirectory() as folder:
        try:
            preview = parse_file(saved(first, folder), ImportOptions(fmt, timezone or None, entity_type), first.name)
            rows = preview.readings if preview.readings.height else preview.sessions
            st.caption(
                f"Preview of {literal(first.name)} as parsed ({preview.format}): {preview.rows_read:,} rows, "
                f"{preview.rejects.height:,} problem{'' if preview.rejects.height == 1 else 's'} found"
            )
            st.dataframe(rows.head(10), hide_index=True, width="stretch")
        except ChargeLensError as exc:
            st.warning(literal(exc.detail))
            if "not recognised" in exc.detail or "has no column" in exc.detail:
                header = pl.read_csv(first.getvalue(), n_rows=0, infer_schema=False).columns
                st.subheader("Map the columns")
                st.caption("Choose, for each ChargeLens column, the column of your file that holds it.")
                cells = st.columns(4)
                for i, canonical in enumerate(MAPPABLE):
                    source = cells[i % 4].selectbox(canonical, ["", *header], key=f"map-{canonical}")
                    if source:
                        mapping[canonical] = source

if files and st.button("Import", type="primary"):
    options = ImportOptions(fmt, timezone or None, entity_type, mapping)
    progress = st.progress(0.0, text="Importing…")
    results = []
    for number, upload in enumerate(files, start=1):

        def show(share: float, text: str, number: int = number, name: str = upload.name) -> None:
            done = (number - 1 + share) / len(files)
            progress.progress(min(done, 1.0), text=literal(f"{name} ({number} of {len(files)}): {text}"))

        with tempfile.TemporaryDirectory() as folder:
            try:
                summary = ingest_file(db, saved(upload, folder), options, name=upload.name, progress=show)
                results.append((upload.name, summary, None))
            except ChargeLensError as exc:
                results.append((upload.name, None, exc.detail))
        progress.progress(number / len(files), text=f"{number} of {len(files)} files")
    st.session_state["import-results"] = results  # kept so that a download does not wipe them

for number, (name, summary, error) in enumerate(st.session_state.get("import-results", [])):
    if error:
        st.error(literal(f"{name}: nothing imported. {error}"))
        continue
    st.success(literal(summary.line()))
    if summary.rejects.height:
        st.dataframe(summary.rejects, hide_index=True, width="stretch")
        st.download_button(
            f"Download rejects of {name}",
            summary.rejects.write_csv(line_terminator="\n"),
            file_name=f"{Path(name).stem}.rejects.csv",
            mime="text/csv",
            key=f"rejects-{number}",
            on_click="ignore",
        )

st.subheader("Imports")
history = queries.imports(db)
if history.height:
    st.dataframe(history.drop("import_id", "sha256"), hide_index=True, width="stretch")
else:
    st.info("Nothing imported yet.")

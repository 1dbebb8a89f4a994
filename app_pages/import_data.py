"""Import: upload reading or session files; see what was stored and what was rejected, with reasons."""

import tempfile
from pathlib import Path

import streamlit as st

from core import queries
from core.errors import ChargeLensError
from core.importers import FORMATS, ImportOptions
from core.pipeline import ingest_file
from ui.common import store

st.title("Import")
db = store()
st.write(
    "Upload readings (canonical CSV, Parquet or JSON lines, Readings API JSON, TeslaFi CSV) or session tables "
    "(sessions CSV, ACN-Data, EPFL). The format is recognised from the columns."
)
files = st.file_uploader("Files", accept_multiple_files=True, key="upload")
left, middle, right = st.columns(3)
fmt = left.selectbox("Format", FORMATS, index=0)
timezone = middle.text_input("Time zone of naive times", value="", placeholder="e.g. Europe/Brussels")
entity_type = right.selectbox("Entity type when the file has none", ["EV", "ChargePoint"])

if files and st.button("Import", type="primary"):
    options = ImportOptions(fmt, timezone.strip() or None, entity_type)
    progress = st.progress(0.0, text="Importing…")
    results = []
    for number, upload in enumerate(files, start=1):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / Path(upload.name).name
            path.write_bytes(upload.getvalue())
            try:
                results.append((upload.name, ingest_file(db, path, options, name=upload.name), None))
            except ChargeLensError as exc:
                results.append((upload.name, None, exc.detail))
        progress.progress(number / len(files), text=f"{number} of {len(files)} files")
    st.session_state["import-results"] = results  # kept so that a download does not wipe them

for number, (name, summary, error) in enumerate(st.session_state.get("import-results", [])):
    if error:
        st.error(f"{name}: nothing imported. {error}")
        continue
    st.success(summary.line())
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

"""The command line: every command a thin call into core; errors become one sentence and an exit code."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from core import __version__
from core.errors import ChargeLensError, InputError, NotAvailableYet
from core.settings import DEFAULT_HOST, DEFAULT_PORT, PROJECT_ROOT, SETTINGS, database_path

EXIT_OK, EXIT_FAILURE, EXIT_REFUSED = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own usage errors: one line, exit 2
        self.exit(EXIT_REFUSED, f"{self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m core", description="ChargeLens: charge sessions from vehicle and charger data.")
    parser.add_argument("--db", help="database file (default data/chargelens.duckdb, or CHARGELENS_DB)")
    parser.add_argument("--version", action="version", version=f"ChargeLens {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    serve = commands.add_parser("serve", help="serve the dashboard and the API in one process")
    serve.add_argument("--host", default=DEFAULT_HOST)
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.set_defaults(run=cmd_serve)

    demo = commands.add_parser("demo", help="load the demo fleet")
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--if-empty", action="store_true", help="only when the database holds no entities")
    demo.set_defaults(run=cmd_demo)

    ingest = commands.add_parser("ingest", help="import reading or session files")
    ingest.add_argument("files", nargs="+", metavar="FILE")
    ingest.add_argument("--format", default="auto")
    ingest.add_argument("--timezone")
    ingest.add_argument("--entity-type")
    ingest.add_argument("--map", action="append", default=[], metavar="CANONICAL=SOURCE")
    ingest.add_argument("--rejects", metavar="FILE")
    ingest.set_defaults(run=cmd_ingest)

    entities = commands.add_parser("entities", help="list entities, set battery capacity").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    e_list = entities.add_parser("list")
    e_list.add_argument("--json", action="store_true")
    e_list.set_defaults(run=cmd_entities_list)
    e_cap = entities.add_parser("set-capacity")
    e_cap.add_argument("entity")
    e_cap.add_argument("kwh", type=float)
    e_cap.set_defaults(run=cmd_entities_set_capacity)

    features = commands.add_parser("features", help="switch entity features").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    add_feature_set(features, cmd_features_set)

    locations = commands.add_parser("locations", help="named places").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    l_add = locations.add_parser("add")
    l_add.add_argument("--label", required=True)
    l_add.add_argument("--lat", type=float, required=True)
    l_add.add_argument("--lon", type=float, required=True)
    l_add.add_argument("--radius", type=float, default=150)
    l_add.add_argument("--entity")
    l_add.set_defaults(run=cmd_locations_add)
    l_list = locations.add_parser("list")
    l_list.add_argument("--json", action="store_true")
    l_list.set_defaults(run=cmd_locations_list)
    l_update = locations.add_parser("update")
    l_update.add_argument("id")
    l_update.add_argument("--label")
    l_update.add_argument("--lat", type=float)
    l_update.add_argument("--lon", type=float)
    l_update.add_argument("--radius", type=float)
    l_update.set_defaults(run=cmd_locations_update)
    l_delete = locations.add_parser("delete")
    l_delete.add_argument("id")
    l_delete.set_defaults(run=cmd_locations_delete)
    l_suggest = locations.add_parser("suggest")
    l_suggest.add_argument("--json", action="store_true")
    l_suggest.add_argument("--accept", type=int, metavar="N")
    l_suggest.add_argument("--label")
    l_suggest.set_defaults(run=cmd_locations_suggest)

    sessions = commands.add_parser("sessions", help="detect and export charge sessions").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    detect = sessions.add_parser("detect")
    detect.add_argument("--entity", action="append", default=[])
    detect.add_argument("--min-power-kw", type=float)
    detect.add_argument("--max-pause-min", type=float)
    detect.add_argument("--max-gap-min", type=float)
    detect.add_argument("--min-energy-kwh", type=float)
    detect.add_argument("--soc-min-rise-pct", type=float)
    detect.add_argument("--save", action="store_true")
    detect.set_defaults(run=cmd_sessions_detect)
    export = sessions.add_parser("export")
    export.add_argument("--format", default="csv", choices=["csv", "json", "parquet", "xlsx"])
    export.add_argument("--out")
    export.add_argument("--start")
    export.add_argument("--end")
    export.add_argument("--entity", action="append", default=[])
    export.add_argument("--entity-type")
    export.add_argument("--location")
    export.add_argument("--method")
    export.add_argument("--source")
    where = export.add_mutually_exclusive_group()
    where.add_argument("--exact-locations", action="store_true")
    where.add_argument("--round-locations", type=int, metavar="N")
    export.add_argument("--wide", action="store_true")
    export.set_defaults(run=cmd_sessions_export)

    settings = commands.add_parser("settings", help="show and change settings").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    settings.add_parser("list").set_defaults(run=cmd_settings_list)
    s_set = settings.add_parser("set")
    s_set.add_argument("key")
    s_set.add_argument("value")
    s_set.set_defaults(run=cmd_settings_set)

    # Commands of the specification that later versions fill in; they answer with exit 2 for now.
    tariffs = commands.add_parser("tariffs", help="tariffs and where they apply").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    t_add = tariffs.add_parser("add")
    t_add.add_argument("file")
    t_add.add_argument("--prices", metavar="PRICES.csv", help="its dynamic price series (CSV ts,price_per_kwh)")
    t_add.set_defaults(run=cmd_tariffs_add)
    t_list = tariffs.add_parser("list")
    t_list.add_argument("--json", action="store_true")
    t_list.set_defaults(run=cmd_tariffs_list)
    t_assign = tariffs.add_parser("assign")
    t_assign.add_argument("name")
    target = t_assign.add_mutually_exclusive_group(required=True)
    target.add_argument("--default", action="store_true")
    target.add_argument("--location", metavar="LABEL")
    target.add_argument("--entity", metavar="ID")
    t_assign.set_defaults(run=cmd_tariffs_assign)
    prices = commands.add_parser("prices", help="dynamic price series").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    p_import = prices.add_parser("import")
    p_import.add_argument("file")
    p_import.add_argument("--tariff", required=True)
    p_import.set_defaults(run=cmd_prices_import)
    costs = commands.add_parser("costs", help="what-if pricing and the cheapest hours").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    whatif = costs.add_parser("whatif")
    whatif.add_argument("--tariff", required=True)
    whatif.add_argument("--start")
    whatif.add_argument("--end")
    whatif.add_argument("--entity", action="append", default=[])
    whatif.add_argument("--period", choices=["day", "week", "month"], default="month")
    whatif.add_argument("--json", action="store_true")
    whatif.set_defaults(run=cmd_costs_whatif)
    c_shift = costs.add_parser("shift", help="energy cost if flexible sessions charged in their cheapest plugged hours")
    c_shift.add_argument("--tariff", help="price every session under this tariff (default: each one's own)")
    c_shift.add_argument("--start")
    c_shift.add_argument("--end")
    c_shift.add_argument("--entity", action="append", default=[])
    c_shift.add_argument("--period", choices=["day", "week", "month"], default="month")
    c_shift.add_argument("--profile", action="store_true", help="energy per local hour, now and shifted")
    c_shift.add_argument("--json", action="store_true")
    c_shift.set_defaults(run=cmd_costs_shift)

    add_remote_commands(commands)
    reports = commands.add_parser("reports", help="monthly charging statements").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    monthly = reports.add_parser("monthly", help="statement per entity: sessions, energy and cost per location")
    monthly.add_argument("--month", required=True, metavar="YYYY-MM", help="local month (display_timezone)")
    monthly.add_argument("--entity", metavar="ID", help="one entity (default: every entity that charged)")
    monthly.add_argument("--format", default="csv", choices=["csv", "html"])
    monthly.add_argument("--out", metavar="FILE", help="write here instead of standard output")
    monthly.set_defaults(run=cmd_reports_monthly)
    scale = commands.add_parser("scale", help="detection, matching and pricing on Spark").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    s_detect = scale.add_parser("detect", help="readings Parquet in, sessions Parquet (export columns) out")
    s_detect.add_argument("--readings", required=True, metavar="URI", help="Parquet file or folder of readings")
    s_detect.add_argument("--out", required=True, metavar="URI", help="new folder: month=YYYY-MM/*.parquet")
    s_detect.add_argument("--master", metavar="URL", help="Spark master (default local[2], or spark-submit's)")
    s_detect.add_argument("--entities", metavar="FILE", help="CSV entity_id, entity_type, battery_capacity_kwh")
    s_detect.add_argument("--locations", metavar="FILE", help="JSON list of locations")
    s_detect.add_argument("--tariffs", metavar="FILE", help="JSON list of tariffs, each with assign")
    s_detect.set_defaults(run=cmd_scale_detect)
    api = commands.add_parser("api", help="the local API").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    api.add_parser("credentials").set_defaults(run=cmd_api_credentials)
    backup = commands.add_parser("backup", help="a consistent copy of the database into a new file")
    backup.add_argument("file")
    backup.set_defaults(run=cmd_backup)
    restore = commands.add_parser("restore", help="replace the database with a backup (server stopped)")
    restore.add_argument("file")
    restore.set_defaults(run=cmd_restore)
    return parser


def add_feature_set(features, run) -> None:
    """`… features set ENTITY FEATURE on|off`, the same words locally and on a remote platform."""
    f_set = features.add_parser("set")
    f_set.add_argument("entity")
    f_set.add_argument("feature")
    f_set.add_argument("state", choices=["on", "off"])
    f_set.set_defaults(run=run)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or EXIT_OK
    except ChargeLensError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        print("interrupted; nothing half-written was kept.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # the last net: one line, never a traceback
        print(f"error: unexpected failure ({type(exc).__name__}: {str(exc)[:300]}); please report it.", file=sys.stderr)
        return EXIT_FAILURE


def not_yet(command: str):
    def run(args):
        raise NotAvailableYet(f"'{command}' is not available in this version of ChargeLens yet.")

    return run


def cmd_scale_detect(args) -> int:
    # pyspark loads only here (inside core.scale.spark's functions): every other command runs without it.
    from core.scale import inputs, spark

    given = {name: Path(value) if value else None for name, value in
             (("entities", args.entities), ("locations", args.locations), ("tariffs", args.tariffs))}  # fmt: skip
    found = inputs.load(**given)
    print(spark.run(args.readings, args.out, found, args.master).line())
    return EXIT_OK


def _store(args):
    from core.store import Store

    return Store.open(database_path(args.db))


def _print_table(rows: list[dict], columns: list[str]) -> None:
    if not rows:
        print("(none)")
        return
    texts = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in texts)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for t in texts:
        print("  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True)).rstrip())


def _parse_time(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None

    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        raise InputError(f"{option} '{text}' is not a date or time; use ISO 8601 like 2025-03-01T00:00Z.") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# -- commands ----------------------------------------------------------------------------------------
def cmd_serve(args) -> int:
    from core.store import Store, running_server

    db = database_path(args.db)
    info = running_server(db)
    if info:
        raise ChargeLensError(
            f"ChargeLens is already serving {db.name} at {info.get('url')} (pid {info['pid']}); "
            "open that URL, or stop that server before starting another."
        )
    Store.open(db).close()  # fails with one clear sentence when another process holds the file
    try:
        if not ipaddress.ip_address(args.host).is_loopback:
            print(
                f"warning: serving on {args.host}: traffic is unencrypted unless a TLS proxy is in front.",
                file=sys.stderr,
            )
    except ValueError:
        pass
    env = {**os.environ, "CHARGELENS_DB": str(db), "CHARGELENS_HOST": args.host, "CHARGELENS_PORT": str(args.port)}
    command = [
        sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "server.py"),
        "--server.address", args.host, "--server.port", str(args.port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    print(f"ChargeLens serving {db} on http://{args.host}:{args.port} (API under /api)", file=sys.stderr)
    os.chdir(PROJECT_ROOT)  # Streamlit reads .streamlit/config.toml from the working directory
    os.execve(sys.executable, command, env)
    return EXIT_OK  # not reached


def cmd_demo(args) -> int:
    from core.pipeline import load_demo

    store = _unserved(args, "demo", lambda: _store(args))
    if args.if_empty and not store.is_empty():
        print(f"{store.path.name} already holds data; demo not loaded.")
        return EXIT_OK
    summary = load_demo(store, args.seed)
    print(summary.line())
    count = store.scalar("SELECT count(*) FROM sessions")
    print(f"demo fleet loaded: {store.scalar('SELECT count(*) FROM entities')} entities, {count} sessions")
    return EXIT_OK


def cmd_ingest(args) -> int:
    from core.importers import ImportOptions
    from core.pipeline import ImportSummary

    mapping = {}
    for item in args.map:
        canonical, sep, source = item.partition("=")
        if not sep or not canonical or not source:
            raise InputError(f"--map '{item}' must look like canonical=source, for example ts=Time.")
        mapping[canonical.strip()] = source.strip()
    options = ImportOptions(args.format, args.timezone, args.entity_type, mapping)
    paths = [Path(f) for f in args.files]
    for path in paths:
        if not path.exists():
            raise InputError(f"{path} does not exist; check the path.")
    ingest = _ingester(args)
    summaries, failed = [], False
    rejects = []
    on_terminal = sys.stderr.isatty()
    for path in paths:

        def show(share: float, text: str, name: str = path.name) -> None:
            print(f"\r\033[K{name}: {share:4.0%} {text}", end="", file=sys.stderr, flush=True)

        try:
            summary = ingest(path, options, show if on_terminal else None)
        except InputError as exc:
            if on_terminal:
                print("\r\033[K", end="", file=sys.stderr)
            print(f"{path.name}: refused: {exc.detail}", file=sys.stderr)
            failed = True
            continue
        if on_terminal:
            print("\r\033[K", end="", file=sys.stderr)
        print(summary.line())
        summaries.append(summary)
        rejects.append(summary.rejects)
    if len(paths) > 1:
        total = ImportSummary("total")
        for s in summaries:
            total.add(s)
        print(total.line())
    if args.rejects:
        import polars as pl

        from core.importers.rules import reject_frame

        frame = pl.concat(rejects) if rejects else reject_frame()
        Path(args.rejects).write_text(frame.write_csv(line_terminator="\n"))
    return EXIT_REFUSED if failed else EXIT_OK


def _unserved(args, command: str, work):
    """`work()` of a command that never runs through a server (API.md): while one holds the database, one sentence
    saying to stop it first."""
    from core.errors import DatabaseBusy
    from core.store import running_server

    try:
        return work()
    except DatabaseBusy:
        db = database_path(args.db)
        if (info := running_server(db)) is None:
            raise
        raise ChargeLensError(
            f"The ChargeLens server at {info.get('url')} (pid {info['pid']}) holds {db.name} and `{command}` does not "
            "run through it: stop that server first (Ctrl+C in its terminal), then run this command again."
        ) from None


def _here_or_server(args):
    """(store, None) when this process can open the database; (None, LocalServer) while `serve` holds it, so the
    command's work goes through that server (API.md, local administration) with the same output."""
    from core.errors import DatabaseBusy
    from core.store import running_server

    try:
        return _store(args), None
    except DatabaseBusy:
        info = running_server(database_path(args.db))
        if info is None:
            raise
        from core.local import LocalServer

        return None, LocalServer(database_path(args.db), info)


def _work(args, work, *params, **named):
    """`work(store, ...)` here, or while `serve` holds the database the LocalServer method of the same name, which
    sends it to that server."""
    store, server = _here_or_server(args)
    return getattr(server, work.__name__)(*params, **named) if server is not None else work(store, *params, **named)


def _ingester(args):
    """Import into the database here, or through the server that holds it, with the same summary."""
    from core.pipeline import ingest_file

    store, server = _here_or_server(args)
    if server is not None:
        return server.ingest
    return lambda path, options, progress: ingest_file(store, path, options, progress=progress)


def cmd_entities_list(args) -> int:
    from core.records import entity_record

    store, server = _here_or_server(args)
    if args.json:
        records = server.entities() if server is not None else [entity_record(r) for r in store.entities().to_dicts()]
        print(json.dumps({"data": records}, indent=2))
        return EXIT_OK
    rows = server.entity_rows() if server is not None else store.entities().to_dicts()
    for r in rows:
        r["capture"] = "on" if r["capture_sessions"] else "off"
    _print_table(rows, ["entity_id", "entity_type", "name", "battery_capacity_kwh", "capture"])
    return EXIT_OK


def cmd_features_set(args) -> int:
    from core.pipeline import set_feature

    print(json.dumps(_work(args, set_feature, args.entity, args.feature, args.state == "on")))
    return EXIT_OK


def cmd_locations_add(args) -> int:
    from core.pipeline import add_location

    print(_work(args, add_location, args.label, args.lat, args.lon, args.radius, args.entity))
    return EXIT_OK


def cmd_entities_set_capacity(args) -> int:
    from core.pipeline import set_capacity

    print(f"{args.entity}: battery capacity {_work(args, set_capacity, args.entity, args.kwh)} kWh")
    return EXIT_OK


def cmd_locations_update(args) -> int:
    from core.pipeline import update_location

    changes = {"label": args.label, "latitude": args.lat, "longitude": args.lon, "radius_m": args.radius}
    location = _work(args, update_location, args.id, **changes)
    print(f"{location['location_id']}: {location['label']} ({location['latitude']}, {location['longitude']}), "
          f"radius {location['radius_m']} m")  # fmt: skip
    return EXIT_OK


def cmd_locations_delete(args) -> int:
    from core.pipeline import delete_location

    _work(args, delete_location, args.id)
    print(f"{args.id} deleted")
    return EXIT_OK


def cmd_locations_suggest(args) -> int:
    from core.pipeline import accept_suggestion, suggestion_records

    if args.accept is not None:
        print(_work(args, accept_suggestion, args.accept, args.label))
        return EXIT_OK
    records = _work(args, suggestion_records)
    if args.json:
        print(json.dumps({"data": [{**r, "energyKwh": round(r["energyKwh"], 3)} for r in records]}, indent=2))
        return EXIT_OK
    rows = [{"number": r["number"], "label": r["label"], "latitude": r["latitude"], "longitude": r["longitude"],
             "radius_m": r["radius"], "sessions": r["sessions"], "energy_kwh": round(r["energyKwh"], 1),
             "entity_id": r["entityId"]} for r in records]  # fmt: skip
    _print_table(rows, ["number", "label", "latitude", "longitude", "radius_m", "sessions", "energy_kwh", "entity_id"])
    return EXIT_OK


def cmd_locations_list(args) -> int:
    store, server = _here_or_server(args)
    rows = server.locations() if server is not None else store.locations().to_dicts()
    if args.json:
        data = [
            {
                "id": r["location_id"],
                "label": r["label"],
                "latitude": r["latitude"],
                "longitude": r["longitude"],
                "radius": r["radius_m"],
                "entityId": r["entity_id"],
            }
            for r in rows
        ]
        print(json.dumps({"data": data}, indent=2))
        return EXIT_OK
    _print_table(rows, ["location_id", "label", "entity_id", "latitude", "longitude", "radius_m"])
    return EXIT_OK


def cmd_sessions_detect(args) -> int:
    from core.pipeline import DETECTION_OPTIONS, detect_with, detection_overrides

    given = {name: getattr(args, name) for name in DETECTION_OPTIONS}
    store, server = _here_or_server(args)
    if server is not None:
        count = server.detect(given, args.entity, args.save)
    else:
        count = detect_with(store, detection_overrides(store, given), args.entity, args.save)
    print(f"{count} sessions detected")
    return EXIT_OK


def cmd_sessions_export(args) -> int:
    from core.exports import export_sessions
    from core.queries import SessionFilter

    flt = SessionFilter(
        start=_parse_time(args.start, "--start"),
        end=_parse_time(args.end, "--end"),
        entity_ids=tuple(args.entity),
        entity_type=args.entity_type,
        location=args.location,
        method=args.method,
        source=args.source,
    )
    store, server = _here_or_server(args)
    if server is not None:
        data = server.export(flt, args.format, args.exact_locations, args.round_locations, args.wide)
    else:
        data = export_sessions(
            store, flt, args.format, exact=args.exact_locations, round_to=args.round_locations, wide=args.wide
        )
    return _emit(data, args.out)


def cmd_tariffs_add(args) -> int:
    from core.importers import read_bytes
    from core.pricing import read_prices, save_tariff

    body = _tariff_file(Path(args.file))
    prices_path = Path(args.prices) if args.prices else None
    if prices_path is not None and not prices_path.exists():
        raise InputError(f"{prices_path} does not exist; check the path.")
    store, server = _here_or_server(args)
    if server is not None:
        saved = server.add_tariff(body, prices_path)
    else:
        prices = read_prices(read_bytes(prices_path), prices_path.name) if prices_path is not None else None
        saved = save_tariff(store, body, prices)
    tariff, count = saved["tariff"], saved["prices"]
    with_prices = f", {count} prices" if count is not None else ""
    print(f"tariff {tariff['name']} saved ({tariff['currency']}, {len(tariff['bands'])} bands{with_prices})")
    return EXIT_OK


def _tariff_file(path: Path) -> dict:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path} does not exist; check the path.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{path.name} is not valid JSON ({str(exc)[:150]}); see the tariff format in the README."
        ) from None
    if not isinstance(body, dict):
        raise InputError(f"{path.name} must hold one tariff object (see the tariff format in the README).")
    return body


def cmd_tariffs_list(args) -> int:
    from core.queries import tariff_records

    records = _work(args, tariff_records)
    if args.json:
        print(json.dumps({"data": records}, indent=2))
        return EXIT_OK
    _print_table(records, ["name", "currency", "timezone", "assigned"])
    return EXIT_OK


def cmd_tariffs_assign(args) -> int:
    from core.pricing import assign_tariff

    scope, target = (
        ("default", "")
        if args.default
        else ("location", args.location)
        if args.location is not None
        else ("entity", args.entity)
    )
    store, server = _here_or_server(args)
    if server is not None:
        server.assign_tariff(args.name, scope, target)
    else:
        assign_tariff(store, args.name, scope, target, store.settings().max_gap_min)
    print(f"tariff {args.name} assigned to {scope} {target}".rstrip())
    return EXIT_OK


def cmd_prices_import(args) -> int:
    from core.pricing import import_prices

    path = Path(args.file)
    if not path.exists():
        raise InputError(f"{path} does not exist; check the path.")
    store, server = _here_or_server(args)
    if server is not None:
        count = server.import_prices(path, args.tariff)
    else:
        count = import_prices(store, path, args.tariff, store.settings().max_gap_min)
    print(f"{path.name}: {count} prices stored for tariff {args.tariff}")
    return EXIT_OK


def cmd_costs_whatif(args) -> int:
    from core.pricing import whatif, whatif_records
    from core.queries import SessionFilter

    flt = SessionFilter(
        start=_parse_time(args.start, "--start"), end=_parse_time(args.end, "--end"), entity_ids=tuple(args.entity)
    )
    store, server = _here_or_server(args)
    if server is not None:
        rows = server.whatif(args.tariff, flt, args.period)
    else:
        rows = whatif_records(whatif(store, args.tariff, flt, args.period))
    if args.json:
        print(json.dumps({"data": rows}, indent=2, default=str))
        return EXIT_OK
    _print_table(rows, ["period_start", "entity_id", "sessions", "actual", "whatif", "difference", "currency"])
    return EXIT_OK


def cmd_costs_shift(args) -> int:
    from core.costs import round_money
    from core.pricing import shift
    from core.queries import SessionFilter

    flt = SessionFilter(
        start=_parse_time(args.start, "--start"), end=_parse_time(args.end, "--end"), entity_ids=tuple(args.entity)
    )
    report = shift(_store(args), flt, args.tariff, args.period)
    if args.profile:
        columns = ["hour", "energy_now_kwh", "energy_shifted_kwh", "price_per_kwh"]
        rows = [
            {k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in report.profile.to_dicts()
        ]
    else:
        columns = ["period_start", "entity_id", "sessions", "flexible", "energy_kwh", "cost_energy",
                   "cost_energy_shifted", "saving", "currency"]  # fmt: skip
        money = ("cost_energy", "cost_energy_shifted", "saving")
        rows = [
            {**r, "period_start": str(r["period_start"]), "energy_kwh": round(r["energy_kwh"], 3),
             **{c: round_money(r[c]) for c in money}}
            for r in report.totals.to_dicts()
        ]  # fmt: skip
    if args.json:
        print(json.dumps({"data": rows}, indent=2, default=str))
        return EXIT_OK
    _print_table(rows, columns)
    print("energy cost only, VAT excluded: the time, idle and session fees, minimum and maximum are left out")
    return EXIT_OK


def cmd_backup(args) -> int:
    from core.backup import backup

    store, server = _here_or_server(args)
    written = server.backup(Path(args.file)) if server is not None else backup(store, Path(args.file))
    print(f"backup written to {written}")
    return EXIT_OK


def cmd_restore(args) -> int:
    from core.backup import restore

    db = database_path(args.db)
    _unserved(args, "restore", lambda: restore(db, Path(args.file)))
    print(f"{db.name} restored from {Path(args.file).name} (the previous file is kept as {db.name}.before-restore)")
    return EXIT_OK


def cmd_api_credentials(args) -> int:
    """Works while a server holds the database too: the credentials live in a file beside it."""
    from core.credentials import load_or_create

    print(json.dumps(load_or_create(database_path(args.db))))
    return EXIT_OK


def cmd_settings_list(args) -> int:
    store, server = _here_or_server(args)
    current = server.settings() if server is not None else store.settings().as_dict()
    _print_table([{"key": s.key, "value": current[s.key], "help": s.help} for s in SETTINGS], ["key", "value", "help"])
    return EXIT_OK


def cmd_settings_set(args) -> int:
    store, server = _here_or_server(args)
    value = (
        server.set_setting(args.key, args.value) if server is not None else store.change_setting(args.key, args.value)
    )
    print(f"{args.key} = {value}")
    return EXIT_OK


# -- remote platform (`remote ...`): the connection, pulls and reconciliation live in core.remote -------------
def add_remote_commands(commands) -> None:
    remote = commands.add_parser("remote", help="a remote Charge Sessions platform").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    connect = remote.add_parser(
        "connect",
        help="check and keep the platform's URL and client credentials",
        description="The client secret is read from standard input or CHARGELENS_REMOTE_SECRET, never from an "
        "argument; it is kept in a 0600 file beside the database.",
    )
    connect.add_argument("--url", required=True, help="the platform's API base URL, e.g. https://platform/api")
    connect.add_argument("--client-id", required=True)
    # Accepted only to refuse it without echoing it (argparse repeats unknown arguments in its error).
    connect.add_argument("--secret", help=argparse.SUPPRESS)
    connect.set_defaults(run=cmd_remote_connect)
    entities = remote.add_parser("entities", help="list the remote platform's entities")
    entities.add_argument("--json", action="store_true")
    entities.set_defaults(run=cmd_remote_entities)
    pull = remote.add_parser("pull", help="pull readings of the remote entities (default --since-last)")
    pull.add_argument("--since-last", action="store_true", help="continue each entity after its last pulled reading")
    pull.add_argument("--start", metavar="ISO")
    pull.add_argument("--end", metavar="ISO")
    pull.add_argument("--entity", action="append", default=[], metavar="ID")
    pull.set_defaults(run=cmd_remote_pull)
    sessions = remote.add_parser(
        "sessions", help="pull the platform's charge sessions (default: from the first readings pull) and list them"
    )
    sessions.add_argument("--start", metavar="ISO")
    sessions.set_defaults(run=cmd_remote_sessions)
    features = remote.add_parser("features", help="switch features on the remote platform").add_subparsers(
        dest="feature_action", required=True, parser_class=_Parser
    )
    add_feature_set(features, cmd_remote_features_set)
    reconcile = remote.add_parser("reconcile", help="platform sessions next to the locally detected ones")
    reconcile.add_argument("--entity", metavar="ID")
    reconcile.add_argument("--json", action="store_true")
    reconcile.set_defaults(run=cmd_remote_reconcile)


def _remote_secret() -> str:
    """The secret from CHARGELENS_REMOTE_SECRET, else standard input (a prompt without echo on a terminal)."""
    from core.remote import SECRET_ENV

    secret = os.environ.get(SECRET_ENV, "")
    if not secret and sys.stdin is not None:
        if sys.stdin.isatty():
            import getpass

            secret = getpass.getpass("Client secret of the remote platform: ")
        else:
            secret = sys.stdin.readline()
    secret = secret.strip()
    if not secret:
        raise InputError(
            f"No client secret was given; pipe it on standard input or set {SECRET_ENV} (never as an argument)."
        )
    return secret


def cmd_remote_connect(args) -> int:
    from core import remote

    if args.secret is not None:
        raise InputError(
            f"The secret is never taken as an argument (it would stay in the shell history and the process list); "
            f"pipe it on standard input or set {remote.SECRET_ENV}."
        )
    store, server = _here_or_server(args)
    if server is not None:
        url, count = server.remote_connect(args.url, args.client_id, _remote_secret())
    else:
        count = remote.connect(store, args.url, args.client_id, _remote_secret())
        url = remote.connection(store).url
    print(f"connected to {url} as {args.client_id}: {count} remote entities")
    return EXIT_OK


def _on_remote(args, report, *params):
    """`report(store, client, ...)` with the connected platform's client here, or the LocalServer method of the
    same name while `serve` holds the database."""
    from core import remote

    store, server = _here_or_server(args)
    if server is not None:
        return getattr(server, report.__name__)(*params)
    with remote.open_client(store) as client:
        return report(store, client, *params)


def cmd_remote_entities(args) -> int:
    from core import remote

    report = _on_remote(args, remote.entities_report)
    if args.json:
        print(json.dumps({"data": report["data"]}, indent=2))
        return EXIT_OK
    _print_table(report["rows"], remote.ENTITY_TABLE)
    return EXIT_OK


def _progress_line(text: str) -> None:
    print(f"\r\033[K{text}", end="", file=sys.stderr, flush=True)


def cmd_remote_pull(args) -> int:
    from core import remote

    start, end = _parse_time(args.start, "--start"), _parse_time(args.end, "--end")
    window = {"start": start, "end": end, "since_last": args.since_last or (start is None and end is None),
              "entity_ids": args.entity}  # fmt: skip
    on_terminal = sys.stderr.isatty()
    store, server = _here_or_server(args)
    if server is not None:
        report = server.remote_pull(progress=(lambda share, text: _progress_line(text)) if on_terminal else None,
                                    **window)  # fmt: skip
    else:
        with remote.open_client(store) as client:
            shown = (lambda p: _progress_line(p.line())) if on_terminal else None
            report = remote.pull_report(remote.pull(store, client, progress=shown, **window))
    if on_terminal:
        _progress_line("")
    for line in report["lines"]:
        print(line)
    if failed := report["failed"]:
        more = len(failed) - 1
        raise ChargeLensError(
            f"{failed[0]}{f' ({more} more entities failed)' if more else ''}; the readings pulled "
            "before the failure are kept and `remote pull --since-last` continues from there."
        )
    return EXIT_OK


def cmd_remote_sessions(args) -> int:
    from core import remote

    report = _on_remote(args, remote.sessions_report, _parse_time(args.start, "--start"))
    for line in report["lines"]:
        print(line, file=sys.stderr)
    _print_table(report["data"], remote.SESSION_TABLE)
    if report["failed"]:
        raise ChargeLensError(f"{report['failed']}; the sessions of the other entities were stored.")
    return EXIT_OK


def cmd_remote_features_set(args) -> int:
    from core import remote

    change = (args.entity, args.feature, args.state == "on")
    store, server = _here_or_server(args)
    if server is not None:
        print(json.dumps(server.remote_set_feature(*change)))
        return EXIT_OK
    with remote.open_client(store) as client:
        print(json.dumps(remote.set_feature(client, *change)))
    return EXIT_OK


def cmd_remote_reconcile(args) -> int:
    from core import remote

    report = _work(args, remote.reconcile_report, args.entity)
    if args.json:
        print(json.dumps({"data": report["data"]}, indent=2))
        return EXIT_OK
    _print_table(report["rows"], remote.RECONCILE_TABLE)
    print(report["summary"])
    return EXIT_OK


def cmd_reports_monthly(args) -> int:
    from core.reports import monthly_report, parse_month, render

    parse_month(args.month)  # a bad month is refused before the database is opened
    store, server = _here_or_server(args)
    if server is not None:
        data = server.monthly_report(args.month, args.entity, args.format)
    else:
        data = render(monthly_report(store, args.month, args.entity), args.format)
    return _emit(data, args.out)


def _emit(data: bytes, out: str | None) -> int:
    """A file's bytes, into `out` or to standard output as they are."""
    if out:
        Path(out).write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return EXIT_OK

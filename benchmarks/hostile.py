"""Hostile workbooks against honest ones of the same size (issue 23): the time and peak RSS
of reading and validating each (``api.bodies.parse_workbook``, in a fresh process per file),
for this checkout and, with ``--baseline DIR``, another checkout in the same run; with
``--rest``, how long a 650 KB JSON PUT waits while the slowest file is being validated by a
real service.

    python -m benchmarks.hostile [--baseline /path/to/other/checkout] [--rest]

The files are built in a temporary folder: tiny.json's workbook with one number at column
XFD in each of 20,000 rows of an extra sheet (``xfd-extra``) or of the demand sheet
(``xfd-demand``); an extra sheet of 1.3M short rows whose XML unpacks to ~120 MiB
(``unpacks-120MiB``); and a generated scenario's workbook of about the same size as the
first (``honest``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEASURE = """
import sys, time, resource
from api.bodies import parse_workbook
from api.problems import ApiError
raw = open(sys.argv[1], "rb").read()
t = time.perf_counter()
try:
    parse_workbook(raw)
    out = "stored"
except ApiError as exc:
    out = f"{exc.status} {(exc.errors or [exc])[0]}"[:90]
except BaseException as exc:
    out = f"{type(exc).__name__} {exc}"[:90]
print(f"{time.perf_counter() - t:.2f}\\t{out}")
"""


def build(folder: Path) -> dict[str, Path]:
    from openpyxl import load_workbook

    from allocator import Scenario
    from allocator.scenario.generate import generate_dict
    from allocator.scenario.workbook import write_workbook

    tiny = json.loads((ROOT / "data" / "tiny.json").read_text())
    files = {}
    for name, sheet in (("xfd-extra", "extra"), ("xfd-demand", "demand")):
        path = folder / f"{name}.xlsx"
        write_workbook(Scenario.from_dict(tiny), path)
        wb = load_workbook(path)
        ws = wb[sheet] if sheet in wb.sheetnames else wb.create_sheet(sheet)
        for r in range(ws.max_row + 1, ws.max_row + 20_001):
            ws.cell(row=r, column=16_384, value=r)
        wb.save(path)
        files[name] = path
    honest = folder / "honest.xlsx"
    write_workbook(Scenario.from_dict(generate_dict(440, 16, 24, seed=1)), honest)
    files["honest"] = honest
    files["unpacks-120MiB"] = _unpacks_big(folder, tiny)
    return files


def _unpacks_big(folder: Path, tiny: dict) -> Path:
    """tiny.json's workbook with an extra sheet of 1.3M rows (~120 MiB of XML)."""
    from allocator import Scenario
    from allocator.scenario.workbook import write_workbook

    base = folder / "base.xlsx"
    write_workbook(Scenario.from_dict(tiny), base)
    path = folder / "unpacks-120MiB.xlsx"
    with zipfile.ZipFile(base) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/workbook.xml":
                data = data.replace(
                    b"</sheets>", b'<sheet name="extra" sheetId="99" r:id="rX"/></sheets>'
                )
            elif info.filename == "xl/_rels/workbook.xml.rels":
                rel = (
                    b'<Relationship Id="rX" Target="worksheets/extra.xml" Type="http://schemas.'
                    b'openxmlformats.org/officeDocument/2006/relationships/worksheet"/>'
                )
                data = data.replace(b"</Relationships>", rel + b"</Relationships>")
            elif info.filename == "[Content_Types].xml":
                ct = (
                    b'<Override PartName="/xl/worksheets/extra.xml" ContentType="application/'
                    b'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
                )
                data = data.replace(b"</Types>", ct + b"</Types>")
            dst.writestr(info, data)
        with dst.open("xl/worksheets/extra.xml", "w") as f:
            f.write(
                b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                b"<sheetData>"
            )
            row = b'<row><c t="n"><v>1</v></c><c t="n"><v>2</v></c><c t="n"><v>3</v></c></row>'
            chunk = row * 10_000
            for _ in range(130):
                f.write(chunk)
            f.write(b"</sheetData></worksheet>")
    return path


def measure(root: Path, path: Path, timeout: float) -> str:
    """Seconds, peak RSS and outcome of parse_workbook(path) in a fresh process at root."""
    env = os.environ | {"PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", MEASURE, str(path)], cwd=root, env=env, stdout=subprocess.PIPE
    )
    end = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > end:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            return f">{timeout:.0f}\t{usage.ru_maxrss / 1024:,.0f}\tkilled"
        time.sleep(0.05)
    assert proc.stdout is not None
    out = proc.stdout.read().decode().strip() or f"\texit {status}"
    secs, _, what = out.partition("\t")
    return f"{secs}\t{usage.ru_maxrss / 1024:,.0f}\t{what}"


def rest(root: Path, slow: bytes, timeout: float) -> str:
    """A service at ``root``: PUT ``slow`` (a workbook), then a 650 KB JSON scenario while
    it is validated; the JSON PUT's latency and the workbook's answer."""
    import urllib.error
    import urllib.request

    from allocator.scenario.generate import generate_dict
    from tests.api.test_server import free_port

    port = free_port()
    env = os.environ | {
        "PYTHONPATH": str(root),
        "PYTHONDONTWRITEBYTECODE": "1",
        "ALLOCATOR_PORT": str(port),
        "ALLOCATOR_LOAD_EXAMPLES": "false",
    }
    with tempfile.TemporaryDirectory() as tmp:
        env["ALLOCATOR_DATABASE_URL"] = f"sqlite:///{tmp}/b.db"
        proc = subprocess.Popen(
            [sys.executable, "-m", "api"],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"

        def put(path: str, body: bytes, ctype: str) -> tuple[int, float]:
            t = time.perf_counter()
            req = urllib.request.Request(
                base + path, data=body, method="PUT", headers={"content-type": ctype}
            )
            try:
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    return r.status, time.perf_counter() - t
            except urllib.error.HTTPError as e:
                return e.code, time.perf_counter() - t
            except OSError:
                return 0, time.perf_counter() - t

        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(base + "/readyz", timeout=2)
                    break
                except OSError:
                    time.sleep(0.1)
            got: dict[str, tuple[int, float]] = {}
            xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            t = threading.Thread(target=lambda: got.update(book=put("/v1/scenarios/s", slow, xlsx)))
            t.start()
            time.sleep(1.0)
            body = json.dumps(generate_dict(1120, 16, 24, seed=1)).encode()  # ~650 KB
            code, secs = put("/v1/scenarios/j", body, "application/json")
            t.join(timeout)
            book = got.get("book", (0, float("nan")))
            return (
                f"JSON PUT of {len(body) / 1024:,.0f} KB: {code} in {secs:.2f} s; "
                f"the workbook: {book[0]} in {book[1]:.2f} s"
            )
        finally:
            os.killpg(proc.pid, 9)
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, help="another checkout, measured in the same run")
    ap.add_argument("--rest", action="store_true", help="also the JSON PUT behind a workbook")
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args(argv)
    roots = {"this": ROOT} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    with tempfile.TemporaryDirectory() as tmp:
        files = build(Path(tmp))
        print("file\tKB\tunpacked MB\tcheckout\tseconds\tpeak RSS MB\toutcome")
        for name, path in files.items():
            with zipfile.ZipFile(path) as zf:
                unpacked = sum(i.file_size for i in zf.infolist()) / 1e6
            for label, root in roots.items():
                m = measure(root, path, args.timeout)
                print(f"{name}\t{path.stat().st_size / 1024:,.0f}\t{unpacked:,.1f}\t{label}\t{m}")
        if args.rest:
            slow = files["unpacks-120MiB"].read_bytes()
            for label, root in roots.items():
                print(f"rest\t{label}\t{rest(root, slow, args.timeout)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

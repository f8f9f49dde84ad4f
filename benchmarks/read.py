"""Reader workstation latency (issue 17's target: the page load and the move to the next case under 300 ms for a
3-sequence case): a synthetic 3-sequence cohort, a reading plan served by uvicorn, and real headless Chromium
(Playwright, NiiVue on WebGL2 in software) timing

* the page load: from opening the app (logged in) to the first case's three volumes shown;
* the next case: from clicking "Save and next case" to the next case's three volumes shown.

Each volume is fetched once per case (the browser keeps it: ``Cache-Control``). The machine's load is printed with
the figures (a shared machine: compare figures of one run).
Run: .venv/bin/python benchmarks/read.py [--cases 6] [--size 128] [--slices 24]
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from sarcomri.read.design import Reader, ReadingDesign
from sarcomri.read.plan import create_plan
from sarcomri.read.server import background_server, create_app
from sarcomri.read.store import ReadingStore
from sarcomri.synth.acquisition import Protocol
from sarcomri.synth.cohort import synthesise_cohort

SEQUENCES = ["T2axi", "ADC", "fsT1CEaxi"]
LOADED = "window.sarcomriReader.loaded === 3 && window.sarcomriReader.case !== {prev}"


def study(root: Path, cases: int, size: int, slices: int) -> tuple[Path, str, str]:
    """A classification run folder over a synthetic cohort and a reading plan of ``cases`` cases."""
    cohort = synthesise_cohort(root / "cohort", task="sarcoma", n_patients=max(8, cases * 2), seed=3,
                               sequences=SEQUENCES, protocol=Protocol(size=size, slices=slices))
    run = root / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"name": "bench", "cohort": str(cohort.root),
                                                     "positive_label": "sarcoma", "sequences": SEQUENCES}))
    pd.DataFrame({"patient_id": cohort.patient_ids, "repeat": 0, "fold": 0, "role": "test"}).to_csv(
        run / "splits.csv", index=False)
    db = f"sqlite:///{root / 'reads.sqlite'}"
    _, tokens = create_plan(run, ReadingDesign(cases="all", scale="six_point"), [Reader(name="r1")], db)
    return run, db, tokens["r1"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=6)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--slices", type=int, default=24)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        run, db, token = study(Path(tmp), args.cases, args.size, args.slices)
        with background_server(create_app(run, ReadingStore(db))) as base, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/")
            page.fill("input[name=name]", "r1")
            page.fill("input[name=token]", token)
            page.click("button[type=submit]")
            page.wait_for_selector("#sessions:not([hidden])")
            loads = []
            for _ in range(3):  # the page load, logged in: the app, then the first case's volumes
                t0 = time.perf_counter()
                page.reload()
                page.wait_for_selector("#sessions:not([hidden])")
                page.click("button[data-session=first]")
                page.wait_for_function(LOADED.format(prev="null"), timeout=60000)
                loads.append(time.perf_counter() - t0)
            moves = []
            for _ in range(args.cases - 1):
                prev = page.evaluate("window.sarcomriReader.case")
                page.check("input[name=confidence][value='2']")
                t0 = time.perf_counter()
                page.click("#rating button[type=submit]")
                page.wait_for_function(LOADED.format(prev=repr(prev)), timeout=60000)
                moves.append(time.perf_counter() - t0)
            browser.close()
    load = f"load {os.getloadavg()[0]:.2f}"
    print(f"page load to the first case's 3 volumes ({args.size}x{args.size}x{args.slices}): median "
          f"{1000 * statistics.median(loads):.0f} ms of {len(loads)} (target < 300 ms; {load})")
    print(f"next case (save, then the next case's 3 volumes shown): median {1000 * statistics.median(moves):.0f} ms "
          f"of {len(moves)} (target < 300 ms; {load})")


if __name__ == "__main__":
    main()

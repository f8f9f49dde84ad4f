"""Reader workstation latency (issue 17's target: the page load and the move to the next case under 300 ms for a
3-sequence case): a synthetic 3-sequence cohort, a reading plan served by uvicorn, and real headless Chromium
(Playwright, NiiVue on WebGL2 in software) timing

* the page load: from opening the app in a new tab (logged in) to its session list, on a first visit (the browser's
  cache empty) and a later one (the app's files cached);
* the first case: from clicking the first session as soon as the list is shown to the case's three volumes shown
  (the page makes its viewers, WebGL contexts and shaders, while the reader chooses; clicking at once leaves no
  time for that, so this figure includes it), and from opening the app to that case;
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
VIEWPORT = {"width": 1400, "height": 1000}


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
            context = browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
            page.goto(f"{base}/")
            page.fill("input[name=name]", "r1")
            page.fill("input[name=token]", token)
            page.click("button[type=submit]")
            page.wait_for_selector("#sessions:not([hidden])")
            page.close()
            cold = [open_app(browser.new_context(viewport=VIEWPORT, storage_state=context.storage_state()), base)
                    for _ in range(3)]
            warm = [open_app(context, base) for _ in range(3)]
            page = context.new_page()
            page.goto(f"{base}/")
            page.wait_for_selector("#sessions:not([hidden])")
            page.click("button[data-session=first]")
            page.wait_for_function(LOADED.format(prev="null"), timeout=60000)
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
    size = f"{args.size}x{args.size}x{args.slices}"
    for name, runs in (("a first visit (logged in, empty browser cache)", cold),
                       ("a later visit (the app's files in the browser's cache)", warm)):
        print(f"{name}: page load to the session list painted {ms(runs, 3)} by the browser's clock, {ms(runs, 0)} "
              f"seen by Playwright (target < 300 ms); choosing a session at once to its first case's 3 volumes "
              f"({size}) {ms(runs, 1)}; open to case {ms(runs, 2)} ({load})")
    print(f"next case (save, then the next case's 3 volumes shown): median {1000 * statistics.median(moves):.0f} ms "
          f"of {len(moves)} (target < 300 ms; {load})")


def open_app(context, base: str) -> tuple[float, float, float, float]:
    """Seconds from opening the app in a new tab of ``context`` (logged in) to its session list, from clicking the
    first session at once to its first case's volumes shown, and in all; the tab is closed afterwards."""
    page = context.new_page()
    t0 = time.perf_counter()
    page.goto(f"{base}/", wait_until="commit")  # then the session list, not the end of every download
    page.wait_for_selector("#sessions:not([hidden])")
    t1 = time.perf_counter()
    page.wait_for_function("performance.getEntriesByName('sessions-painted').length > 0")
    painted = page.evaluate("performance.getEntriesByName('sessions-painted')[0].startTime") / 1000
    page.click("button[data-session=first]")
    page.wait_for_function(LOADED.format(prev="null"), timeout=60000)
    t2 = time.perf_counter()
    page.close()
    return t1 - t0, t2 - t1, t2 - t0, painted


def ms(runs: list[tuple[float, ...]], k: int) -> str:
    """The median of the ``k``-th figure of ``runs``, in ms."""
    return f"{1000 * statistics.median(r[k] for r in runs):.0f} ms"


if __name__ == "__main__":
    main()

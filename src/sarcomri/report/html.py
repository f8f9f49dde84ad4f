"""The HTML report of a run: every section whose inputs exist, laid out by a Jinja2 template.

``<out>/report.html`` and ``<out>/model_card.md`` (``<out>`` = ``<run>/report`` by default), with
``<out>/report.pdf`` when asked, are built in a temporary folder and moved into place only when complete
(:func:`sarcomri.io.atomic.atomic_directory`), so a report's page, its figures and its PDF always belong together.

The figures are embedded in the page as ``data:`` URIs (``assets="embed"``, the default: one file that can be
mailed alone), or kept as ``<out>/figures/*.png`` beside it (``assets="folder"``).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from sarcomri import __version__
from sarcomri.cohort.manifest import Cohort
from sarcomri.errors import InputError
from sarcomri.io.atomic import atomic_directory, write_text
from sarcomri.report.derived import study_reader_cut
from sarcomri.report.embed import file_data_uri
from sarcomri.report.layout import Section, define_abbreviations
from sarcomri.report.sources import RunInputs, load_run, study_layout
from sarcomri.runs import TABLES, Run, StudyRun

TEMPLATES = Path(__file__).parent / "templates"
REPORT = "report.html"
MODEL_CARD = "model_card.md"
PDF = "report.pdf"
FIGURES = "figures"
#: Where the figures go: into the page (``data:`` URIs) or a ``figures/`` folder beside it.
ASSETS = ("embed", "folder")
logger = logging.getLogger("sarcomri.report")


def environment() -> Environment:
    """The Jinja2 environment of the report templates (HTML autoescaped)."""
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(("html", "html.j2")),
                       trim_blocks=True, lstrip_blocks=True)


def render_html(sections: Sequence[Section], title: str, subtitle: str = "", run_name: str = "",
                expand: bool = False) -> str:
    """The report page from its sections; ``expand``: folded tables open (the page printed to PDF)."""
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return environment().get_template("report.html.j2").render(
        sections=list(sections), title=title, subtitle=subtitle, run_name=run_name, version=__version__,
        created=created, expand=expand)


def embed_figures(sections: Sequence[Section], folder: Path) -> None:
    """Point each figure's ``src`` at its file (``folder / path``) as a ``data:`` URI."""
    for section in sections:
        for figure in section.figures:
            figure.src = file_data_uri(folder / figure.path)


def write_pdf(folder: Path, sections: Sequence[Section], title: str, subtitle: str, run_name: str) -> Path:
    """``<folder>/report.pdf``: the page with its folded tables open, printed by headless Chromium
    (:func:`sarcomri.report.pdf.print_pdf`); the page printed is a temporary file in ``folder``."""
    from sarcomri.report.pdf import print_pdf

    page = write_text(folder / ".report-print.html", render_html(sections, title, subtitle, run_name, expand=True),
                      overwrite=True)
    try:
        return print_pdf(page, folder / PDF)
    finally:
        page.unlink(missing_ok=True)


def build_sections(inputs: RunInputs, figures_dir: Path, segmentation_dirs: Sequence[str | Path] = (),
                   gradcam: bool = True, transfer_dir: str | Path | None = None,
                   figure_dirs: Sequence[str | Path] = (), rel: str = FIGURES,
                   paper_dirs: Sequence[Path] = ()) -> list[Section]:
    """Every section whose inputs exist, in reading order (figures are written into ``figures_dir``);
    ``paper_dirs``: the folders of paper-format tables (:mod:`sarcomri.report.papertables`)."""
    from sarcomri.report.calibration import calibration_section
    from sarcomri.report.curves import roc_section
    from sarcomri.report.misdiagnosis import misdiagnosis_section
    from sarcomri.report.papertables import paper_section
    from sarcomri.report.segmentation import found_figures, segmentation_section, transfer_section
    from sarcomri.report.tables import model_vs_readers, reading_sessions, run_tables

    builders: list[tuple[str, Callable[[], Section | None]]] = [
        ("tables as published", lambda: paper_section(list(paper_dirs))),
        ("ROC curves", lambda: roc_section(inputs, figures_dir, rel)),
        ("calibration", lambda: calibration_section(inputs, figures_dir, rel)),
        ("classification tables", lambda: run_tables(inputs)),
        ("model vs readers", lambda: model_vs_readers(inputs)),
        ("reading sessions", lambda: reading_sessions(inputs)),
        ("misdiagnoses", lambda: misdiagnosis_section(inputs)),
    ]
    if gradcam:
        from sarcomri.report.gradcam import gradcam_section

        builders.append(("Grad-CAM", lambda: gradcam_section(inputs, figures_dir, rel)))
    builders.append(("segmentation", lambda: segmentation_section(list(segmentation_dirs), figures_dir, rel,
                                                                   inputs.cohort)))
    if transfer_dir is not None:
        builders.append(("transfer learning", lambda: transfer_section(transfer_dir, figures_dir, rel)))
    sections = []
    for name, build in builders:
        section = build()
        if section is not None:
            sections.append(section)
        else:
            logger.info("report: no %s (inputs absent)", name)
    extra = found_figures(Run(inputs.run_dir).figures_dir, figures_dir, rel, "run")
    for k, folder in enumerate(figure_dirs):
        extra += found_figures(Path(folder), figures_dir, rel, f"extra{k}")
    if extra:
        sections.append(Section(id="figures", title="Other figures", figures=extra))
    return sections


def paper_folders(run_dir: Path, classification: Path, segmentation_dirs: Sequence[str | Path],
                  transfer_dir: str | Path | None) -> list[Path]:
    """The ``paper/`` folders of a run (or study) and of its parts, each once, in reading order."""
    folders = [Run(run_dir).paper_dir, Run(classification).paper_dir,
               *(Run(d).paper_dir for d in segmentation_dirs)]
    if transfer_dir is not None:
        folders.append(Run(transfer_dir).paper_dir)
    return list(dict.fromkeys(f.resolve() for f in folders))


def _check_out(out_dir: Path) -> None:
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / REPORT).is_file():
        raise InputError(out_dir, "exists and is not a sarcomri report folder; choose another --out")


def build_report(run_dir: str | Path, cohort: Cohort | None = None,
                 segmentation_dirs: Sequence[str | Path] | None = None, out_dir: str | Path | None = None,
                 gradcam: bool = True, readers: str | Path | None = None, transfer_dir: str | Path | None = None,
                 figure_dirs: Sequence[str | Path] = (), assets: str = "embed", pdf: bool = False) -> Path:
    """Write the HTML report of a run (or study) folder and return the path of ``report.html``.

    ``run_dir``: a classification run folder, or a ``sarcomri study run`` folder, whose classification run,
    ``readers/readers.csv``, ``segmentation/`` and ``transfer/`` are then found by themselves.
    ``cohort``: the cohort when the run's config does not name it; ``segmentation_dirs``: segmentation run
    folders (per-case tables, overlays, figures); ``readers``: a readers.csv other than the run's or the
    cohort's; ``transfer_dir``: a transfer-learning study folder; ``figure_dirs``: more folders of PNGs to
    show. ``out_dir``: default ``<run>/report`` (replaced as a whole when it holds an older report).
    ``gradcam``: explain the run's models on test slices (needs ``models/`` and ``cache/``).
    ``assets``: "embed" (figures inside report.html) or "folder" (``figures/`` beside it). ``pdf``: also
    ``report.pdf``, printed by headless Chromium (:class:`sarcomri.report.pdf.PdfError` when none is installed).
    """
    from sarcomri.report.modelcard import model_card, model_card_section, render_markdown

    if assets not in ASSETS:
        raise InputError(None, f"assets must be one of {', '.join(ASSETS)}, not {assets!r}")

    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else Run(run_dir).report_dir
    layout = study_layout(run_dir)
    classification = run_dir
    readers_tables, reader_cut = None, None  # a bare run: its own readers/tables/, the config's default cut
    if layout is not None:
        classification = layout.classification
        reader_cut = study_reader_cut(run_dir)  # the study's readers.cut, as its readers stage used it
        if readers is None and layout.readers is not None:  # the study's reads: the readers stage's tables
            readers_tables = StudyRun(run_dir).readers_dir / TABLES
        readers = readers if readers is not None else layout.readers
        segmentation_dirs = segmentation_dirs if segmentation_dirs is not None else layout.segmentation
        transfer_dir = transfer_dir if transfer_dir is not None else layout.transfer
    _check_out(out_dir)
    inputs = load_run(classification, cohort, readers, readers_tables, reader_cut)
    name = Run(run_dir).name
    with atomic_directory(out_dir, overwrite=True, replaceable=lambda d: (d / REPORT).is_file()) as tmp:
        figures = tmp / FIGURES
        figures.mkdir()
        paper_dirs = paper_folders(run_dir, classification, segmentation_dirs or (), transfer_dir)
        sections = build_sections(inputs, figures, segmentation_dirs or (), gradcam, transfer_dir, figure_dirs,
                                  paper_dirs=paper_dirs)
        card = model_card(inputs) if inputs.tables else None
        if card is not None:
            sections.append(model_card_section(card))
            write_text(tmp / MODEL_CARD, render_markdown(card), overwrite=True)
        define_abbreviations(sections)
        if assets == "embed":
            embed_figures(sections, tmp)
            shutil.rmtree(figures)
        title, subtitle = f"sarcomri report: {name}", _subtitle(inputs)
        write_text(tmp / REPORT, render_html(sections, title, subtitle, name), overwrite=True)
        if pdf:
            write_pdf(tmp, sections, title, subtitle, name)
    return out_dir / REPORT


def _subtitle(inputs: RunInputs) -> str:
    """'sarcoma vs leiomyoma - 24 patients' (the task, and the cohort's size when known)."""
    pos, neg = inputs.class_names
    subtitle = f"{pos} vs {neg}" if inputs.positive_label else "segmentation"
    if inputs.cohort is not None:
        subtitle += f" - {len(inputs.cohort.patients)} patients"
    return subtitle

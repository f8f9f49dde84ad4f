"""The three synthetic tasks: labels, prevalence, sequences, hospitals, availability and clinical columns.

Figures from SYNTHETIC.md (the published studies) and where they are used:

* sarcoma: 63 sarcomas vs 200 leiomyomas (prevalence 63/263); three hospitals; T2 axial and sagittal in 98%
  of patients, DWI in 97%, the other sequences less often and depending on the hospital; no patient had all
  15 sequences (here every hospital lacks at least one sequence in its protocol).
* carcinosarcoma: 52 carcinosarcomas vs 279 endometrial carcinomas (prevalence 52/331); T2WI in all, ADC in
  42/52 and CE-T1WI in 50/52 carcinosarcomas (applied to both classes, so that a missing sequence does not
  give the class away).
* segmentation: 320 uterine malignancies, 96.5% endometrial carcinoma, then endometrial stromal sarcoma,
  leiomyosarcoma and carcinosarcoma; tumour volume log-normal, median 4.2 cm^3, 0.14 to 270 cm^3; DWI at
  b = 0 and 1000 s/mm^2 over a 200 mm field of view.
* sts: the soft-tissue sarcoma segmentation study: 299 patients, leiomyosarcoma 67, myxofibrosarcoma 55,
  myxoid liposarcoma 60, undifferentiated pleomorphic sarcoma 70, intramuscular myxoma 47 (exact proportions
  for any cohort size, :func:`sts_histology`); extremity, trunk, abdomen and pelvis; T1, fat-suppressed T2
  (``T2FS``, STIR-like) and fat-suppressed contrast-enhanced T1 (``T1CEFS``) co-registered on one axial grid of
  about 0.98 x 0.98 x 3.3 mm. The site mix per histology, the tumour sizes and signal ratios are assumptions
  (:data:`STS_HISTOLOGIES`, docs/synthetic.md).

Hospital mix, the non-core availabilities, ages, stages and the tumour placements are assumptions (no
published figure); the hospitals differ in scanner gain, noise and bias-field strength, never in case mix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sarcomri.cohort.sequences import STS_SEQUENCES
from sarcomri.synth.acquisition import Protocol
from sarcomri.synth.latent import AGE

CENTRES = ("A", "B", "C")
CENTRE_WEIGHTS = (0.45, 0.35, 0.20)
#: Scanner differences between hospitals: gain (arbitrary units), noise (relative), bias-field strength.
SCANNERS = {"A": (1000.0, 0.020, 0.12), "B": (1400.0, 0.026, 0.18), "C": (700.0, 0.032, 0.24)}
DWI_GROUP = ("DWI_b0", "DWI_b1000", "ADC")
UTERINE_SEQUENCES = (
    "T2axi", "T2sag", "T2cor", "fsT2axi", "T1axi", "T1sag", "fsT1axi", "fsT1sag",
    "fsT1CEaxi", "fsT1CEsag", "fsT1CEcor", "dynamicaxi", "dynamicsag", *DWI_GROUP,
)
#: Probability that a hospital's protocol acquired a sequence (DWI stands for DWI_b0, DWI_b1000 and ADC).
AVAILABILITY = {
    "T2axi": (0.98, 0.98, 0.98), "T2sag": (0.98, 0.98, 0.98), "T2cor": (0.55, 0.25, 0.40),
    "fsT2axi": (0.0, 0.65, 0.45), "T1axi": (0.85, 0.70, 0.90), "T1sag": (0.30, 0.0, 0.25),
    "fsT1axi": (0.70, 0.55, 0.60), "fsT1sag": (0.40, 0.35, 0.55), "fsT1CEaxi": (0.80, 0.65, 0.85),
    "fsT1CEsag": (0.60, 0.75, 0.45), "fsT1CEcor": (0.30, 0.20, 0.0), "dynamicaxi": (0.45, 0.0, 0.60),
    "dynamicsag": (0.0, 0.50, 0.25), "DWI": (0.97, 0.97, 0.97),
}


@dataclass(frozen=True)
class Task:
    """What a synthetic task generates."""

    name: str
    labels: tuple[str, ...]
    positive_label: str | None
    prevalence: float  # share of the first label (the positive one for binary tasks)
    default_sequences: tuple[str, ...]
    availability: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    protocol: Protocol = Protocol()
    code: int = 0  # mixes into the seed so that tasks with the same seed differ

    def available(self, sequence: str, centre: str) -> float:
        """Probability that a patient of ``centre`` has ``sequence``."""
        key = "DWI" if sequence in DWI_GROUP else sequence
        if key in self.availability:
            return self.availability[key][CENTRES.index(centre)]
        return AVAILABILITY.get(key, (1.0,) * 3)[CENTRES.index(centre)]


TASKS = {
    "sarcoma": Task("sarcoma", ("sarcoma", "leiomyoma"), "sarcoma", 63 / 263,
                    ("T2axi", "T2sag", "DWI_b0", "DWI_b1000", "ADC", "fsT1CEaxi"), code=1),
    "carcinosarcoma": Task(
        "carcinosarcoma", ("carcinosarcoma", "endometrial_carcinoma"), "carcinosarcoma", 52 / 331,
        ("T2axi", "DWI_b0", "DWI_b1000", "ADC", "fsT1CEaxi"),
        availability={"T2axi": (1.0,) * 3, "T2sag": (0.95,) * 3, "DWI": (42 / 52,) * 3, "fsT1CEaxi": (50 / 52,) * 3},
        code=2),
    "segmentation": Task("segmentation", ("tumour",), None, 1.0, DWI_GROUP,
                         availability={"DWI": (1.0,) * 3, "T2axi": (0.9,) * 3},
                         protocol=Protocol(fov_mm=200.0, size=128, slices=20), code=3),
    # 160 mm field of view over 164 pixels and 48 slices: 0.98 x 0.98 x 3.3 mm (acquisition.grid_for)
    "sts": Task("sts", ("tumour",), None, 1.0, STS_SEQUENCES, availability={s: (1.0,) * 3 for s in STS_SEQUENCES},
                protocol=Protocol(fov_mm=160.0, size=164, slices=48), code=4),
}

SEGMENTATION_HISTOLOGY = {"endometrial_carcinoma": 0.965, "endometrial_stromal_sarcoma": 0.015,
                          "leiomyosarcoma": 0.012, "carcinosarcoma": 0.008}
#: Tumour volume of the DWI segmentation study: log-normal, median 4.2 cm^3; sigma so that 0.14 and 270 cm^3
#: are about the extremes of 320 patients (2.9 SD), truncated to that range.
SEG_VOLUME = (4.2, 1.30, 0.14, 270.0)


def is_positive(index: int, prevalence: float, phase: float) -> bool:
    """Class of patient ``index``: a low-discrepancy sequence with the exact prevalence for any cohort size.

    Patient ``i`` is positive when ``floor((i + 1) p + phase) > floor(i p + phase)``: every prefix of the
    cohort holds round(N p) positives (within one), and a patient's class does not depend on N.
    """
    return int(np.floor((index + 1) * prevalence + phase)) > int(np.floor(index * prevalence + phase))


def draw_centre(rng: np.random.Generator) -> str:
    return CENTRES[int(rng.choice(3, p=CENTRE_WEIGHTS))]


def draw_availability(task: Task, centre: str, sequences: tuple[str, ...], rng_for) -> list[str]:
    """The requested sequences this patient has; ``rng_for(name)`` gives the generator of one sequence.

    Each sequence (DWI as one acquisition) has its own random stream, so what a patient has does not depend
    on which other sequences were requested. A patient left with none gets the first requested sequence.
    """
    have = {}
    for seq in sequences:
        key = "DWI" if seq in DWI_GROUP else seq
        if key not in have:
            have[key] = bool(rng_for(key).random() < task.available(seq, centre))
    out = [s for s in sequences if have["DWI" if s in DWI_GROUP else s]]
    if not out:
        first = sequences[0]
        out = [s for s in sequences if s in DWI_GROUP] if first in DWI_GROUP else [first]
    return out


def placement(task: str, positive: bool, latents: dict, rng: np.random.Generator, site: str | None = None) -> str:
    """Where the tumour grows (class-independent except through the latent ``exophytic`` flag)."""
    if task == "sarcoma":
        return str(rng.choice(["intramural", "submucosal", "subserosal"], p=[0.6, 0.2, 0.2]))
    if task == "carcinosarcoma":
        return "exophytic" if latents.get("exophytic", 0) >= 0.5 else "endometrial"
    return "cervical" if site == "cervix" else "endometrial"


def _age(task: str, positive: bool, rng: np.random.Generator) -> int:
    mean, sd = AGE[task][0 if positive else 1]
    return int(np.clip(round(rng.normal(mean, sd)), 18, 95))


def clinical(task: str, positive: bool, comp_attrs: dict, latents: dict, rng: np.random.Generator) -> dict:
    """Clinical columns of patients.csv (age, histology, stage, grade, degeneration flags, diameter)."""
    out: dict = {}
    if task == "sarcoma":
        out["age"] = _age(task, positive, rng)
        out["site"] = "uterine corpus"
        out["histology"] = comp_attrs["histology"]
        out["stage"] = (str(rng.choice(["I", "II", "III", "IV"], p=[0.60, 0.15, 0.12, 0.13])) if positive else "")
        out["degenerated"] = "" if positive else ("yes" if comp_attrs["degenerated"] else "no")
        out["irregular_margin"] = "" if positive else ("yes" if comp_attrs["irregular_margin"] else "no")
    elif task == "carcinosarcoma":
        out["age"] = _age(task, positive, rng)
        out["site"] = "uterine corpus"
        out["histology"] = comp_attrs["histology"]
        out["grade"] = comp_attrs.get("grade", "")
        out["stage"] = str(rng.choice(["I", "II", "III", "IV"], p=[0.45, 0.1, 0.3, 0.15] if positive
                                      else [0.72, 0.08, 0.14, 0.06]))
        out["exophytic"] = "yes" if latents["exophytic"] >= 0.5 else "no"
    out["diameter_mm"] = round(float(latents["diameter_mm"]), 1)
    return out


def segmentation_patient(rng: np.random.Generator) -> tuple[dict, dict]:
    """Latent variables and clinical columns of one segmentation patient (no class)."""
    names = list(SEGMENTATION_HISTOLOGY)
    histology = names[int(rng.choice(len(names), p=list(SEGMENTATION_HISTOLOGY.values())))]
    median, sigma, lo, hi = SEG_VOLUME
    vol = float(np.clip(np.exp(rng.normal(np.log(median), sigma)), lo, hi))
    diameter = 2.0 * (3.0 * vol * 1000.0 / (4.0 * np.pi * 0.766)) ** (1 / 3)  # mean axes ratio 0.875^2
    site = "cervix" if rng.random() < 0.2 else "corpus"
    latents = dict(diameter_mm=diameter, margin=float(rng.beta(2.0, 5.0)),
                   t2_ratio=float(rng.lognormal(np.log(1.25), 0.25)),
                   heterogeneity=float(rng.lognormal(np.log(0.12), 0.45)), necrosis=float(rng.beta(1.2, 12.0)),
                   adc=float(rng.normal(0.85, 0.15)), enhancement=float(rng.normal(0.6, 0.2)), exophytic=0.0)
    clin = dict(age=int(np.clip(round(rng.normal(60, 11)), 28, 90)), site=site, histology=histology,
                stage=str(rng.choice(["I", "II", "III", "IV"], p=[0.7, 0.1, 0.14, 0.06])),
                volume_cm3=round(vol, 2), diameter_mm=round(diameter, 1))
    return latents, clin


#: The soft-tissue sarcoma study's histologies and patient counts (299 patients).
STS_COUNTS = {"leiomyosarcoma": 67, "myxofibrosarcoma": 55, "myxoid_liposarcoma": 60,
              "undifferentiated_pleomorphic_sarcoma": 70, "intramuscular_myxoma": 47}
STS_SITES = ("extremity", "trunk", "abdomen", "pelvis")


@dataclass(frozen=True)
class StsHistology:
    """Assumed per-histology make-up of the synthetic STS cohort (no published figure but the counts).

    ``sites``: probabilities of extremity, trunk, abdomen, pelvis; ``superficial``: share above the fascia;
    ``diameter``: log-normal (median mm, sigma) of the longest diameter, truncated to 25-140 mm; the signal
    ratios are (mean, SD) relative to skeletal muscle: ``t1`` on T1, ``t2`` on fat-suppressed T2, ``enhancement``
    after contrast; ``heterogeneity`` (median, sigma) log-normal, ``necrosis`` and ``margin`` beta (a, b).
    """

    sites: tuple[float, float, float, float]
    superficial: float
    diameter: tuple[float, float]
    t1: tuple[float, float]
    t2: tuple[float, float]
    enhancement: tuple[float, float]
    heterogeneity: tuple[float, float]
    necrosis: tuple[float, float]
    margin: tuple[float, float]


#: Myxoid tumours (myxoid liposarcoma, myxoma, myxofibrosarcoma) are dark on T1 and fluid-bright on T2FS;
#: leiomyosarcoma and UPS are close to muscle on T1 (hard to outline there), enhance strongly around a
#: necrotic core and are heterogeneous; myxofibrosarcoma is infiltrative (irregular margin, often superficial);
#: the myxoma is small, smooth, homogeneous and barely enhancing.
STS_HISTOLOGIES = {
    "leiomyosarcoma": StsHistology((0.35, 0.15, 0.30, 0.20), 0.10, (70.0, 0.35), (1.05, 0.10), (2.4, 0.35),
                                   (1.45, 0.25), (0.22, 0.35), (2.0, 12.0), (2.5, 5.0)),
    "myxofibrosarcoma": StsHistology((0.75, 0.20, 0.0, 0.05), 0.60, (60.0, 0.35), (0.80, 0.10), (3.2, 0.45),
                                     (1.50, 0.25), (0.20, 0.35), (1.2, 20.0), (6.0, 3.0)),
    "myxoid_liposarcoma": StsHistology((0.80, 0.05, 0.05, 0.10), 0.05, (95.0, 0.30), (0.65, 0.08), (4.0, 0.40),
                                       (1.15, 0.25), (0.14, 0.35), (1.0, 40.0), (2.0, 6.0)),
    "undifferentiated_pleomorphic_sarcoma": StsHistology((0.65, 0.20, 0.05, 0.10), 0.15, (85.0, 0.35),
                                                         (1.00, 0.10), (2.6, 0.40), (1.60, 0.30), (0.30, 0.35),
                                                         (3.0, 9.0), (3.5, 4.0)),
    "intramuscular_myxoma": StsHistology((0.75, 0.15, 0.0, 0.10), 0.0, (45.0, 0.30), (0.70, 0.08), (4.2, 0.35),
                                         (0.70, 0.20), (0.08, 0.35), (1.0, 80.0), (1.2, 8.0)),
}
STS_DIAMETER_MM = (25.0, 140.0)


def sts_histology(index: int) -> str:
    """Histology of STS patient ``index``: the histology furthest behind its published share (ties: the larger
    share), so every prefix of the cohort holds each histology within one patient of ``N * share``, and a
    patient's histology does not depend on N."""
    total = sum(STS_COUNTS.values())
    names = sorted(STS_COUNTS, key=lambda h: -STS_COUNTS[h])
    counts = dict.fromkeys(names, 0)
    pick = names[0]
    for i in range(index + 1):
        pick = max(names, key=lambda h: (i + 1) * STS_COUNTS[h] / total - counts[h])
        counts[pick] += 1
    return pick


def sts_patient(index: int, rng: np.random.Generator) -> tuple[dict, dict]:
    """Latent variables and clinical columns of STS patient ``index`` (one class: tumour)."""
    histology = sts_histology(index)
    h = STS_HISTOLOGIES[histology]
    site = STS_SITES[int(rng.choice(len(STS_SITES), p=np.asarray(h.sites) / sum(h.sites)))]
    superficial = bool(rng.random() < (h.superficial if site in ("extremity", "trunk") else 0.0))
    lo, hi = STS_DIAMETER_MM
    diameter = float(np.clip(np.exp(rng.normal(np.log(h.diameter[0]), h.diameter[1])), lo, hi))
    latents = dict(diameter_mm=diameter, margin=float(rng.beta(*h.margin)),
                   t1_ratio=float(max(rng.normal(*h.t1), 0.3)), t2_ratio=float(max(rng.normal(*h.t2), 1.2)),
                   heterogeneity=float(rng.lognormal(np.log(h.heterogeneity[0]), h.heterogeneity[1])),
                   necrosis=float(rng.beta(*h.necrosis)), enhancement=float(max(rng.normal(*h.enhancement), 0.2)),
                   superficial=float(superficial))
    clin = dict(age=int(np.clip(round(rng.normal(58, 15)), 18, 92)), sex=str(rng.choice(["F", "M"])), site=site,
                histology=histology, depth="superficial" if superficial else "deep", diameter_mm=round(diameter, 1))
    return latents, clin

"""Per-patient latent variables by class, and the ideal observer that reads them.

Every synthetic tumour is drawn from a *mixture*: the class (``sarcoma`` / ``leiomyoma``, ...) picks a list
of hidden components (a histology, a degenerated leiomyoma, an endometrial carcinoma grade), the component
is drawn by its weight, and then each latent variable is drawn independently from the component's
distribution (scipy.stats frozen distributions). The images are rendered from the latent variables plus
class-independent nuisance (anatomy, position, noise, bias field), so the latent variables hold every bit
of class information an image has.

The **ideal observer** ranks patients by the likelihood ratio of the two class-conditional densities of
the observable latent variables, computed exactly from this generative model (a mixture of products of
independent densities; hidden component flags are summed out). Its AUC is the best any classifier of the
images could reach in the population; it is estimated by Monte Carlo with a large fixed-seed sample from the
generator (``MC_PER_CLASS`` patients per class, standard error about 0.001). The same computation restricted
to the latent variables a sequence shows gives per-sequence ceilings.

Latent variables (columns of latent.csv):

=============== ==============================================================================
diameter_mm     longest diameter of the tumour (mm) before margin perturbation
margin          margin irregularity, 0 (smooth ellipsoid) to 1 (lobulated, infiltrative)
t2_ratio        tumour / myometrium signal on T2-weighted images
heterogeneity   coefficient of variation of the tumour's texture (haemorrhage, oedema, cellularity)
necrosis        fraction of the tumour volume that is necrotic or cystic (fluid-like, non-enhancing)
adc             mean apparent diffusion coefficient of the viable tumour (10^-3 mm^2/s)
enhancement     tumour / myometrium signal after contrast (for carcinosarcoma, the enhancement
                integral ratio of the dynamic study)
exophytic       1 when the tumour grows out of the uterine contour (carcinosarcoma task only)
=============== ==============================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

import numpy as np
from scipy import stats
from scipy.special import logsumexp

#: Monte Carlo sample size per class for the ideal-observer AUC (seed ``MC_SEED``).
MC_PER_CLASS = 100_000
MC_SEED = 20_240_601
LATENTS = ("diameter_mm", "margin", "t2_ratio", "heterogeneity", "necrosis", "adc", "enhancement", "exophytic")
SHAPE = ("diameter_mm", "margin", "exophytic", "necrosis", "heterogeneity")


def _ln(median: float, sigma: float):
    return stats.lognorm(s=sigma, scale=median)


@dataclass(frozen=True)
class Component:
    """One hidden sub-population of a class: a name, its weight within the class, its latent distributions."""

    name: str
    weight: float
    dists: dict[str, Any]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClassModel:
    """A class (a label) as a mixture of components."""

    label: str
    components: tuple[Component, ...]

    @property
    def weights(self) -> np.ndarray:
        w = np.array([c.weight for c in self.components], dtype=float)
        return w / w.sum()


@dataclass(frozen=True)
class LatentModel:
    """The two classes of a binary task (positive first) and the latent variables they share."""

    positive: ClassModel
    negative: ClassModel
    latents: tuple[str, ...]

    def classes(self) -> tuple[ClassModel, ClassModel]:
        return self.positive, self.negative


# ---------------------------------------------------------------------------------------------- sarcoma
# Appearance profiles (SYNTHETIC.md): sarcoma large, T2-hyperintense, heterogeneous, irregular, necrotic, low
# ADC; leiomyoma smaller, T2-dark, homogeneous, smooth; degenerated leiomyoma mimics sarcoma (higher T2,
# heterogeneous, cystic) but keeps a higher ADC; STUMP and adenosarcoma look closer to benign.
_SARCOMA_TYPICAL = dict(
    diameter_mm=_ln(80, 0.45), margin=stats.beta(3.0, 3.3), t2_ratio=_ln(1.38, 0.32),
    heterogeneity=_ln(0.22, 0.42), necrosis=stats.beta(2.0, 4.8), adc=stats.norm(0.97, 0.22),
    enhancement=_ln(1.00, 0.35),
)
_SARCOMA_LOWGRADE = dict(
    diameter_mm=_ln(62, 0.45), margin=stats.beta(1.7, 6.5), t2_ratio=_ln(0.90, 0.32),
    heterogeneity=_ln(0.11, 0.42), necrosis=stats.beta(1.0, 20.0), adc=stats.norm(1.15, 0.22),
    enhancement=_ln(0.92, 0.32),
)
_LEIOMYOMA = dict(
    diameter_mm=_ln(60, 0.45), margin=stats.beta(1.5, 7.0), t2_ratio=_ln(0.80, 0.30),
    heterogeneity=_ln(0.10, 0.40), necrosis=stats.beta(1.0, 30.0), adc=stats.norm(1.20, 0.22),
    enhancement=_ln(0.90, 0.30),
)
_DEGENERATED = dict(
    diameter_mm=_ln(68, 0.45), margin=stats.beta(2.0, 5.0), t2_ratio=_ln(1.15, 0.35),
    heterogeneity=_ln(0.18, 0.45), necrosis=stats.beta(1.8, 5.0), adc=stats.norm(1.35, 0.28),
    enhancement=_ln(0.70, 0.40),
)
_IRREGULAR_MARGIN = stats.beta(3.5, 4.0)

#: Sarcoma histologies (57% leiomyosarcoma as published; the rest split as assumed here) and their look.
SARCOMA_HISTOLOGIES = {
    "leiomyosarcoma": (0.57, _SARCOMA_TYPICAL),
    "endometrial_stromal_sarcoma": (0.18, _SARCOMA_TYPICAL),
    "undifferentiated_sarcoma": (0.09, _SARCOMA_TYPICAL),
    "spindle_cell_sarcoma": (0.06, _SARCOMA_TYPICAL),
    "adenosarcoma": (0.05, _SARCOMA_LOWGRADE),
    "STUMP": (0.05, _SARCOMA_LOWGRADE),
}
#: Leiomyoma sub-populations: 33% degenerated, 5.5% irregular margins, 4.5% both (published).
LEIOMYOMA_MIX = {
    (False, False): 0.66, (False, True): 0.01, (True, False): 0.285, (True, True): 0.045,
}


def sarcoma_model() -> LatentModel:
    """Uterine sarcoma (positive) vs leiomyoma."""
    pos = ClassModel("sarcoma", tuple(
        Component(h, w, d, {"histology": h}) for h, (w, d) in SARCOMA_HISTOLOGIES.items()))
    neg = []
    for (degen, irregular), w in LEIOMYOMA_MIX.items():
        dists = dict(_DEGENERATED if degen else _LEIOMYOMA)
        if irregular:
            dists["margin"] = _IRREGULAR_MARGIN
        name = ("degenerated" if degen else "ordinary") + ("_irregular" if irregular else "")
        neg.append(Component(name, w, dists, {"histology": "leiomyoma", "degenerated": degen,
                                              "irregular_margin": irregular}))
    return LatentModel(pos, ClassModel("leiomyoma", tuple(neg)), LATENTS[:-1])


# ------------------------------------------------------------------------------------- carcinosarcoma
# Carcinosarcoma: larger, often exophytic, heterogeneous, necrotic, strong and variable enhancement; mean ADC
# equal to endometrial carcinoma overall but higher than grade 2-3. Enhancement integral ratio set so that
# the cut 0.67 gives sensitivity 76% and specificity 84% and the AUC is 0.83 (normal, unequal variances).
_EC_COMMON = dict(
    diameter_mm=_ln(38, 0.45), margin=stats.beta(2.0, 5.0), t2_ratio=_ln(1.25, 0.25),
    heterogeneity=_ln(0.11, 0.50), necrosis=stats.beta(1.2, 12.0), enhancement=stats.norm(0.521, 0.15),
    exophytic=stats.bernoulli(0.06),
)
CARCINOSARCOMA = dict(
    diameter_mm=_ln(44, 0.45), margin=stats.beta(2.2, 4.8), t2_ratio=_ln(1.32, 0.28),
    heterogeneity=_ln(0.13, 0.50), necrosis=stats.beta(1.3, 9.0), adc=stats.norm(0.88, 0.15),
    enhancement=stats.norm(1.036, 0.519), exophytic=stats.bernoulli(0.40),
)
#: Endometrial carcinoma grades (assumed 40% grade 1) and their ADC (grade 2-3 lower than carcinosarcoma).
EC_GRADES = {1: (0.40, stats.norm(0.96, 0.15)), 2: (0.35, stats.norm(0.82, 0.13)), 3: (0.25, stats.norm(0.82, 0.13))}


def carcinosarcoma_model() -> LatentModel:
    """Carcinosarcoma (positive) vs endometrial carcinoma."""
    pos = ClassModel("carcinosarcoma", (Component("carcinosarcoma", 1.0, CARCINOSARCOMA,
                                                  {"histology": "carcinosarcoma"}),))
    neg = ClassModel("endometrial_carcinoma", tuple(
        Component(f"grade{g}", w, {**_EC_COMMON, "adc": adc}, {"histology": "endometrial_carcinoma",
                                                                  "grade": f"G{g}"})
        for g, (w, adc) in EC_GRADES.items()))
    return LatentModel(pos, neg, LATENTS)


#: Age at diagnosis (years) by class, normal (positive, negative): an assumption, sarcoma and carcinosarcoma
#: patients being older. Age is not drawn into the images; ``ideal_auc_with_age`` adds it to the ceiling.
AGE = {"sarcoma": ((54.0, 11.0), (46.0, 8.0)), "carcinosarcoma": ((66.0, 9.0), (60.0, 10.0))}

MODELS = {"sarcoma": sarcoma_model, "carcinosarcoma": carcinosarcoma_model}


@cache
def model_for(task: str) -> LatentModel:
    """The latent model of a binary task (``sarcoma`` or ``carcinosarcoma``)."""
    return MODELS[task]()


# --------------------------------------------------------------------------------------------- sampling
def draw_patient(model: LatentModel, positive: bool, rng: np.random.Generator) -> tuple[Component, dict[str, float]]:
    """One patient's hidden component and latent variables (draws in a fixed order from ``rng``)."""
    cls = model.positive if positive else model.negative
    comp = cls.components[int(rng.choice(len(cls.components), p=cls.weights))]
    values = {name: float(comp.dists[name].rvs(random_state=rng)) for name in model.latents}
    return comp, values


def draw_class(model: LatentModel, positive: bool, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``n`` patients of one class at once (for Monte Carlo): latent arrays and the component index."""
    cls = model.positive if positive else model.negative
    k = rng.choice(len(cls.components), size=n, p=cls.weights)
    out = {name: np.empty(n) for name in model.latents}
    for i, comp in enumerate(cls.components):
        sel = k == i
        for name in model.latents:
            out[name][sel] = comp.dists[name].rvs(size=int(sel.sum()), random_state=rng)
    out["component"] = k
    return out


# ------------------------------------------------------------------------------------- ideal observer
def _logdensity(dist, x: np.ndarray) -> np.ndarray:
    """log density (continuous) or log mass (discrete) of a frozen scipy.stats distribution."""
    return dist.logpmf(x) if isinstance(dist.dist, stats.rv_discrete) else dist.logpdf(x)


def _component_terms(cls: ClassModel, data: dict[str, np.ndarray], latents: tuple[str, ...]) -> np.ndarray:
    """log f_kj(x_j): array (components, latents, patients)."""
    terms = np.empty((len(cls.components), len(latents), len(data[latents[0]])))
    for k, comp in enumerate(cls.components):
        for j, name in enumerate(latents):
            terms[k, j] = _logdensity(comp.dists[name], np.asarray(data[name], dtype=float))
    return terms


def _class_log_density(cls: ClassModel, terms: np.ndarray, keep: list[int]) -> np.ndarray:
    """log p(x | class) from per-component, per-latent log densities, over the latents ``keep``."""
    return logsumexp(terms[:, keep, :].sum(axis=1) + np.log(cls.weights)[:, None], axis=0)


def _keep(model: LatentModel, visible: tuple[str, ...] | None) -> list[int]:
    return [j for j, n in enumerate(model.latents) if visible is None or n in visible]


def log_likelihood_ratio(model: LatentModel, data: dict[str, np.ndarray], visible: tuple[str, ...] | None = None
                         ) -> np.ndarray:
    """log p(x | positive) - log p(x | negative) over the ``visible`` latent variables (default: all)."""
    keep = _keep(model, visible)
    pos, neg = (_class_log_density(c, _component_terms(c, data, model.latents), keep) for c in model.classes())
    return pos - neg


@lru_cache(maxsize=4)
def _monte_carlo(task: str, n: int) -> tuple[np.ndarray, ...]:
    """The fixed-seed Monte Carlo sample of both classes as log-density terms under both classes."""
    model = model_for(task)
    rng = np.random.default_rng(MC_SEED)
    samples = [draw_class(model, flag, n, rng) for flag in (True, False)]
    return tuple(_component_terms(c, smp, model.latents).astype(np.float32)
                 for smp in samples for c in model.classes())


@dataclass(frozen=True)
class IdealObserver:
    """The ideal observer of a task: its AUC and the class-conditional distributions of its log LR."""

    task: str
    visible: tuple[str, ...]
    auc: float
    llr_positive: np.ndarray  # sorted log LR of the positive Monte Carlo sample
    llr_negative: np.ndarray

    def within_class_score(self, llr: np.ndarray, positive: np.ndarray) -> np.ndarray:
        """Normal scores of ``llr`` within its own class: Phi^-1 of its class-conditional CDF (N(0,1) by design)."""
        llr, positive = np.asarray(llr, float), np.asarray(positive, bool)
        out = np.empty_like(llr)
        for flag, ref in ((True, self.llr_positive), (False, self.llr_negative)):
            sel = positive == flag
            rank = np.searchsorted(ref, llr[sel], side="left") + np.searchsorted(ref, llr[sel], side="right")
            out[sel] = stats.norm.ppf((rank / 2 + 0.5) / (ref.size + 1))
        return out


def auc_from_scores(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(score_pos > score_neg) + 0.5 P(tie) (Mann-Whitney), via scipy."""
    u = stats.mannwhitneyu(pos, neg, alternative="two-sided", method="asymptotic").statistic
    return float(u / (pos.size * neg.size))


@lru_cache(maxsize=64)
def ideal_observer(task: str, visible: tuple[str, ...] | None = None, n: int = MC_PER_CLASS) -> IdealObserver:
    """The ideal observer of ``task`` using the ``visible`` latent variables (default all), by Monte Carlo."""
    model = model_for(task)
    keep = _keep(model, visible)
    pp, pn, np_, nn = _monte_carlo(task, n)  # terms of (positive sample | each class), (negative sample | ...)
    llr_pos = _class_log_density(model.positive, pp, keep) - _class_log_density(model.negative, pn, keep)
    llr_neg = _class_log_density(model.positive, np_, keep) - _class_log_density(model.negative, nn, keep)
    auc = auc_from_scores(llr_pos, llr_neg)
    return IdealObserver(task, tuple(visible or model.latents), auc, np.sort(llr_pos), np.sort(llr_neg))


@lru_cache(maxsize=8)
def ideal_auc_with_age(task: str, n: int = MC_PER_CLASS) -> float:
    """The ideal observer's AUC when age (independent of the imaging latents given the class) is added."""
    io = ideal_observer(task, None, n)
    (m1, s1), (m0, s0) = AGE[task]
    rng = np.random.default_rng(MC_SEED + 1)
    out = []
    for ref, (m, s) in ((io.llr_positive, (m1, s1)), (io.llr_negative, (m0, s0))):
        age = rng.normal(m, s, ref.size)
        out.append(ref + stats.norm.logpdf(age, m1, s1) - stats.norm.logpdf(age, m0, s0))
    return auc_from_scores(out[0], out[1])

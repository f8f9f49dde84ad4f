"""Phantom geometry: a female pelvis with a uterus and a tumour, painted as tissue labels on a lattice.

The anatomy is a cartoon built from ellipses and ellipsoids (body wall, pelvic fat, gluteal and psoas
muscles, sacrum, iliac wings and femoral heads with cortex and marrow, bladder, rectum, uterus with its
endometrium, cervix) whose sizes and positions vary from patient to patient independently of the class. The
tumour's size, margin irregularity and necrotic fraction come from the patient's latent variables; its
position (intramural, submucosal, subserosal; in the endometrial cavity; exophytic; cervical), shape and
orientation are class-independent nuisance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from sarcomri.synth.acquisition import Lattice

AIR, FAT, MUSCLE, MARROW, CORTEX, URINE, MYOMETRIUM, ENDOMETRIUM, CERVIX, BOWEL, TUMOUR, NECROSIS = range(12)
TISSUES = ("air", "fat", "muscle", "marrow", "cortex", "urine", "myometrium", "endometrium", "cervix", "bowel",
           "tumour", "necrosis")
#: Rendering caps (the latent values themselves are kept unclipped).
MAX_RADIUS_MM = 72.0
MAX_MARGIN = 1.0


@dataclass(frozen=True)
class Ellipsoid:
    """An ellipsoid: centre (mm), semi-axes (mm) and rotation (columns = its axes in world coordinates)."""

    centre: np.ndarray
    axes: np.ndarray
    rot: np.ndarray

    def half_extent(self) -> np.ndarray:
        return np.sqrt(((self.rot * self.axes) ** 2).sum(axis=1))

    def local(self, x, y, z) -> list[np.ndarray]:
        """Coordinates in the ellipsoid's frame, divided by its semi-axes (|q| <= 1 inside)."""
        d = (x - self.centre[0], y - self.centre[1], z - self.centre[2])
        return [(self.rot[0, i] * d[0] + self.rot[1, i] * d[1] + self.rot[2, i] * d[2]) / self.axes[i]
                for i in range(3)]

    def shrunk(self, mm: float) -> Ellipsoid:
        return Ellipsoid(self.centre, np.maximum(self.axes - mm, 0.5), self.rot)


@dataclass(frozen=True)
class TumourShape:
    """The tumour: a base ellipsoid whose radius varies with direction (lobulation, spiculation)."""

    body: Ellipsoid
    margin: float  # 0 smooth ... 1 irregular
    waves: np.ndarray  # (K, 3) unit vectors
    freqs: np.ndarray  # (K,)
    phases: np.ndarray  # (K,)
    amps: np.ndarray  # (K,)

    def max_scale(self) -> float:
        return float(np.exp(self.margin * np.abs(self.amps).sum()))

    def radius_scale(self, u: list[np.ndarray]) -> np.ndarray:
        """exp(margin * sum_k a_k cos(f_k v_k.u + phi_k)) for unit directions ``u``."""
        g = 0.0
        for v, f, p, a in zip(self.waves, self.freqs, self.phases, self.amps, strict=True):
            g = g + a * np.cos(f * (v[0] * u[0] + v[1] * u[1] + v[2] * u[2]) + p)
        return np.exp(self.margin * g)


@dataclass
class Phantom:
    """Tissue labels on the lattice, and the tumour's texture on its bounding box."""

    lattice: Lattice
    labels: np.ndarray  # uint8, lattice shape (z, y, x)
    box: tuple[slice, slice, slice]  # the tumour's bounding box on the lattice
    texture: np.ndarray  # float32 on box: unit-SD smooth random field inside the tumour
    tumour_mm3: float


def _rot_x(deg: float) -> np.ndarray:
    return Rotation.from_euler("x", deg, degrees=True).as_matrix()


def _paint(labels: np.ndarray, lat: Lattice, shape: Ellipsoid, value: int, only: np.ndarray | None = None) -> None:
    h = shape.half_extent()
    box = lat.index_box(shape.centre - h, shape.centre + h)
    if any(s.stop <= s.start for s in box):
        return
    q = shape.local(*lat.coords(box))
    inside = q[0] ** 2 + q[1] ** 2 + q[2] ** 2 <= 1.0
    view = labels[box]
    if only is not None:
        inside &= np.isin(view, only)
    view[inside] = value


def _paint_shell(labels, lat, shape: Ellipsoid, cortex_mm: float) -> None:
    _paint(labels, lat, shape, CORTEX)
    _paint(labels, lat, shape.shrunk(cortex_mm), MARROW)


def _ellipse_column(labels, lat: Lattice, cx, cy, ax, ay, value, zmin=-np.inf, zmax=np.inf, only=None) -> None:
    """Paint an elliptic cylinder along z (evaluated on one slice and broadcast)."""
    x, y = lat.axis(0)[None, :], lat.axis(1)[:, None]
    disk = ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 <= 1.0
    z = lat.axis(2)
    for k in np.nonzero((z >= zmin) & (z <= zmax))[0]:
        sl = labels[k]
        m = disk if only is None else disk & np.isin(sl, only)
        sl[m] = value


def _smooth_field(rng: np.random.Generator, shape, sigma_vox: float) -> np.ndarray:
    f = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma_vox, mode="reflect")
    return f / max(float(f.std()), 1e-6)


def draw_anatomy(rng: np.random.Generator) -> dict:
    """Class-independent patient anatomy: sizes and positions of the pelvic structures (mm)."""
    body = dict(ax=rng.uniform(118, 136), ay=rng.uniform(86, 102), cy=rng.uniform(4, 14), fat=rng.uniform(10, 28))
    theta = float(np.clip(rng.normal(50, 15), 10, 85))  # anteversion
    tilt = float(rng.normal(0, 8))
    rot_u = Rotation.from_euler("zx", [tilt, theta], degrees=True).as_matrix()  # fundus anterior-superior
    uterus = dict(centre=np.array([rng.normal(0, 5), rng.normal(0, 5), rng.normal(8, 6)]),
                  axes=np.array([32, 22, 40]) * rng.uniform(0.85, 1.15, 3), rot=rot_u)
    bladder_fill = rng.uniform(0.55, 1.1)
    return dict(body=body, uterus=uterus, bladder_fill=bladder_fill,
                bladder_shift=rng.normal(0, 4, 3), sacrum_tilt=rng.normal(30, 6))


def draw_tumour(rng: np.random.Generator, radius_mm: float, margin: float, placement: str, uterus: dict
                ) -> tuple[TumourShape, dict]:
    """The tumour's shape and pose, and the uterus after the tumour has enlarged it.

    ``placement``: intramural, submucosal, subserosal, endometrial, exophytic or cervical.
    """
    r = float(min(radius_mm, MAX_RADIUS_MM))
    axes = r * np.array([1.0, rng.uniform(0.75, 1.0), rng.uniform(0.75, 1.0)])
    rot = Rotation.random(random_state=rng).as_matrix()
    waves, freqs, amps, phases = _lobulation(rng)
    u_axes, u_rot, u_c = uterus["axes"].copy(), uterus["rot"], uterus["centre"]
    direction = rng.standard_normal(3)
    direction /= np.linalg.norm(direction)
    frac = rng.uniform(0.15, 0.35)
    if placement in ("intramural", "submucosal", "endometrial"):
        if placement == "submucosal":
            frac = rng.uniform(0.0, 0.1)
        if placement == "endometrial":  # in the cavity, displaced along the long axis
            direction = np.array([0.0, 0.0, 1.0 if rng.random() < 0.5 else -1.0])
            frac = rng.uniform(0.0, 0.2)
        offset = frac * direction * u_axes
        u_axes = np.maximum(u_axes, np.abs(offset) + 1.1 * r * np.array([1.0, 0.9, 0.9]) + 4.0)
        offset = frac * direction * u_axes
    elif placement in ("subserosal", "exophytic"):
        offset = direction * (u_axes + 0.15 * r)
    elif placement == "cervical":
        offset = np.array([0.0, 0.0, -(u_axes[2] + 14.0)])
    else:
        raise ValueError(f"unknown tumour placement {placement!r}")
    centre = u_c + u_rot @ offset
    shape = TumourShape(Ellipsoid(centre, axes, rot), float(np.clip(margin, 0, MAX_MARGIN)),
                        waves, freqs, phases, amps)
    return shape, {**uterus, "axes": u_axes}


def _lobulation(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The tumour outline's waves: 4 broad lobes and 3 fine ripples (unit directions, frequencies, amplitudes,
    phases)."""
    k = 7
    waves = rng.standard_normal((k, 3))
    waves /= np.linalg.norm(waves, axis=1, keepdims=True)
    freqs = np.concatenate([rng.uniform(1.5, 3.5, 4), rng.uniform(7, 11, 3)])
    amps = np.concatenate([rng.uniform(0.10, 0.22, 4), rng.uniform(0.03, 0.06, 3)])
    phases = rng.uniform(0, 2 * np.pi, k)
    return waves, freqs, amps, phases


def paint(lat: Lattice, anatomy: dict, uterus: dict, tumour: TumourShape, necrosis: float,
          rng: np.random.Generator) -> Phantom:
    """Paint the phantom on ``lat``: tissue labels, tumour and its necrotic core, and the tumour texture."""
    labels = np.zeros(lat.shape, dtype=np.uint8)
    b = anatomy["body"]
    _ellipse_column(labels, lat, 0, b["cy"], b["ax"], b["ay"], FAT)
    _ellipse_column(labels, lat, 0, b["cy"], b["ax"] - b["fat"], b["ay"] - b["fat"], MUSCLE)
    _ellipse_column(labels, lat, 0, b["cy"] + 4, b["ax"] - b["fat"] - 16, b["ay"] - b["fat"] - 14, FAT)
    for side in (-1, 1):
        _ellipse_column(labels, lat, side * 68, b["cy"] + 62, 42, 28, MUSCLE, only=[FAT, MUSCLE])
        _ellipse_column(labels, lat, side * 52, b["cy"] - 8, 16, 16, MUSCLE, zmin=-30, only=[FAT])
        _ellipse_column(labels, lat, side * 60, b["cy"] + 18, 9, 32, MUSCLE, zmax=5, only=[FAT])
    eye = np.eye(3)
    for side in (-1, 1):
        _paint_shell(labels, lat, Ellipsoid(np.array([side * 86.0, 12, -62]), np.full(3, 23.0), eye), 3.0)
        wing = Rotation.from_euler("z", side * 25, degrees=True).as_matrix()
        _paint_shell(labels, lat, Ellipsoid(np.array([side * 96.0, 38, 58]), np.array([13.0, 52, 58]), wing), 3.0)
    _paint_shell(labels, lat, Ellipsoid(np.array([0.0, b["cy"] + 72, 48]), np.array([46.0, 17, 62]),
                                        _rot_x(anatomy["sacrum_tilt"])), 3.0)
    _ellipse_column(labels, lat, 0, b["cy"] + 48, 15, 13, BOWEL, zmin=-110, zmax=40, only=[FAT, MUSCLE])
    u_c = uterus["centre"]
    fill = anatomy["bladder_fill"]
    bladder_c = np.array([u_c[0], u_c[1] - 42 - 8 * fill, u_c[2] - 34]) + anatomy["bladder_shift"]
    _paint(labels, lat, Ellipsoid(bladder_c, np.array([44, 28, 30]) * fill + 2.5, eye), MUSCLE, only=[FAT])
    _paint(labels, lat, Ellipsoid(bladder_c, np.array([44, 28, 30]) * fill, eye), URINE)
    u = Ellipsoid(u_c, uterus["axes"], uterus["rot"])
    long_axis = uterus["rot"][:, 2]
    cervix = Ellipsoid(u_c - long_axis * (uterus["axes"][2] + 14.0), np.array([16.0, 14, 20]), uterus["rot"])
    _paint(labels, lat, cervix, CERVIX)
    _paint(labels, lat, u, MYOMETRIUM)
    endo = Ellipsoid(u_c, np.array([uterus["axes"][0] * 0.35, 4.0, uterus["axes"][2] * 0.7]), uterus["rot"])
    _paint(labels, lat, endo, ENDOMETRIUM)

    return _with_tumour(lat, labels, tumour, necrosis, rng)


def _with_tumour(lat: Lattice, labels: np.ndarray, tumour: TumourShape, necrosis: float, rng: np.random.Generator
                 ) -> Phantom:
    """Paint the tumour and its necrotic core over ``labels`` and draw its texture."""
    body = tumour.body
    s = lat.spacing
    h = body.half_extent() * tumour.max_scale() + s
    first = np.floor((body.centre - h) / s).astype(int)  # world index (x, y, z): independent of the lattice
    last = np.ceil((body.centre + h) / s).astype(int)
    x, y, z = ((np.arange(first[k], last[k] + 1) * s) for k in range(3))
    q = body.local(x[None, None, :], y[None, :, None], z[:, None, None])
    r = np.sqrt(q[0] ** 2 + q[1] ** 2 + q[2] ** 2) + 1e-9
    inside = r <= tumour.radius_scale([q[0] / r, q[1] / r, q[2] / r])
    shape = inside.shape
    texture = _smooth_field(rng, shape, 4.0 / s)
    core = _smooth_field(rng, shape, max(0.3 * float(body.axes.min()) / s, 1.0)) - 2.5 * r**2
    tissue = np.where(inside, TUMOUR, AIR).astype(np.uint8)
    n_in = int(inside.sum())
    k = int(round(float(np.clip(necrosis, 0, 0.95)) * n_in))
    if k > 0:
        cut = np.partition(core[inside], n_in - k)[n_in - k]
        tissue[inside & (core >= cut)] = NECROSIS
    if n_in > 1:
        t = texture[inside]
        texture = (texture - t.mean()) / max(float(t.std()), 1e-6)
    texture[~inside] = 0.0
    box, local = lat.overlap(first, shape)
    view, sub = labels[box], tissue[local]
    view[sub != AIR] = sub[sub != AIR]
    return Phantom(lat, labels, box, np.ascontiguousarray(texture[local], dtype=np.float32), n_in * s**3)


# ----------------------------------------------------------------------------- soft-tissue sarcoma
#: One elliptic column of an STS cross-section: (tissue, centre x, centre y, semi-axis x, semi-axis y) in mm.
Layer = tuple[int, float, float, float, float]


def _limb(rng: np.random.Generator, r: float, superficial: bool) -> tuple[list[Layer], np.ndarray]:
    """A thigh-like limb (skin fat, muscle compartment, femur), and where the tumour sits in its frame."""
    fat = rng.uniform(6, 20)
    radius = max(rng.uniform(60, 85), 1.2 * r + fat + 8)
    angle = rng.uniform(0, 2 * np.pi)
    direction = np.array([np.cos(angle), np.sin(angle)])
    depth = radius - fat * 0.5 if superficial else rng.uniform(0.15, 0.45) * (radius - fat)
    bone = -direction * rng.uniform(0.25, 0.45) * radius
    septum = rng.uniform(-0.3, 0.3) * radius
    layers = [(FAT, 0.0, 0.0, radius, 0.92 * radius), (MUSCLE, 0.0, 0.0, radius - fat, 0.92 * radius - fat),
              (FAT, septum, 0.0, 1.5, 0.6 * radius), (CORTEX, *bone, 14.0, 14.0), (MARROW, *bone, 9.0, 9.0)]
    return layers, direction * depth


def _body(rng: np.random.Generator, site: str, superficial: bool) -> tuple[list[Layer], np.ndarray]:
    """A trunk, abdomen or pelvis cross-section (body fat, muscle wall, contents), and the tumour's place."""
    ax, ay = {"trunk": (150, 110), "abdomen": (150, 115), "pelvis": (135, 100)}[site]
    ax, ay = ax * rng.uniform(0.9, 1.1), ay * rng.uniform(0.9, 1.1)
    fat = rng.uniform(10, 30)
    wall = rng.uniform(25, 40) if site == "trunk" else rng.uniform(10, 16)
    layers: list[Layer] = [(FAT, 0.0, 0.0, ax, ay), (MUSCLE, 0.0, 0.0, ax - fat, ay - fat)]
    inner = (ax - fat - wall, ay - fat - wall)
    if site == "trunk":  # chest wall: ribs against the (dark) lung; the tumour in the back or side wall
        layers.append((AIR, 0.0, 0.0, *inner))
        for a in np.linspace(0.2, np.pi - 0.2, 5):
            c = (inner[0] * np.cos(a), inner[1] * np.sin(a))
            layers += [(CORTEX, *c, 9.0, 6.0), (MARROW, *c, 6.0, 3.5)]
        a = rng.uniform(0.25, np.pi - 0.25)
        reach = 1.0 - (fat * 0.5 if superficial else fat + wall * 0.5) / ay
        return layers, np.array([ax * reach * np.cos(a), ay * reach * np.sin(a)])
    layers.append((FAT, 0.0, 0.0, *inner))
    if site == "abdomen":  # retroperitoneum: spine, psoas, bowel loops in front
        layers += [(MUSCLE, -38.0, 40.0, 18.0, 20.0), (MUSCLE, 38.0, 40.0, 18.0, 20.0),
                   (CORTEX, 0.0, 55.0, 22.0, 20.0), (MARROW, 0.0, 55.0, 18.0, 16.0)]
        for _ in range(6):
            layers.append((BOWEL, rng.uniform(-80, 80), rng.uniform(-70, -10), *rng.uniform(10, 20, 2)))
        return layers, np.array([rng.uniform(-55, 55), rng.uniform(-5, 30)])
    for side in (-1, 1):  # pelvis: gluteal muscles, iliac bones, bladder, rectum
        layers += [(MUSCLE, side * 62.0, 62.0, 40.0, 26.0), (CORTEX, side * 82.0, 18.0, 13.0, 38.0),
                   (MARROW, side * 82.0, 18.0, 9.0, 34.0)]
    layers += [(URINE, 0.0, -45.0, *rng.uniform(20, 35, 2)), (BOWEL, 0.0, 45.0, 14.0, 12.0)]
    side = 1 if rng.random() < 0.5 else -1
    return layers, np.array([side * rng.uniform(35, 65), rng.uniform(20, 60)])


def draw_sts_anatomy(rng: np.random.Generator, site: str, radius_mm: float, superficial: bool) -> dict:
    """The cross-section of an STS patient, placed so that the tumour lies near the field's centre (as in the
    study's images, cropped around the tumour): ``layers`` (elliptic columns along z, painted in order) and
    ``tumour_centre`` (mm)."""
    if site == "extremity":
        layers, spot = _limb(rng, min(radius_mm, MAX_RADIUS_MM), superficial)
    else:
        layers, spot = _body(rng, site, superficial)
    centre = np.array([*rng.normal(0.0, 6.0, 2), rng.normal(0.0, 4.0)])
    shift = centre[:2] - spot
    moved = [(t, cx + shift[0], cy + shift[1], ax, ay) for t, cx, cy, ax, ay in layers]
    return {"site": site, "layers": moved, "tumour_centre": centre}


def draw_sts_tumour(rng: np.random.Generator, radius_mm: float, margin: float, centre: np.ndarray) -> TumourShape:
    """An STS: an ellipsoid whose longest axis (``radius_mm``) runs roughly along the body's long axis (z),
    tilted by up to about 15 degrees, lobulated by ``margin``."""
    r = float(min(radius_mm, MAX_RADIUS_MM))
    axes = r * np.array([rng.uniform(0.55, 0.9), rng.uniform(0.55, 0.9), 1.0])
    rot = Rotation.from_euler("zxy", [rng.uniform(0, 180), rng.normal(0, 8), rng.normal(0, 8)],
                              degrees=True).as_matrix()
    waves, freqs, amps, phases = _lobulation(rng)
    return TumourShape(Ellipsoid(np.asarray(centre, float), axes, rot), float(np.clip(margin, 0, MAX_MARGIN)),
                       waves, freqs, phases, amps)


def paint_sts(lat: Lattice, anatomy: dict, tumour: TumourShape, necrosis: float, rng: np.random.Generator
              ) -> Phantom:
    """Paint an STS patient on ``lat``: the cross-section's columns, then the tumour, its necrosis and texture."""
    labels = np.zeros(lat.shape, dtype=np.uint8)
    for tissue, cx, cy, ax, ay in anatomy["layers"]:
        _ellipse_column(labels, lat, cx, cy, ax, ay, tissue)
    return _with_tumour(lat, labels, tumour, necrosis, rng)

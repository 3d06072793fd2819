"""Embedded, procedurally generated default dataset: ``lg_shapes``.

A small two-level image hierarchy that ships as code, so everything runs
offline (no download):

* 4 coarse classes x 3 fine classes = 12 fine classes of 32x32x3 uint8 images.
* ``round``   : disc, ring, crescent                 (filled / hollow / cut discs)
* ``angular`` : square, triangle, cross              (polygons with corners)
* ``striped`` : stripes, waves, zigzag               (1-D periodic line patterns)
* ``tiled``   : checkerboard, polka_dots, bricks     (2-D periodic tilings)

Every image gets independent nuisance variation: position, scale, rotation,
foreground colour (random hue, independent of the class), background (random
two-colour gradient), foreground opacity, clutter (a few thin random lines and
small blobs drawn on top) and additive gaussian pixel noise.

Rendering is fully vectorised with numpy over ``[n, 32, 32]`` grids; each
class is rendered from a signed distance function (pixels, negative inside)
with a 1-pixel anti-aliased edge.  Generation is deterministic for a seed:
the train split uses ``np.random.default_rng(2 * seed)`` and the test split
``np.random.default_rng(2 * seed + 1)``.

The module also registers a TFDS builder, :class:`LgShapes` (``lg_shapes``),
so the data flows through the standard ``tfds.load`` path, with configs
``default`` (1000 / 200 images per fine class) and ``small`` (20 / 10, for
tests).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from lg_tf.hierarchy import SHAPES_COARSE as COARSE_NAMES
from lg_tf.hierarchy import SHAPES_FINE as FINE_NAMES
from lg_tf.hierarchy import SHAPES_PARENT as PARENT

__all__ = [
    "FINE_NAMES",
    "COARSE_NAMES",
    "PARENT",
    "NUM_TRAIN_PER_CLASS",
    "NUM_TEST_PER_CLASS",
    "SMALL_TRAIN_PER_CLASS",
    "SMALL_TEST_PER_CLASS",
    "IMAGE_SIZE",
    "generate",
    "LgShapes",
    "LgShapesConfig",
]

# --------------------------------------------------------------------------
# Constants (the class names and parents are lg_tf.hierarchy's SHAPES_* tables)
# --------------------------------------------------------------------------

NUM_TRAIN_PER_CLASS = 1000
NUM_TEST_PER_CLASS = 200
SMALL_TRAIN_PER_CLASS = 20
SMALL_TEST_PER_CLASS = 10
IMAGE_SIZE = 32

# The per-channel mean / std of generate("train", seed=0) are registry.EMBEDDED_MEAN/STD:
# the registry must stay light (this module imports tensorflow_datasets) and imports this
# module only inside the functions that load the data, so this module does not import it.

_SPLIT_OFFSET = {"train": 0, "test": 1}
_CHUNK = 1024  # images rendered per vectorised chunk (bounds peak memory)
_N_LINES = 3   # clutter line slots per image (each active with p=0.6)
_N_BLOBS = 3   # clutter blob slots per image (each active with p=0.5)

# Pixel-centre coordinates, origin at the image centre: -15.5 .. 15.5.
_COORD = np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5 - IMAGE_SIZE / 2
_YY, _XX = np.meshgrid(_COORD, _COORD, indexing="ij")  # [32, 32] each


# --------------------------------------------------------------------------
# Signed distance helpers (all vectorised over leading batch dims)
# --------------------------------------------------------------------------

def _box(u, v, hu, hv):
    """Signed distance to an axis-aligned box with half sizes (hu, hv)."""
    qu = np.abs(u) - hu
    qv = np.abs(v) - hv
    outside = np.sqrt(np.maximum(qu, 0) ** 2 + np.maximum(qv, 0) ** 2)
    inside = np.minimum(np.maximum(qu, qv), 0)
    return outside + inside


def _lerp(lo, hi, t):
    return lo + (hi - lo) * t


def _frac(x):
    return x - np.floor(x)


def _b(a):
    """Per-image parameter [n] -> broadcastable [n, 1, 1]."""
    return a[:, None, None]


# Each renderer takes rotated/translated pixel coordinates u, v ([n,32,32]),
# and the per-image uniforms a1..a3 in [0, 1) (each [n]).  Shapes also get
# the radius R (pixels).  They return a signed distance in pixels.

def _disc(u, v, R, a1, a2, a3):
    r = np.sqrt(u * u + v * v) / _b(R)
    return (r - 1.0) * _b(R)


def _ring(u, v, R, a1, a2, a3):
    r = np.sqrt(u * u + v * v) / _b(R)
    thick = _b(_lerp(0.20, 0.30, a1))
    return (np.abs(r - 0.75) - thick) * _b(R)


def _crescent(u, v, R, a1, a2, a3):
    un, vn = u / _b(R), v / _b(R)
    outer = np.sqrt(un * un + vn * vn) - 1.0
    off = _b(_lerp(0.35, 0.55, a1))
    inner = np.sqrt((un - off) ** 2 + vn * vn) - 0.85
    return np.maximum(outer, -inner) * _b(R)


def _square(u, v, R, a1, a2, a3):
    h = _b(_lerp(0.72, 0.85, a1))
    return _box(u / _b(R), v / _b(R), h, h) * _b(R)


_TRI_N = np.array([[np.cos(t), np.sin(t)] for t in
                   (-np.pi / 2, np.pi / 6, 5 * np.pi / 6)], dtype=np.float32)


def _triangle(u, v, R, a1, a2, a3):
    un, vn = u / _b(R), v / _b(R)
    # Equilateral triangle, circumradius 1.05 (inradius 0.525), centroid at 0.
    d = np.maximum.reduce([n[0] * un + n[1] * vn for n in _TRI_N]) - 0.525
    return d * _b(R)


def _cross(u, v, R, a1, a2, a3):
    un, vn = u / _b(R), v / _b(R)
    w = _b(_lerp(0.22, 0.32, a1))
    return np.minimum(_box(un, vn, 0.95, w), _box(un, vn, w, 0.95)) * _b(R)


def _stripe_profile(w, period, duty):
    """Distance to the centre band of a 1-D periodic stripe pattern."""
    return np.abs(_frac(w / period) - 0.5) * period - duty * period / 2


def _stripes(u, v, R, a1, a2, a3):
    period = _b(_lerp(5.0, 10.0, a1))
    duty = _b(_lerp(0.35, 0.6, a2))
    return _stripe_profile(u, period, duty)


def _waves(u, v, R, a1, a2, a3):
    period = _b(_lerp(6.0, 10.0, a1))
    wl = _b(_lerp(10.0, 18.0, a2))
    amp = _b(_lerp(0.12, 0.22, a3)) * wl
    k = 2 * np.pi / wl
    w = u + amp * np.sin(k * v)
    grad = np.sqrt(1.0 + (amp * k * np.cos(k * v)) ** 2)
    return _stripe_profile(w, period, 0.45) / grad


def _zigzag(u, v, R, a1, a2, a3):
    period = _b(_lerp(6.0, 10.0, a1))
    wl = _b(_lerp(8.0, 16.0, a2))
    amp = _b(_lerp(0.12, 0.22, a3)) * wl
    tri = 4.0 * np.abs(_frac(v / wl) - 0.5) - 1.0  # triangle wave in [-1, 1]
    w = u + amp * tri
    slope = 4.0 * amp / wl
    return _stripe_profile(w, period, 0.45) / np.sqrt(1.0 + slope ** 2)


def _checkerboard(u, v, R, a1, a2, a3):
    cell = _b(_lerp(5.0, 10.0, a1))
    su, sv = u / cell, v / cell
    du = (0.5 - np.abs(_frac(su) - 0.5)) * cell  # distance to nearest edge
    dv = (0.5 - np.abs(_frac(sv) - 0.5)) * cell
    parity = (np.floor(su) + np.floor(sv)) % 2
    sign = np.where(parity == 0, -1.0, 1.0).astype(np.float32)
    return sign * np.minimum(du, dv)


def _polka_dots(u, v, R, a1, a2, a3):
    spacing = _b(_lerp(6.0, 11.0, a1))
    radius = _b(_lerp(0.22, 0.34, a2)) * spacing
    du = (_frac(u / spacing) - 0.5) * spacing
    dv = (_frac(v / spacing) - 0.5) * spacing
    return np.sqrt(du * du + dv * dv) - radius


def _bricks(u, v, R, a1, a2, a3):
    h = _b(_lerp(4.5, 7.5, a1))        # row height
    wb = 2.0 * h                       # brick width
    mortar = _b(_lerp(1.2, 2.0, a2))  # foreground = mortar lines
    row = np.floor(v / h)
    a = _frac(u / wb + 0.5 * row)
    b = _frac(v / h)
    brick = np.maximum(np.abs(a - 0.5) * wb - (wb - mortar) / 2,
                       np.abs(b - 0.5) * h - (h - mortar) / 2)
    return -brick


_RENDER = (
    _disc, _ring, _crescent,
    _square, _triangle, _cross,
    _stripes, _waves, _zigzag,
    _checkerboard, _polka_dots, _bricks,
)
_IS_SHAPE = np.array([p in (0, 1) for p in PARENT])


# --------------------------------------------------------------------------
# Parameter sampling and rendering
# --------------------------------------------------------------------------

def _hsv_to_rgb(h, s, v):
    """Vectorised HSV -> RGB; inputs [...], output [..., 3] in [0, 1]."""
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    p = v * (1.0 - s)
    q = v * (1.0 - s * f)
    t = v * (1.0 - s * (1.0 - f))
    i = i.astype(np.int64) % 6
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.stack([r, g, b], axis=-1).astype(np.float32)


def _sample_params(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Draws all per-image nuisance parameters, in a fixed order."""
    f32 = np.float32
    u = lambda *shape: rng.random(shape, dtype=f32)  # noqa: E731
    p: dict[str, np.ndarray] = {}
    # Geometry.
    p["radius"] = _lerp(6.0, 12.5, u(n))
    p["pos"] = u(n, 2) * 2 - 1                       # scaled per class later
    p["theta"] = u(n) * f32(2 * np.pi)
    p["aux"] = u(n, 3)                               # class-specific shape params
    # Colours: random polarity so that foreground/background always contrast.
    bright_fg = rng.random(n) < 0.5
    fg_v = np.where(bright_fg, _lerp(0.6, 1.0, u(n)), _lerp(0.05, 0.45, u(n)))
    bg_v = np.where(bright_fg[:, None], _lerp(0.05, 0.4, u(n, 2)),
                    _lerp(0.55, 0.95, u(n, 2)))
    p["fg"] = _hsv_to_rgb(u(n), _lerp(0.4, 1.0, u(n)), fg_v)          # [n,3]
    bg_h = (u(n)[:, None] + _lerp(-0.3, 0.3, u(n, 2))) % 1.0
    p["bg"] = _hsv_to_rgb(bg_h, _lerp(0.0, 0.8, u(n, 2)), bg_v)       # [n,2,3]
    p["grad_dir"] = u(n) * f32(2 * np.pi)
    p["grad_strength"] = u(n)
    p["alpha"] = _lerp(0.7, 1.0, u(n))
    # Clutter: thin lines and small blobs.
    p["line_on"] = rng.random((n, _N_LINES)) < 0.6
    p["line_ends"] = _lerp(-16.0, 16.0, u(n, _N_LINES, 4))
    p["line_width"] = _lerp(0.35, 0.8, u(n, _N_LINES))
    p["line_rgb"] = _hsv_to_rgb(u(n, _N_LINES), u(n, _N_LINES),
                                u(n, _N_LINES))
    p["line_alpha"] = _lerp(0.4, 0.9, u(n, _N_LINES))
    p["blob_on"] = rng.random((n, _N_BLOBS)) < 0.5
    p["blob_pos"] = _lerp(-15.0, 15.0, u(n, _N_BLOBS, 2))
    p["blob_radius"] = _lerp(0.8, 2.2, u(n, _N_BLOBS))
    p["blob_rgb"] = _hsv_to_rgb(u(n, _N_BLOBS), u(n, _N_BLOBS),
                                u(n, _N_BLOBS))
    p["blob_alpha"] = _lerp(0.5, 1.0, u(n, _N_BLOBS))
    # Additive gaussian pixel noise.
    p["noise_std"] = _lerp(0.02, 0.08, u(n))
    p["noise_seed"] = rng.integers(0, 2**63 - 1, dtype=np.int64)
    return p


def _coverage(d):
    """Anti-aliased coverage (1 pixel wide edge) from a signed distance."""
    return np.clip(0.5 - d, 0.0, 1.0)


def _render_chunk(labels: np.ndarray, p: dict[str, np.ndarray],
                  noise: np.ndarray) -> np.ndarray:
    n = labels.shape[0]
    xx, yy = _XX[None], _YY[None]

    # Background: two-colour linear gradient in a random direction.
    proj = (np.cos(p["grad_dir"])[:, None, None] * xx
            + np.sin(p["grad_dir"])[:, None, None] * yy) / IMAGE_SIZE
    t = np.clip(0.5 + _b(p["grad_strength"]) * proj, 0.0, 1.0)[..., None]
    img = p["bg"][:, None, None, 0] * (1 - t) + p["bg"][:, None, None, 1] * t

    # Foreground: per-class signed distance in a rotated, shifted frame.
    radius = p["radius"]
    max_shift = np.where(_IS_SHAPE[labels],
                         np.maximum(15.0 - 0.85 * radius, 1.0), 16.0)
    c = p["pos"] * max_shift[:, None]
    dx, dy = xx - _b(c[:, 0]), yy - _b(c[:, 1])
    ct, st = _b(np.cos(p["theta"])), _b(np.sin(p["theta"]))
    u = ct * dx + st * dy
    v = -st * dx + ct * dy
    dist = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    for k, render in enumerate(_RENDER):
        idx = np.nonzero(labels == k)[0]
        if idx.size:
            a = p["aux"][idx]
            dist[idx] = render(u[idx], v[idx], radius[idx],
                               a[:, 0], a[:, 1], a[:, 2])
    cov = (_coverage(dist) * _b(p["alpha"]))[..., None]
    img = img * (1 - cov) + p["fg"][:, None, None, :] * cov

    # Clutter lines: distance from each pixel to each segment.
    e = p["line_ends"]
    ax, ay, bx, by = (e[..., i][..., None, None] for i in range(4))  # [n,L,1,1]
    px, py = xx[:, None], yy[:, None]                                 # [1,1,32,32]
    vx, vy = bx - ax, by - ay
    h = np.clip(((px - ax) * vx + (py - ay) * vy) / (vx * vx + vy * vy + 1e-6),
                0.0, 1.0)
    dl = np.sqrt((px - ax - h * vx) ** 2 + (py - ay - h * vy) ** 2)
    dl = dl - p["line_width"][..., None, None]
    for j in range(_N_LINES):
        a = (_coverage(dl[:, j]) * _b(p["line_alpha"][:, j] * p["line_on"][:, j]))
        a = a[..., None]
        img = img * (1 - a) + p["line_rgb"][:, j, None, None, :] * a
    # Clutter blobs.
    for j in range(_N_BLOBS):
        bxj, byj = _b(p["blob_pos"][:, j, 0]), _b(p["blob_pos"][:, j, 1])
        db = np.sqrt((xx - bxj) ** 2 + (yy - byj) ** 2) - _b(p["blob_radius"][:, j])
        a = (_coverage(db) * _b(p["blob_alpha"][:, j] * p["blob_on"][:, j]))[..., None]
        img = img * (1 - a) + p["blob_rgb"][:, j, None, None, :] * a

    img = img + noise * p["noise_std"][:, None, None, None]
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def generate(split: str, seed: int = 0,
             num_per_class: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Generates one split of the embedded dataset.

    Args:
      split: "train" or "test" (independent random streams: the generator is
        seeded with ``2 * seed`` for train and ``2 * seed + 1`` for test).
      seed: non-negative integer seed; same seed -> identical arrays.
      num_per_class: images per fine class (default 1000 for train, 200 for
        test).

    Returns:
      images: uint8 [N, 32, 32, 3]; labels: int64 [N] fine-class indices
      (0..11), N = 12 * num_per_class, shuffled (not grouped by class).
    """
    if split not in _SPLIT_OFFSET:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if num_per_class is None:
        num_per_class = (NUM_TRAIN_PER_CLASS if split == "train"
                         else NUM_TEST_PER_CLASS)
    num_per_class = int(num_per_class)
    if num_per_class < 0:
        raise ValueError("num_per_class must be >= 0")
    seed = int(seed)
    if seed < 0:
        raise ValueError("seed must be >= 0")
    rng = np.random.default_rng(2 * seed + _SPLIT_OFFSET[split])

    num_classes = len(FINE_NAMES)
    labels = np.repeat(np.arange(num_classes, dtype=np.int64), num_per_class)
    labels = labels[rng.permutation(labels.shape[0])]
    n = labels.shape[0]
    params = _sample_params(rng, n)
    noise_rng = np.random.default_rng(int(params.pop("noise_seed")))

    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    with np.errstate(all="ignore"):
        for s in range(0, n, _CHUNK):
            sl = slice(s, min(s + _CHUNK, n))
            chunk_p = {k: v[sl] for k, v in params.items()}
            noise = noise_rng.standard_normal(
                (sl.stop - sl.start, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.float32)
            images[sl] = _render_chunk(labels[sl], chunk_p, noise)
    return images, labels


# --------------------------------------------------------------------------
# TFDS builder
# --------------------------------------------------------------------------

@dataclasses.dataclass(eq=False)
class LgShapesConfig(tfds.core.BuilderConfig):
    """Split sizes (images per fine class) of an ``lg_shapes`` config."""

    num_train_per_class: int = NUM_TRAIN_PER_CLASS
    num_test_per_class: int = NUM_TEST_PER_CLASS
    seed: int = 0


class LgShapes(tfds.core.GeneratorBasedBuilder):
    """Procedural 12-fine / 4-coarse shapes-and-textures dataset (offline)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        LgShapesConfig(
            name="default",
            description=("Full size: 1000 train / 200 test images per fine "
                         "class (12,000 / 2,400)."),
        ),
        LgShapesConfig(
            name="small",
            description=("Tiny version for tests: 20 train / 10 test images "
                         "per fine class."),
            num_train_per_class=SMALL_TRAIN_PER_CLASS,
            num_test_per_class=SMALL_TEST_PER_CLASS,
        ),
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=(
                "Embedded procedural dataset of 32x32 RGB images with a "
                "two-level label hierarchy: 4 coarse classes (round, angular, "
                "striped, tiled) x 3 fine classes each. Generated from code "
                "(lg_tf.data.embedded.generate, seed 0); no download. Images "
                "vary in position, scale, rotation, colour, background, "
                "clutter and pixel noise."),
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(IMAGE_SIZE, IMAGE_SIZE, 3)),
                "label": tfds.features.ClassLabel(names=list(FINE_NAMES)),
                "coarse_label": tfds.features.ClassLabel(
                    names=list(COARSE_NAMES)),
            }),
            supervised_keys=("image", "label"),
            # Keep the (already seed-shuffled) generate() order on disk so a
            # loaded split equals generate() exactly.
            disable_shuffling=True,
            homepage="https://github.com/",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Nothing to download: the data is generated from code.
        cfg = self.builder_config
        return {
            "train": self._generate_examples("train", cfg.num_train_per_class),
            "test": self._generate_examples("test", cfg.num_test_per_class),
        }

    def _generate_examples(self, split, num_per_class):
        seed = getattr(self.builder_config, "seed", 0)
        images, labels = generate(split, seed=seed, num_per_class=num_per_class)
        for i in range(labels.shape[0]):
            label = int(labels[i])
            yield i, {
                "image": images[i],
                "label": label,
                "coarse_label": PARENT[label],
            }

"""Stimuli of the embedded demo: seeded random views of photographs shipped by installed packages.

Every photograph is one category; its exemplars are ``n_per_category`` random views
(a crop of 50-90 % of the area with aspect-ratio jitter, as torchvision's
``RandomResizedCrop``, resized to ``size`` x ``size``; a horizontal flip half of the
time; mild brightness, contrast and saturation jitter) written as JPEG files into
``<out>/stimuli/<category>/`` with a ``.stim.csv`` table beside them. Nothing is
downloaded: the photographs are the ones scikit-image keeps in ``skimage/data`` and
scikit-learn in ``sklearn/datasets/images``. Without scikit-image, categories of
simple shapes drawn with Pillow are used instead (and a log line says so).

Views are bit-for-bit repeatable with their seed: each category draws from its own
child of ``numpy.random.SeedSequence(seed)``, so the views of one category do not
depend on which other categories are made.

Examples
--------
>>> stim_path = make_demo_stimuli("demo", n_per_category=2, size=64)   # doctest: +SKIP
"""
import logging
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

from ..base.stimulus import Stimulus
from ..errors import InputError
from ..utils.progress import progress
from ..utils.validation import check_scalar

__all__ = ["PHOTOGRAPHS", "SHAPES", "demo_categories", "load_photograph", "make_demo_stimuli",
           "random_view"]

log = logging.getLogger(__name__)

#: Category name -> (package, file) of a photograph shipped inside that package.
PHOTOGRAPHS = {
    "astronaut": ("skimage", "astronaut.png"),
    "brick": ("skimage", "brick.png"),
    "cameraman": ("skimage", "camera.png"),
    "cat": ("skimage", "chelsea.png"),
    "china": ("sklearn", "china.jpg"),
    "coffee": ("skimage", "coffee.png"),
    "coins": ("skimage", "coins.png"),
    "flower": ("sklearn", "flower.jpg"),
    "grass": ("skimage", "grass.png"),
    "gravel": ("skimage", "gravel.png"),
    "hubble": ("skimage", "hubble_deep_field.jpg"),
    "ihc": ("skimage", "ihc.png"),
    "moon": ("skimage", "moon.png"),
    "motorcycle": ("skimage", "motorcycle_left.png"),
    "retina": ("skimage", "retina.jpg"),
    "rocket": ("skimage", "rocket.jpg"),
}

_AREA = (0.5, 0.9)             # fraction of the photograph's area in a view
_ASPECT = (3 / 4, 4 / 3)       # aspect-ratio range of a view (log-uniform)
_JITTER = 0.15                 # brightness / contrast / saturation factors in 1 +- this
_JPEG_QUALITY = 92


def _package_dir(package):
    """Folder holding ``package``'s shipped photographs (ImportError if not installed)."""
    if package == "skimage":
        import skimage.data
        return Path(getattr(skimage.data, "data_dir", Path(skimage.data.__file__).parent))
    if package == "sklearn":
        import sklearn.datasets
        return Path(sklearn.datasets.__file__).parent / "images"
    raise InputError(f"unknown photograph package {package!r}.")


def load_photograph(name):
    """RGB ``PIL.Image`` of the demo photograph ``name`` (a key of :data:`PHOTOGRAPHS`).

    Grey-level photographs are converted to RGB; nothing is downloaded.
    """
    if name not in PHOTOGRAPHS:
        raise InputError(f"unknown demo photograph {name!r}; choose from "
                         f"{', '.join(PHOTOGRAPHS)}.")
    package, filename = PHOTOGRAPHS[name]
    path = _package_dir(package) / filename
    if package == "skimage":
        import skimage.io
        pixels = skimage.io.imread(path)
    else:
        with Image.open(path) as img:
            pixels = np.asarray(img)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    return Image.fromarray(np.ascontiguousarray(pixels[:, :, :3]).astype(np.uint8))


# -- fallback: shapes drawn with Pillow --------------------------------------------
def _polygon(n_vertices, star=False):
    def draw(d, cx, cy, r, angle, colour):
        pts = []
        for k in range(n_vertices * (2 if star else 1)):
            rad = r * (0.45 if star and k % 2 else 1.0)
            a = angle + 2 * math.pi * k / (n_vertices * (2 if star else 1))
            pts.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
        d.polygon(pts, fill=colour)
    return draw


def _disc(d, cx, cy, r, angle, colour):
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)


def _ring(d, cx, cy, r, angle, colour):
    d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=colour, width=max(2, int(r / 3)))


def _cross(d, cx, cy, r, angle, colour):
    w = r / 3
    for a in (angle, angle + math.pi / 2):
        dx, dy = math.cos(a), math.sin(a)
        pts = [(cx + s * r * dx + t * w * -dy, cy + s * r * dy + t * w * dx)
               for s, t in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
        d.polygon(pts, fill=colour)


#: Fallback categories: name -> drawing function ``(draw, cx, cy, r, angle, colour)``.
SHAPES = {"disc": _disc, "ring": _ring, "triangle": _polygon(3), "square": _polygon(4),
          "pentagon": _polygon(5), "star": _polygon(5, star=True), "cross": _cross,
          "hexagon": _polygon(6)}


def _draw_shape(name, size, rng):
    """One exemplar of shape ``name``: random position, size, angle and colours."""
    bg = tuple(int(v) for v in rng.integers(0, 256, 3))
    fg = tuple(int(v) for v in rng.integers(0, 256, 3))
    img = Image.new("RGB", (size, size), bg)
    r = size * rng.uniform(0.2, 0.35)
    cx, cy = rng.uniform(r, size - r, 2)
    SHAPES[name](ImageDraw.Draw(img), cx, cy, r, rng.uniform(0, 2 * math.pi), fg)
    return img


def demo_categories():
    """``(names, kind)``: the photograph categories when scikit-image is installed
    (``kind="photographs"``), else the Pillow shape categories (``kind="shapes"``)."""
    try:
        _package_dir("skimage")
        _package_dir("sklearn")
    except ImportError:
        return list(SHAPES), "shapes"
    return list(PHOTOGRAPHS), "photographs"


# -- views ---------------------------------------------------------------------------
def random_view(image, size, rng):
    """A random view of ``image``: crop (50-90 % of the area, aspect 3/4-4/3), resize to
    ``size`` x ``size``, flip half of the time, jitter brightness/contrast/saturation.

    Parameters
    ----------
    image : PIL.Image (RGB)
    size : int
    rng : numpy.random.Generator

    Returns
    -------
    PIL.Image of size (size, size)
    """
    width, height = image.size
    area = rng.uniform(*_AREA) * width * height
    aspect = math.exp(rng.uniform(math.log(_ASPECT[0]), math.log(_ASPECT[1])))
    w = min(width, max(1, round(math.sqrt(area * aspect))))
    h = min(height, max(1, round(math.sqrt(area / aspect))))
    x0 = int(rng.integers(0, width - w + 1))
    y0 = int(rng.integers(0, height - h + 1))
    view = image.crop((x0, y0, x0 + w, y0 + h)).resize((size, size), Image.BILINEAR)
    if rng.random() < 0.5:
        view = view.transpose(Image.FLIP_LEFT_RIGHT)
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        view = enhancer(view).enhance(rng.uniform(1 - _JITTER, 1 + _JITTER))
    return view


def make_demo_stimuli(out_dir, *, n_per_category=12, size=224, seed=0, categories=None,
                      force=False, show_progress=False):
    """Write the demo's stimulus images and their table.

    Parameters
    ----------
    out_dir : str or Path
        Images go to ``out_dir/stimuli/<category>/<category>_NN.jpg``, the table to
        ``out_dir/stimuli.stim.csv`` (``label`` 0..K-1 in sorted category order,
        ``condition`` the category name).
    n_per_category : int, default=12
        Random views per photograph.
    size : int, default=224
        Width and height of every view in pixels.
    seed : int, default=0
    categories : list of str, optional
        Subset of :data:`PHOTOGRAPHS` (or of :data:`SHAPES` without scikit-image).
        Default: all of them.
    force : bool, default=False
        Overwrite an existing table (images are always rewritten).
    show_progress : bool, default=False

    Returns
    -------
    Path
        The ``.stim.csv`` file.
    """
    check_scalar(n_per_category, name="n_per_category", kind=int, min_val=1)
    check_scalar(size, name="size", kind=int, min_val=8)
    available, kind = demo_categories()
    if kind == "shapes":
        log.info("scikit-image is not installed: the demo uses %d categories of shapes drawn "
                 "with Pillow instead of photographs (pip install 'dnnsparse[demo]').",
                 len(available))
    names = available if categories is None else list(categories)
    unknown = [c for c in names if c not in available]
    if unknown or len(names) < 2:
        raise InputError(f"demo categories must be at least 2 of {', '.join(available)}; got "
                         f"{names}.")
    out_dir = Path(out_dir)
    folder = out_dir / "stimuli"
    children = np.random.SeedSequence(seed).spawn(len(available))
    for name in progress(names, desc="demo stimuli", unit="category", enabled=show_progress):
        rng = np.random.default_rng(children[available.index(name)])
        (folder / name).mkdir(parents=True, exist_ok=True)
        photo = load_photograph(name) if kind == "photographs" else None
        for i in range(n_per_category):
            img = random_view(photo, size, rng) if photo else _draw_shape(name, size, rng)
            img.save(folder / name / f"{name}_{i:02d}.jpg", quality=_JPEG_QUALITY)
    stim = Stimulus.from_folder(folder)
    stim.header["title"] = f"dnnsparse demo: {kind}, {n_per_category} views each, seed {seed}"
    path = out_dir / "stimuli.stim.csv"
    stim.save(path, force=force)
    log.info("wrote %d demo images of %d categories to %s", len(stim), len(names), folder)
    return path

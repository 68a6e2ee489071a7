"""Shared pixel-grid drawing for the visual puzzles (mazes, Sudoku).

Every puzzle image is a float32 array in [0, 1], channels-first ``(3, H, W)`` (RGB). A puzzle of
``n x n`` cells is drawn on a grid of square *blocks* of ``block`` pixels: block ``(r, c)``
covers rows ``r*block .. r*block+block-1`` and the same columns; its first row and first
column are the grid line (wall) on its top and left side, the rest is the cell *interior*.
The bottom and right border lines are implied by the image edge, so ``H = W = n * block``:
a size that tiles exactly into DiT patches (one cell = one patch when patch = block).

Images are corrupted for robustness tests with :func:`corrupt` (Gaussian blur, then additive
Gaussian noise, then clipping), the stand-in for a diffusion model's imperfect drawing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from latentcot.errors import LatentCotError

# RGB colours shared by both tasks; chosen so that each class differs from every other by a
# full unit in at least one channel (the parsers decide by nearest colour / channel contrast)
WHITE = (1.0, 1.0, 1.0)
BLACK = (0.0, 0.0, 0.0)
GREY = (0.6, 0.6, 0.6)
RED = (1.0, 0.0, 0.0)
GREEN = (0.0, 1.0, 0.0)
BLUE = (0.0, 0.0, 1.0)


def blank(n: int, block: int, line: tuple[float, float, float] = BLACK) -> np.ndarray:
    """A white ``(3, n*block, n*block)`` image with the grid lines drawn in ``line``."""
    image = np.ones((3, n * block, n * block), dtype=np.float32)
    colour = np.asarray(line, dtype=np.float32)[:, None]
    image[:, ::block, :] = colour[:, :, None]
    image[:, :, ::block] = colour[:, :, None]
    return image


def paint(image: np.ndarray, rows: slice, cols: slice, colour: tuple[float, float, float]) -> None:
    """Fill ``image[:, rows, cols]`` with an RGB colour, in place."""
    image[:, rows, cols] = np.asarray(colour, dtype=np.float32).reshape(3, 1, 1)


def interior(r: int, c: int, block: int) -> tuple[slice, slice]:
    """Row and column slices of the interior of cell ``(r, c)`` (the block minus its lines)."""
    return slice(r * block + 1, (r + 1) * block), slice(c * block + 1, (c + 1) * block)


def cell_interiors(image: np.ndarray, block: int) -> np.ndarray:
    """Every cell's interior pixels, ``(3, n, n, block-1, block-1)`` (a view, no copy)."""
    n = image.shape[1] // block
    blocks = image.reshape(3, n, block, n, block).transpose(0, 1, 3, 2, 4)
    return blocks[:, :, :, 1:, 1:]


def check_image(image: np.ndarray, block: int, what: str) -> int:
    """The grid size ``n`` of a puzzle image; LatentCotError naming the shape when it is not one."""
    shape = tuple(np.shape(image))
    if len(shape) != 3 or shape[0] != 3 or shape[1] != shape[2] or shape[1] % block or shape[1] < block:
        raise LatentCotError(
            f"{what} image: expected shape (3, n*{block}, n*{block}) channels-first, got {shape}"
        )
    return shape[1] // block


def corrupt(image: np.ndarray, sigma: float, blur: float = 0.0, seed: int = 0) -> np.ndarray:
    """A noisy copy of an image: Gaussian blur (std ``blur`` pixels, per channel), then additive
    Gaussian noise of std ``sigma``, clipped back to [0, 1].

    Args:
        image: ``(3, H, W)`` image in [0, 1].
        sigma: std of the additive noise.
        blur: std of the Gaussian blur kernel in pixels (0: none).
        seed: noise seed.

    Returns:
        The corrupted image, float32.
    """
    out = image.astype(np.float32, copy=True)
    if blur > 0:
        out = gaussian_filter(out, sigma=(0, blur, blur), mode="nearest")
    out += np.random.default_rng(seed).normal(0.0, sigma, size=out.shape).astype(np.float32)
    return np.clip(out, 0.0, 1.0)


def save_png(image: np.ndarray, path: str | Path, scale: int = 8) -> Path:
    """Write a ``(3, H, W)`` image as a PNG, each pixel drawn ``scale x scale`` (nearest)."""
    import matplotlib.image

    rgb = np.clip(np.asarray(image, dtype=np.float32), 0, 1).transpose(1, 2, 0)
    rgb = rgb.repeat(scale, axis=0).repeat(scale, axis=1)
    path = Path(path)
    matplotlib.image.imsave(path, rgb)
    return path

"""Thumbnails with Pillow: geometry (spec "Thumbnails"), formats, animation.

Images are measured from their header before anything is decoded: one with more pixels
than MATRIXHS_MAX_IMAGE_PIXELS is refused (a decompression bomb is a small file that
decodes to gigabytes). Thumbnails never upscale: "scale" fits the image inside the
requested box; "crop" fills the box and crops the overflow, centred.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

from PIL import ExifTags, Image, ImageOps, ImageSequence, UnidentifiedImageError

#: Content types we read (Pillow format names).
SOURCE_FORMATS = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/apng": "PNG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
    "image/bmp": "BMP",
    "image/tiff": "TIFF",
}
#: Content types a thumbnail may have (the spec's list for the thumbnail endpoints).
THUMBNAIL_TYPES = {"image/jpeg", "image/png", "image/apng", "image/gif", "image/webp"}
_ANIMATED_OUTPUT = {"GIF": ("GIF", "image/gif"), "WEBP": ("WEBP", "image/webp")}


class CannotThumbnail(Exception):
    """The content is not an image we can read."""


class ImageTooLarge(Exception):
    """The image has more pixels than the limit: it is never decoded."""


@dataclass(frozen=True)
class Rendered:
    data: bytes
    content_type: str
    width: int
    height: int


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str
    animated: bool


def can_thumbnail(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() in SOURCE_FORMATS


def _open(fp: IO[bytes], max_pixels: int) -> Image.Image:
    """Open (header only) and check the pixel count before any decoding."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(fp, formats=sorted(set(SOURCE_FORMATS.values())))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge() from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise CannotThumbnail() from exc
    if image.width * image.height > max_pixels or image.width < 1 or image.height < 1:
        raise ImageTooLarge()
    return image


def inspect(fp: IO[bytes], max_pixels: int) -> ImageInfo:
    """Size, format and whether the image is animated, from its header."""
    image = _open(fp, max_pixels)
    frames = getattr(image, "n_frames", 1) if image.format in _ANIMATED_OUTPUT else 1
    return ImageInfo(image.width, image.height, image.format or "", frames > 1)


def geometry(
    src: tuple[int, int], want: tuple[int, int], method: str
) -> tuple[tuple[float, float, float, float], tuple[int, int]]:
    """The source box to read and the output size, for ``method`` "crop" or "scale"."""
    (width, height), (w, h) = src, want
    if method == "scale":
        factor = min(1.0, w / width, h / height)
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        return (0.0, 0.0, float(width), float(height)), size
    if width >= w and height >= h:
        factor = max(w / width, h / height)
        crop_w, crop_h = w / factor, h / factor
        size = (w, h)
    else:  # smaller than the box: the largest region of the box's aspect, unscaled
        if width * h >= height * w:
            crop_w, crop_h = height * w / h, float(height)
        else:
            crop_w, crop_h = float(width), width * h / w
        size = (max(1, round(crop_w)), max(1, round(crop_h)))
    left, top = (width - crop_w) / 2, (height - crop_h) / 2
    return (left, top, left + crop_w, top + crop_h), size


Spec = tuple[int, int, str]  # width, height, method


def render(
    fp: IO[bytes], want: tuple[int, int], method: str, animated: bool, max_pixels: int
) -> Rendered:
    """A thumbnail of the image in ``fp``.

    Animated GIF and WebP stay animated (same format) when ``animated`` is asked and
    the frames fit the pixel limit together; otherwise the first frame, as JPEG for a
    JPEG source and PNG for anything else (PNG keeps transparency).

    Raises:
        CannotThumbnail: not an image we read, or it fails to decode.
        ImageTooLarge: over the pixel limit.
    """
    image = _open(fp, max_pixels)
    try:
        frames = getattr(image, "n_frames", 1)
        if animated and image.format in _ANIMATED_OUTPUT and 1 < frames:
            if image.width * image.height * frames <= max_pixels:
                return _render_animated(image, want, method)
        return _render_static(image, [(*want, method)])[0]
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise CannotThumbnail() from exc


def render_static_all(fp: IO[bytes], specs: Sequence[Spec], max_pixels: int) -> list[Rendered]:
    """Static thumbnails of several sizes from one decoding of the image.

    Raises:
        CannotThumbnail: not an image we read, or it fails to decode.
        ImageTooLarge: over the pixel limit.
    """
    image = _open(fp, max_pixels)
    try:
        return _render_static(image, specs)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise CannotThumbnail() from exc


def _render_static(image: Image.Image, specs: Sequence[Spec]) -> list[Rendered]:
    source_format = image.format
    image.seek(0)
    if source_format == "JPEG":
        _draft(image, specs)
    image = ImageOps.exif_transpose(image)
    return [_resize(image, source_format, (w, h), method) for w, h, method in specs]


def _draft(image: Image.Image, specs: Sequence[Spec]) -> None:
    """Have a JPEG decode at the smallest 1/2, 1/4 or 1/8 scale that still covers every
    thumbnail asked (a large photo then costs a fraction of the memory and time)."""
    width, height = image.size
    swapped = image.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8)
    if swapped:
        width, height = height, width
    scale = 0.0
    for w, h, method in specs:
        box, size = geometry((width, height), (w, h), method)
        scale = max(scale, size[0] / (box[2] - box[0]), size[1] / (box[3] - box[1]))
    target = (math.ceil(width * scale), math.ceil(height * scale))
    image.draft(None, target[::-1] if swapped else target)


def _resize(
    image: Image.Image, source_format: str | None, want: tuple[int, int], method: str
) -> Rendered:
    box, size = geometry(image.size, want, method)
    out = io.BytesIO()
    if source_format == "JPEG":
        thumb = image.convert("RGB").resize(size, Image.Resampling.LANCZOS, box=box)
        thumb.save(out, "JPEG", quality=80, optimize=True)
        content_type = "image/jpeg"
    else:
        thumb = image.convert("RGBA").resize(size, Image.Resampling.LANCZOS, box=box)
        thumb.save(out, "PNG", optimize=True)
        content_type = "image/png"
    return Rendered(out.getvalue(), content_type, thumb.width, thumb.height)


def _render_animated(image: Image.Image, want: tuple[int, int], method: str) -> Rendered:
    out_format, content_type = _ANIMATED_OUTPUT[image.format or ""]
    box, size = geometry(image.size, want, method)
    frames, durations = [], []
    for frame in ImageSequence.Iterator(image):
        durations.append(frame.info.get("duration", 100))
        frames.append(frame.convert("RGBA").resize(size, Image.Resampling.LANCZOS, box=box))
    out = io.BytesIO()
    frames[0].save(
        out,
        out_format,
        save_all=True,
        append_images=frames[1:],
        duration=durations,
        loop=image.info.get("loop", 0),
        disposal=2,
    )
    return Rendered(out.getvalue(), content_type, size[0], size[1])

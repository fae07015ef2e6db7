"""Thumbnails with Pillow: geometry (spec "Thumbnails"), formats, animation.

Images are measured from their header before anything is decoded: one with more pixels
than MATRIXHS_MAX_IMAGE_PIXELS is refused (a decompression bomb is a small file that
decodes to gigabytes). Thumbnails never upscale: "scale" fits the image inside the
requested box; "crop" fills the box and crops the overflow, centred.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import IO

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

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
    frames = getattr(image, "n_frames", 1)
    try:
        if animated and image.format in _ANIMATED_OUTPUT and 1 < frames:
            if image.width * image.height * frames <= max_pixels:
                return _render_animated(image, want, method)
        return _render_static(image, want, method)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise CannotThumbnail() from exc


def _render_static(image: Image.Image, want: tuple[int, int], method: str) -> Rendered:
    source_format = image.format
    image.seek(0)
    image = ImageOps.exif_transpose(image)
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

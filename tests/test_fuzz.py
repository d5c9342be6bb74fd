"""Fuzz: malformed and hostile images, generated here, through the library and the app's API.

Each must give a result or a FerError with a message for people (never another exception), the app
must answer each the way the library does, and memory must stay bounded over repeated rounds.
"""

import io
import struct
import zlib

import numpy as np
from PIL import Image

from conftest import REPO

rng = np.random.default_rng(0)
FACES = REPO / "examples" / "fer2013_test_1_happy_surprise.jpg"


def _save(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, with almost no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _png_chunk(b"IEND", b""))


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A real JPEG with its frame header's size rewritten, then cut short."""
    data = bytearray(_save(Image.new("RGB", (64, 64), "gray"), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data[:len(data) // 2])


def hostile_images() -> dict[str, tuple[str, bytes]]:
    """name -> (file suffix, bytes): over 30 kinds of malformed or hostile images."""
    photo = FACES.read_bytes()
    png = _save(Image.open(FACES), "PNG")
    bad_crc = bytearray(png)
    bad_crc[png.index(b"IDAT") + 40] ^= 0xFF
    gif_frames = [Image.new("P", (64, 64), i) for i in range(3)]
    animated = io.BytesIO()
    gif_frames[0].save(animated, "GIF", save_all=True, append_images=gif_frames[1:], loop=0)
    floats = np.full((64, 64), np.nan, np.float32)
    floats[::2] = np.inf
    exif = Image.Exif()
    exif[0x0112] = 9  # an orientation that does not exist
    tiff_pages = io.BytesIO()
    Image.new("L", (32, 32)).save(tiff_pages, "TIFF", save_all=True, append_images=[Image.new("L", (64, 64), 255)])
    return {
        "empty": (".jpg", b""),
        "random_bytes": (".jpg", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()),
        "text": (".png", b"hello, I am not an image\n" * 20),
        "html_script": (".jpg", b"<html><script>alert(1)</script></html>"),
        "svg": (".png", b'<svg xmlns="http://www.w3.org/2000/svg" width="9000" height="9000"><rect/></svg>'),
        "pdf": (".jpg", b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF"),
        "jpeg_truncated": (".jpg", photo[:len(photo) // 3]),
        "jpeg_soi_then_garbage": (".jpg", b"\xff\xd8\xff\xe0" + rng.integers(0, 256, 2048, dtype=np.uint8).tobytes()),
        "jpeg_claims_60000px": (".jpg", _jpeg_claiming(60000, 60000)),
        "png_truncated": (".png", png[:len(png) // 2]),
        "png_bad_crc": (".png", bytes(bad_crc)),
        "png_header_100000px": (".png", _png_header_only(100_000, 100_000)),
        "png_bomb_64mp": (".png", _save(Image.new("L", (8000, 8000)), "PNG")),
        "one_pixel": (".png", _save(Image.new("RGB", (1, 1), "red"), "PNG")),
        "ten_pixels": (".png", _save(Image.new("RGB", (10, 10)), "PNG")),
        "one_by_4000": (".png", _save(Image.new("L", (1, 4000), 128), "PNG")),
        "4000_by_one": (".png", _save(Image.new("L", (4000, 1), 128), "PNG")),
        "png_16bit": (".png", _save(Image.fromarray(rng.integers(0, 65535, (80, 80), dtype=np.uint16)), "PNG")),
        "rgba_transparent": (".png", _save(Image.new("RGBA", (120, 120), (0, 0, 0, 0)), "PNG")),
        "gray_alpha": (".png", _save(Image.new("LA", (120, 120), (30, 128)), "PNG")),
        "palette_transparent_gif": (".gif", _save(Image.new("P", (90, 90), 0), "GIF", transparency=0)),
        "animated_gif": (".gif", animated.getvalue()),
        "cmyk_jpeg": (".jpg", _save(Image.open(FACES).convert("CMYK"), "JPEG")),
        "one_bit_bmp": (".bmp", _save(Image.open(FACES).convert("1"), "BMP")),
        "float_tiff_nan_inf": (".tif", _save(Image.fromarray(floats, "F"), "TIFF")),
        "int32_tiff_negative": (".tif", _save(Image.fromarray(np.full((50, 50), -7, np.int32), "I"), "TIFF")),
        "multipage_tiff": (".tif", tiff_pages.getvalue()),
        "webp": (".webp", _save(Image.open(FACES), "WEBP")),
        "exif_orientation_9": (".jpg", _save(Image.open(FACES), "JPEG", exif=exif)),
        "ico": (".ico", _save(Image.new("RGB", (32, 32), "blue"), "ICO")),
        "pgm": (".pgm", _save(Image.open(FACES).convert("L"), "PPM")),
        "noise_1600": (".png", _save(Image.fromarray(rng.integers(0, 256, (1600, 1600, 3), dtype=np.uint8)), "PNG")),
        "black_1024": (".jpg", _save(Image.new("RGB", (1024, 1024)), "JPEG")),
        "wrong_suffix_png_as_jpg": (".jpg", png),
    }


def _library_outcome(recognizer, data: bytes):
    """('ok', faces) or ('error', message); any other exception fails the test."""
    from fer.errors import FerError

    try:
        return "ok", len(recognizer.predict(data, models="all").faces)
    except FerError as e:
        assert str(e) and "Traceback" not in str(e)
        return "error", str(e)


def _rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def test_there_are_at_least_twenty_kinds():
    assert len(hostile_images()) >= 30


def test_library_gives_a_result_or_a_clear_error_for_every_kind_with_bounded_memory(app_zoo):
    from fer.inference import Recognizer

    recognizer = Recognizer.from_zoo(app_zoo)
    cases = hostile_images()
    outcomes = {name: _library_outcome(recognizer, data) for name, (_, data) in cases.items()}
    assert outcomes["empty"][0] == outcomes["png_header_100000px"][0] == outcomes["png_bomb_64mp"][0] == "error"
    assert outcomes["webp"] == outcomes["wrong_suffix_png_as_jpg"] == ("ok", 2)
    assert sum(kind == "ok" for kind, _ in outcomes.values()) >= 10
    baseline = _rss_mb()
    for _ in range(3):
        for name, (_, data) in cases.items():
            assert _library_outcome(recognizer, data) == outcomes[name], name  # deterministic
    assert _rss_mb() - baseline < 150, "memory grows with every round of hostile images"


def test_app_answers_every_kind_as_the_library_does_and_memory_stays_bounded(app_process, app_zoo, tmp_path):
    from gradio_client import Client, handle_file

    from fer.inference import Recognizer

    url, pid = app_process
    recognizer = Recognizer.from_zoo(app_zoo)
    client = Client(url, verbose=False)
    paths = {}
    for name, (suffix, data) in hostile_images().items():
        paths[name] = tmp_path / f"{name}{suffix}"
        paths[name].write_bytes(data)

    def app_outcome(path):
        try:
            return "ok", len(client.predict(handle_file(str(path)), "alpha", api_name="/predict"))
        except Exception as e:  # gradio_client raises AppError with the server's message
            return "error", str(e)

    # The library's answers are deterministic (test_library_gives_a_result_or_a_clear_error_...): computed once.
    expected = {name: _library_outcome(recognizer, path.read_bytes()) for name, path in paths.items()}
    rss = []
    for _ in range(3):
        for name, path in paths.items():
            kind, got = app_outcome(path)
            want_kind, want = expected[name]
            assert kind == want_kind, (name, got, want)
            if kind == "error":
                assert want in got, (name, got, want)  # the library's message reaches the client
            else:
                assert got == want, name
        rss.append(_rss_mb(pid))
    assert app_outcome(FACES) == ("ok", 2)  # the server still answers
    assert rss[-1] - rss[0] < 150, f"the server's memory grows round after round: {rss} MB"

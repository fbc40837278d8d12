"""Peak and final memory of a real ``facetrust serve`` under concurrent decompression-bomb images.

Issue 10, item 2: a 4.9 KB 1-bit PNG of 6,320 × 6,320 px, and a 6.7 KB JPEG whose header
claims 6,000 × 6,000 px (a grey JPEG of that size cut short), each decode to ~40 M pixels; and
the two costliest decodes an audit found (December 1): a 16-bit grey PNG and an RGB JPEG of
6,000 × 6,600 px whose EXIF says to turn them. The
script starts ``facetrust serve --no-auth`` on a free loopback port in a temporary data
directory (the real engine; the per-user config directory also points into the temporary
folder), waits for ``/health``, measures the resting RSS after one small warm-up request, then
fires ``--concurrent`` DetectFaces requests of the PNG at once, waits, and does the same with
the JPEG. The server's RSS (``/proc/PID/status`` VmRSS) is sampled every 20 ms throughout.
Every answer is counted by status and exception name. Targets: peak RSS under 2 GB, no error
but ``ThrottlingException`` or ``ImageTooLargeException``, RSS back near the baseline after.

``measure_memory()`` returns the numbers as a dict (``bench/hardening.py`` imports it); run as
a script it writes ``bench/results/hardening-memory.json`` and ``.md``::

    nice -n 5 .venv/bin/python bench/hardening_memory.py            # --concurrent 32
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from host import load_avg, machine_info

RESULTS = Path(__file__).resolve().parent / "results"
TARGET = "RekognitionService.DetectFaces"
ALLOWED = {"ThrottlingException", "ImageTooLargeException"}


def bomb_png() -> bytes:
    """A 1-bit PNG of 6,320 × 6,320 px, all black: about 4.9 KB."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("1", (6320, 6320), 0).save(out, "PNG", optimize=True)
    return out.getvalue()


def bomb_jpeg() -> bytes:
    """A JPEG whose header claims 6,000 × 6,000 px: a grey one of that size, cut to 6.7 KB."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (6000, 6000), (128, 128, 128)).save(out, "JPEG", quality=50)
    return out.getvalue()[:6700] + b"\xff\xd9"


def bomb_png16_turned() -> bytes:
    """A 16-bit grey PNG of 6,000 × 6,600 px whose EXIF says to turn it a quarter: about 77 KB.
    Pillow holds it at 2 bytes a pixel and turns it into a second copy: the costliest decode found."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    Image.new("I;16", (6000, 6600), 0).save(out, "PNG", exif=exif, optimize=True)
    return out.getvalue()


def bomb_jpeg_rgb_turned() -> bytes:
    """An RGB JPEG of 6,000 × 6,600 px whose EXIF says to turn it a quarter (Pillow keeps RGB at 4 bytes a pixel)."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    Image.new("RGB", (6000, 6600), (128, 100, 90)).save(out, "JPEG", quality=30, exif=exif)
    return out.getvalue()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class _Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, _rss_mb(self.pid))
            except (OSError, ValueError):
                return
            time.sleep(0.02)


def _call(url: str, image: bytes) -> tuple[int, str]:
    import httpx

    body = json.dumps({"Image": {"Bytes": base64.b64encode(image).decode()}})
    headers = {"X-Amz-Target": TARGET, "Content-Type": "application/x-amz-json-1.1"}
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=120)
    except httpx.HTTPError as exc:
        return 0, type(exc).__name__
    name = response.headers.get("x-amzn-errortype", "") if response.status_code != 200 else "ok"
    return response.status_code, name


def _burst(url: str, image: bytes, count: int) -> Counter[str]:
    with ThreadPoolExecutor(count) as pool:
        answers = list(pool.map(lambda _: _call(url, image), range(count)))
    return Counter(f"{status} {name}" for status, name in answers)


def _wait_ready(url: str, server: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"facetrust serve exited with status {server.returncode}")
        try:
            if httpx.get(url + "health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("facetrust serve did not answer /health in time")


def measure_memory(concurrent: int = 32, settle: float = 3.0) -> dict[str, Any]:
    """Run the server, fire the bursts, and return RSS (MB) and the answers counted."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # the bombs are made here on purpose
    images = {
        "png_1bit_6320": bomb_png(),
        "jpeg_claims_6000": bomb_jpeg(),
        "png_16bit_turned_6000x6600": bomb_png16_turned(),
        "jpeg_rgb_turned_6000x6600": bomb_jpeg_rgb_turned(),
    }
    executable = Path(sys.executable).with_name("facetrust")
    with tempfile.TemporaryDirectory(prefix="facetrust-hardening-") as tmp:
        port = _free_port()
        env = dict(os.environ, XDG_CONFIG_HOME=str(Path(tmp) / "config"), FACETRUST_DATA_DIR=str(Path(tmp) / "data"))
        command = [str(executable), "serve", "--no-auth", "--host", "127.0.0.1", "--port", str(port)]
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}/"
        try:
            _wait_ready(url, server)
            small = io.BytesIO()
            Image.new("RGB", (320, 240), (90, 120, 150)).save(small, "PNG")
            _call(url, small.getvalue())  # warm-up: models loaded, first request served
            time.sleep(settle)
            baseline = _rss_mb(server.pid)
            sampler = _Sampler(server.pid)
            sampler.start()
            bursts: dict[str, Any] = {}
            overall = 0.0
            for name, image in images.items():
                started = time.perf_counter()
                sampler.peak = _rss_mb(server.pid)  # each burst's own peak
                answers = _burst(url, image, concurrent)
                burst_peak = sampler.peak
                time.sleep(settle)
                overall = max(overall, burst_peak, sampler.peak)
                bursts[name] = {
                    "bytes": len(image),
                    "answers": dict(sorted(answers.items())),
                    "seconds": round(time.perf_counter() - started, 2),
                    "peak_rss_mb": round(max(burst_peak, sampler.peak), 1),
                    "rss_after_mb": round(_rss_mb(server.pid), 1),
                }
            sampler.stop.set()
            sampler.join()
            final = _rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(30)
    unexpected = {
        answer: n
        for burst in bursts.values()
        for answer, n in burst["answers"].items()
        if not answer.startswith("200 ") and answer.split(" ", 1)[1] not in ALLOWED
    }
    return {
        "concurrent": concurrent,
        "baseline_rss_mb": round(baseline, 1),
        "peak_rss_mb": round(max(overall, baseline), 1),
        "final_rss_mb": round(final, 1),
        "bursts": bursts,
        "unexpected_answers": unexpected,
        "ok": max(overall, baseline) < 2048 and not unexpected,
    }


def _markdown(result: dict[str, Any], machine: dict[str, Any]) -> str:
    lines = [
        "# Server memory under concurrent decompression-bomb images (bench/hardening_memory.py)",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, {machine['date']}. "
        f"Load average {machine['load_before'][0]} at the start, {machine['load_after'][0]} at the end "
        "(other engineers' processes share the machine).",
        "",
        f"A real `facetrust serve --no-auth` (default settings: `decode_budget_pixels` 100 M, engine YuNet + SFace), "
        f"{result['concurrent']} concurrent DetectFaces requests per image, RSS sampled every 20 ms.",
        "",
        "| RSS | MB |",
        "|---|---|",
        f"| baseline (after a warm-up request) | {result['baseline_rss_mb']} |",
        f"| peak | {result['peak_rss_mb']} |",
        f"| final ({3} s after the last burst) | {result['final_rss_mb']} |",
        "",
        "| image | bytes | answers (status, exception) | seconds | peak RSS MB | RSS after MB |",
        "|---|---|---|---|---|---|",
    ]
    for name, burst in result["bursts"].items():
        answers = ", ".join(f"{k}: {v}" for k, v in burst["answers"].items())
        lines.append(
            f"| {name} | {burst['bytes']:,} | {answers} | {burst['seconds']} | {burst['peak_rss_mb']} "
            f"| {burst['rss_after_mb']} |"
        )
    lines += ["", f"Target met (peak < 2 GB, no error but throttling/too large): **{result['ok']}**", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrent", type=int, default=32)
    args = parser.parse_args()
    machine = machine_info()
    result = measure_memory(args.concurrent)
    machine["load_after"] = load_avg()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "hardening-memory.json").write_text(json.dumps({"machine": machine, **result}, indent=2) + "\n")
    (RESULTS / "hardening-memory.md").write_text(_markdown(result, machine))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

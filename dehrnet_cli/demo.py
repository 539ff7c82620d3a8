"""`make demo`: annotate sample images and a short sample video with the best weights available.

Online: what `dehrnet predict` runs with no flags: the HRNet-W32 384x288 COCO baseline from the weights
registry and ultralytics' YOLO26n person detector (both downloaded on first use). Offline (as on CI): one
line on how to get real weights, then the
whole pipeline still runs with clearly labelled untrained DE-HRNet weights and OpenCV's HOG detector,
so every stage is seen working. Exits 0 either way.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.estimator import PoseEstimator
from dehrnet_cli.predict import PredictJob, run_predict
from dehrnet_cli.progress import note
from dehrnet_cli.sinks.render import UNTRAINED_BANNER
from dehrnet_cli.sinks.video_writer import VideoWriter
from dehrnet_cli.video.settings import video_settings
from dehrnet_cli.weights.model_choice import BASELINE

OUT = Path("demo_out")


def sample_images() -> list[Path]:
    """The person photos that ship inside the ultralytics package."""
    import ultralytics

    return sorted((Path(ultralytics.__file__).parent / "assets").glob("*.jpg"))


def make_sample_video(image: Path, out: Path, frames: int = 24, size: tuple[int, int] = (640, 360)) -> Path:
    """A short pan across a sample photo, written as H.264 (a stand-in for a real clip)."""
    photo = cv2.imread(str(image))
    h, w = photo.shape[:2]
    crop_w, crop_h = min(w, int(h * size[0] / size[1])), h
    with VideoWriter(out, 12.0, size) as writer:
        for i in range(frames):
            x = int((w - crop_w) * i / max(frames - 1, 1))
            writer.write(cv2.resize(photo[:crop_h, x:x + crop_w], size, interpolation=cv2.INTER_AREA))
    return out


def _real_estimator() -> PoseEstimator:
    return PoseEstimator(detector="yolo", device="auto").prepare()  # the defaults of dehrnet predict


def main() -> int:
    images = sample_images()
    if not images:
        note("demo: the ultralytics package ships no sample images; nothing to annotate")
        return 0
    OUT.mkdir(exist_ok=True)
    staging = OUT / "input"
    staging.mkdir(exist_ok=True)
    video = make_sample_video(images[0], staging / "pan.mp4")
    try:
        estimator, tag, kpt_thr = _real_estimator(), "hrnet_w32", 0.3
        banner = None
    except DehrnetError as e:
        note(f"demo: real weights unavailable ({e}). To get them: dehrnet weights download {BASELINE} "
                          "(or place the file it names), or pass --weights FILE to dehrnet predict.")
        note(f"demo: running every stage with [bold yellow]{UNTRAINED_BANNER}[/] and OpenCV's HOG "
                          "detector instead")
        estimator = PoseEstimator(model="dehrnet_w32_384x288", untrained=True, detector="hog", device="auto")
        tag, kpt_thr, banner = "untrained", float(-np.inf), UNTRAINED_BANNER
    folder = staging / "images"
    folder.mkdir(exist_ok=True)
    for image in images:
        (folder / image.name).write_bytes(image.read_bytes())
    outputs = []
    # with real weights the video is tracked and smoothed (issue 10); untrained poses have nothing to track
    tracked = None if banner else video_settings(track=True, smooth=True, kpt_thr=kpt_thr)
    for source, out, json_path, settings in [
            (folder, OUT / f"images_{tag}", OUT / f"images_{tag}.json", None),
            (video, OUT / f"pan_{tag}.mp4", OUT / f"pan_{tag}.json", tracked)]:
        summary = run_predict(estimator, PredictJob(str(source), out=out, json_path=json_path, kpt_thr=kpt_thr,
                                                    draw_boxes=True, banner=banner, video=settings))
        outputs += summary.outputs
        note(f"demo: {source.name}: {summary.frames} frames, {summary.people} people, "
                          f"{summary.fps:.1f} frames/s on {estimator.backend.device}")
    print("demo outputs:")
    for path in outputs:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

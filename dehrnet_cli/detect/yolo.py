"""ultralytics YOLO as the person detector (class 0 only, batched over frames). Its file is found offline first
(a path, ./NAME, the weights cache), a known name is checked against its published sha256 when the manifest has
one, and every file is opened without running code from it (`detect.safe_load`).

`engine="openvino"` runs it through ultralytics' own OpenVINO export, made once beside the weights
(`<stem>_openvino_model/`, ultralytics' name, dynamic input shape so that frames keep the same letterbox as
with torch) and remade when the weights are newer. On the 2-core AVX512-BF16 EPYC it took 7-12 ms a 1280x720
frame against 13-32 ms with torch (yolo26n, 4 frames a call). OpenVINO computes in bf16 on such CPUs, so the
boxes move slightly: matched boxes kept IoU >= 0.98 with torch's, corners within 0.7 px and scores within 0.016
(a yolo26n trained on the 4 COCO sample images; docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from dehrnet_cli.detect.base import keep_top
from dehrnet_cli.detect.safe_load import ALTERNATIVES, detector_format, load_yolo, verify_published
from dehrnet_cli.env import flag, offline
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.stage_data import Detections, Frame

PERSON_CLASS = 0  # COCO class index of 'person' in YOLO models
# yolo26n rather than yolo11n: 40.9 vs 39.5 COCO mAP by ultralytics' docs, NMS-free, and on the 2-core EPYC (from
# their yamls, random weights, 1280x720, 1 thread, interleaved) 85-258 ms a frame against 93-309 ms (docs/benchmarks.md)
DEFAULT_YOLO = "yolo26n.pt"
DEFAULT_YOLO_CONF = 0.25
DETECTOR_ENGINES = ("torch", "openvino")


def locate_yolo_weights(weights: str) -> str:
    """A path or name for `load_yolo`: a yaml; a file or export folder that exists; a bare name found as ./NAME or
    in the weights cache (a known name checked against its published sha256); a known name with a published sha256
    downloaded into the cache and checked; else the name, which ultralytics downloads itself. DehrnetError for a
    path that does not exist, a file that is not the published one, and a name not found while downloads are off."""
    if weights.endswith((".yaml", ".yml")):
        return weights
    from dehrnet_cli.weights.cache import weights_dir
    from dehrnet_cli.weights.manifest import load_detectors

    bare = "/" not in weights and os.sep not in weights  # a name, not a path (./yolo26n.pt is a path)
    known = load_detectors().get(weights) if bare else None
    if Path(weights).exists():
        if known is not None:
            verify_published(Path(weights), known)
        return weights
    if not bare:
        raise DehrnetError(f"--det-model {weights}: no such file or folder; {ALTERNATIVES}")
    cached = weights_dir() / weights
    if cached.exists():
        if known is not None:
            verify_published(cached, known)
        return str(cached)
    if offline(include_yolo=True):
        switch = "DEHRNET_OFFLINE" if flag("DEHRNET_OFFLINE") else "YOLO_OFFLINE"
        fetch = f"download {known.url} on a machine with network access and place it" if known else "place it"
        raise DehrnetError(f"--det-model {weights}: not found in this folder nor in {cached.parent}, and downloads "
                           f"are off ({switch} is set): {fetch} at {cached} or ./{weights}, {ALTERNATIVES}")
    if known is not None and known.sha256 is not None:
        from dehrnet_cli.weights.download import download

        return str(download(known.url, cached, known.sha256))
    return weights  # ultralytics downloads its published assets itself (no sha256 to check them against)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """ultralytics' exporter reports on stdout, through its logger and with torch's tracer warnings: none of that
    is dehrnet's output."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def openvino_export_dir(weights: Path) -> Path:
    """Where ultralytics' OpenVINO export of the .pt `weights` lives: beside it, `<stem>_openvino_model/`."""
    return weights.with_name(f"{weights.stem}_openvino_model")


def openvino_yolo(weights: Path) -> Path:
    """ultralytics' OpenVINO export of the .pt `weights` (dynamic shape, fp32 weights), made beside it when missing
    or older than the weights, atomically (exported from a copy in a work folder, then moved into place)."""
    from ultralytics import YOLO

    out = openvino_export_dir(weights)
    model_xml = out / f"{weights.stem}.xml"
    if model_xml.is_file() and model_xml.stat().st_mtime >= weights.stat().st_mtime:
        return out
    try:
        with tempfile.TemporaryDirectory(prefix=f".{weights.stem}.openvino-", dir=weights.parent) as work, _quiet():
            copy = Path(shutil.copy2(weights, Path(work) / weights.name))
            exported = Path(YOLO(str(copy)).export(format="openvino", dynamic=True))
            shutil.rmtree(out, ignore_errors=True)
            try:
                os.replace(exported, out)
            except OSError:
                if not model_xml.is_file():  # else another process (a corpus worker) put its export there first
                    raise
    except OSError as e:
        raise DehrnetError(f"--det-model {weights}: cannot write its OpenVINO export beside it ({e.strerror or e}); "
                           "use the torch detector engine") from None
    except Exception as e:  # ultralytics' exporter raises many types
        reason = str(e).replace("❌", "").strip().splitlines()[0][:160]
        raise DehrnetError(f"--det-model {weights}: ultralytics could not export it to OpenVINO ({reason}); use the "
                           "torch detector engine") from None
    return out


def refuse_openvino(weights: str, device: str) -> None:
    """DehrnetError when the OpenVINO engine cannot run `weights` on `device`: it exports a .pt file (not a yaml's
    random weights, not an export) and runs on the CPU."""
    kind = detector_format(weights)
    if kind != "pt":
        what = "a yaml has no weights to export" if kind == "yaml" else f"it is already an {kind} export"
        raise DehrnetError(f"--det-model {weights}: --det-engine openvino exports a YOLO .pt file, and {what}; give "
                           "the .pt file, or --det-engine torch")
    if not (device == "auto" or device.startswith("cpu")):
        raise DehrnetError(f"--device {device}: the OpenVINO detector runs on the CPU; use --det-engine torch")


class YoloPersonDetector:
    """ultralytics YOLO, person class only, batched over frames; `engine` "torch" or "openvino" (ultralytics'
    OpenVINO export of the weights, made once beside them: see the module docstring)."""

    def __init__(self, weights: str = DEFAULT_YOLO, conf: float = DEFAULT_YOLO_CONF, iou: float = 0.7,
                 max_people: int | None = None, device: str = "auto", engine: str = "torch") -> None:
        if engine not in DETECTOR_ENGINES:
            raise DehrnetError(f"--det-engine {engine!r}: use one of {', '.join(DETECTOR_ENGINES)}")
        if engine == "openvino":
            refuse_openvino(weights, device)
        self.model = load_yolo(locate_yolo_weights(weights))
        self.engine = "torch"
        self.conf, self.iou, self.max_people = conf, iou, max_people
        self.device = None if device == "auto" else device
        if engine == "openvino":
            self.use_openvino()

    def use_openvino(self) -> None:
        """Run on ultralytics' OpenVINO export of the .pt file this detector read (made beside it once; a name
        ultralytics downloaded lands there too). DehrnetError when it cannot be made or loaded."""
        self.model = load_yolo(str(openvino_yolo(Path(self.model.ckpt_path))))
        self.engine, self.device = "openvino", None

    def __call__(self, frames: list[Frame]) -> list[Detections]:
        import torch
        from ultralytics.utils import LOGGER

        threads = torch.get_num_threads()  # ultralytics' select_device lowers it to cores - 1 for good
        level = LOGGER.level  # its notes on loading an export go to stdout, which holds dehrnet's results
        LOGGER.setLevel(logging.WARNING)
        try:
            results = self.model.predict([f.image for f in frames], classes=[PERSON_CLASS], conf=self.conf,
                                         iou=self.iou, max_det=self.max_people or 300, device=self.device,
                                         verbose=False)
        finally:
            torch.set_num_threads(threads)
            LOGGER.setLevel(level)
        out = []
        for r in results:
            boxes = r.boxes.xyxy.cpu().numpy().astype(np.float32)
            scores = r.boxes.conf.cpu().numpy().astype(np.float32)
            out.append(keep_top(Detections(boxes, scores), self.max_people))
        return out

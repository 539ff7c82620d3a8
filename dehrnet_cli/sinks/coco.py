"""Poses as COCO: the results list that COCOeval's loadRes takes, and a full COCO-format file
(images, annotations, categories) that `pycocotools.coco.COCO` loads."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dehrnet_cli.errors import DehrnetError, InternalError
from dehrnet_cli.sinks.atomic import StagedFile, json_bytes, write_bytes_atomic
from dehrnet_cli.stage_data import Poses
from models import KeypointSpec

if TYPE_CHECKING:  # results are built on top of this module (sinks.result draws on poses_to_results)
    from dehrnet_cli.sinks.result import PoseResult

PERSON_CATEGORY_ID = 1  # the category id of every result (a custom keypoint set's category is named after it)
HUMAN_SETS = ("coco", "mpii")


def category(spec: KeypointSpec) -> dict:
    """The COCO category of a keypoint set: "person" for the human sets (COCO-17, MPII-16), else the set's own name,
    with its keypoint names and 1-based skeleton."""
    name = "person" if spec.name in HUMAN_SETS else spec.name
    return {"id": PERSON_CATEGORY_ID, "name": name, "supercategory": name,
            "keypoints": list(spec.names), "skeleton": [[a + 1, b + 1] for a, b in spec.skeleton]}


def _plain(value: float) -> float:
    """A float for JSON without a sign on zero (round(-0.0001, 3) is -0.0, which COCO tools print as "-0.0")."""
    return float(value) + 0.0


def poses_to_results(poses: Poses, image_id: int) -> list[dict]:
    """One COCO result per person, exactly the official HRNet / mmpose results list: image_id, category_id,
    keypoints [x, y, score]*K and score (plus track_id when tracking). No bbox: COCOeval's loadRes would take
    the area from it instead of the keypoint extent, and AP(M)/AP(L) would leave out other predictions."""
    results = []
    for n in range(len(poses)):
        triples = np.concatenate([poses.keypoints_xy[n], poses.kpt_scores[n][:, None]], axis=1)
        entry = {"image_id": int(image_id), "category_id": PERSON_CATEGORY_ID,
                 "keypoints": [_plain(round(float(v), 3)) for v in triples.ravel()], "score": float(poses.scores[n])}
        if poses.track_ids is not None:
            entry["track_id"] = int(poses.track_ids[n])
        results.append(entry)
    return results


class CocoFileBuilder:
    """Accumulates frames and their poses into a COCO-format document and a results list, frame by frame (so
    that the first N frames can be written alone: `document(frames=N)`).

    Keypoint visibility v is 2 above `kpt_thr` and 1 below; num_keypoints counts the keypoints with v > 0 (as
    COCO does: COCOeval ignores people with none), so every predicted keypoint. The files hold no NaN,
    infinity or -0.0.
    """

    def __init__(self, spec: KeypointSpec, kpt_thr: float = 0.3, info: dict | None = None) -> None:
        self.spec = spec
        self.kpt_thr = kpt_thr
        self.images: list[dict] = []
        self.annotations: list[list[dict]] = []  # per image
        self.results: list[list[dict]] = []  # per image
        self.info = info or {}

    def add(self, image_id: int, file_name: str, size: tuple[int, int], poses: Poses) -> None:
        self.images.append({"id": int(image_id), "file_name": file_name, "width": int(size[0]),
                            "height": int(size[1])})
        self.results.append(poses_to_results(poses, image_id))
        first_id = sum(len(a) for a in self.annotations) + 1
        annotations = []
        for n in range(len(poses)):
            scores = poses.kpt_scores[n]
            visible = np.where(scores > self.kpt_thr, 2, 1)
            triples = np.concatenate([poses.keypoints_xy[n], visible[:, None]], axis=1)
            x1, y1, x2, y2 = (float(v) for v in poses.boxes_xyxy[n])
            ann = {"id": first_id + n, "image_id": int(image_id), "category_id": PERSON_CATEGORY_ID,
                   "keypoints": [_plain(round(float(v), 3)) if i % 3 < 2 else int(v)
                                 for i, v in enumerate(triples.ravel())],
                   "num_keypoints": int((visible > 0).sum()), "bbox": [_plain(v) for v in (x1, y1, x2 - x1, y2 - y1)],
                   "area": _plain((x2 - x1) * (y2 - y1)), "iscrowd": 0, "score": float(poses.scores[n]),
                   "keypoint_scores": [_plain(round(float(s), 5)) for s in scores]}
            if poses.track_ids is not None:
                ann["track_id"] = int(poses.track_ids[n])
            annotations.append(ann)
        self.annotations.append(annotations)

    def document(self, frames: int | None = None) -> dict:
        """The COCO-format document of the first `frames` frames (default: all)."""
        return {"info": {"description": "dehrnet predictions", **self.info}, "images": self.images[:frames],
                "annotations": [a for per_image in self.annotations[:frames] for a in per_image],
                "categories": [category(self.spec)]}

    def results_list(self, frames: int | None = None) -> list[dict]:
        """The COCO results list of the first `frames` frames (default: all)."""
        return [r for per_image in self.results[:frames] for r in per_image]

    def write(self, path: Path) -> Path:
        """The COCO-format file at `path`, atomically."""
        return write_bytes_atomic(Path(path), finite_json(str(path), self.document()))

    def write_results(self, path: Path) -> Path:
        """The plain results list at `path`, atomically."""
        return write_bytes_atomic(Path(path), finite_json(str(path), self.results_list()))


def finite_json(what: str, document: dict | list) -> bytes:
    """`document` as JSON, refusing NaN and infinity (a bare `NaN` is not JSON: loaders refuse the file)."""
    try:
        return json_bytes(document, allow_nan=False)
    except ValueError as e:
        raise InternalError(f"{what}: a prediction holds NaN or infinity ({e}); not writing a file that is not "
                            "JSON (are the model's weights finite?)") from None


class CocoSink:
    """The COCO outputs of a run, a sink (sinks.sink_set): the COCO-format file (`json_path`, --json) and the
    results list (`results_path`, --save-results), image ids by `image_ids`."""

    def __init__(self, spec: KeypointSpec, image_ids: ImageIds, json_path: Path | None = None,
                 results_path: Path | None = None, kpt_thr: float = 0.3, info: dict | None = None) -> None:
        self.builder = CocoFileBuilder(spec, kpt_thr, info)
        self.image_ids = image_ids
        self.files = [(StagedFile(path, flag), build) for flag, path, build in
                      (("--json", json_path, self.builder.document), ("--save-results", results_path,
                                                                       self.builder.results_list))
                      if path is not None]

    def add(self, result: PoseResult) -> None:
        self.builder.add(self.image_ids(result.path, result.index), result.name or f"#{result.index}", result.size,
                         result.poses)

    def _stage(self, frames: int | None) -> None:
        for staged, build in self.files:
            staged.write_bytes(finite_json(staged.what, build(frames)))

    def finish(self) -> list[Path]:
        try:
            self._stage(None)
        except BaseException:
            for staged, _ in self.files:
                staged.discard()
            raise
        return [staged.publish() for staged, _ in self.files]

    def abort(self, frames: int) -> list[Path]:
        for staged, _ in self.files:
            staged.discard()
        if frames == 0:
            return []
        self._stage(frames)
        return [kept for staged, _ in self.files if (kept := staged.keep_partial()) is not None]


class ImageIds:
    """COCO image ids of frames: from an annotation file naming the images (--ann), else the numeric file stems
    when every image of the source has a distinct one (COCO naming: 000000000785.jpg -> 785), else 1..N in
    source order (also for video frames). Without the source's `paths` (unknown), each frame by itself: its
    numeric stem, else its position + 1."""

    def __init__(self, ann_file: Path | None = None, paths: list[Path] | None = None) -> None:
        self.by_name: dict[str, int] = {}
        self.named_by = f"--ann {ann_file}"
        if ann_file is not None:
            self.by_name = _image_ids_of(Path(ann_file))
        stems = [p.stem for p in paths or []]
        self.numeric_stems: bool | None = None if paths is None else (
            bool(stems) and all(re.fullmatch(r"\d+", s) for s in stems) and len({int(s) for s in stems}) == len(stems))

    @classmethod
    def of_images(cls, images: list[dict]) -> ImageIds:
        """The ids of a COCO document's `images` entries, looked up by file name."""
        ids = cls()
        ids.by_name = {Path(image["file_name"]).name: int(image["id"]) for image in images}
        ids.named_by = "the annotations"
        return ids

    def of_source(self, paths: list[Path] | None, num_frames: int | None) -> list[int]:
        """The ids every frame of a source will get, known before any is read: of image `paths` (an image that
        --ann does not name fails here, before the work), else 1..num_frames (empty when unknown)."""
        if paths is not None:
            return [self(path, index) for index, path in enumerate(paths)]
        return list(range(1, num_frames + 1)) if num_frames else []

    def __call__(self, path: Path | None, frame_index: int) -> int:
        if path is not None and self.by_name:
            if path.name not in self.by_name:
                raise DehrnetError(f"{path}: not among the images of {self.named_by}")
            return self.by_name[path.name]
        if path is not None and self.numeric_stems is None and re.fullmatch(r"\d+", path.stem):
            return int(path.stem)
        if path is not None and self.numeric_stems:
            return int(path.stem)
        return frame_index + 1


def _image_ids_of(ann_file: Path) -> dict[str, int]:
    try:
        return ImageIds.of_images(json.loads(ann_file.read_text())["images"]).by_name
    except FileNotFoundError:
        raise DehrnetError(f"--ann {ann_file}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as e:
        raise DehrnetError(f"--ann {ann_file}: not a COCO annotation file with images[id, file_name] "
                           f"({type(e).__name__}: {e})") from None

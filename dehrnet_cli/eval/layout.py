"""Where an evaluation's files are: the standard COCO and MPII layouts, an ultralytics data.yaml's val split,
and the detector threshold that evaluation uses by default.
"""

from __future__ import annotations

from pathlib import Path

from dehrnet_cli.errors import DehrnetError

EVAL_YOLO_CONF = 0.01


def coco_annotation_for(images_dir: Path) -> Path:
    """The standard COCO layout: `<root>/val2017` -> `<root>/annotations/person_keypoints_val2017.json`."""
    images_dir = Path(images_dir)
    return images_dir.resolve().parent / "annotations" / f"person_keypoints_{images_dir.resolve().name}.json"


def mpii_eval_paths(mpii_dir: Path | None, ann: Path | None, headboxes: Path | None) -> tuple[Path | None, Path, Path]:
    """(image folder, annotation json, head boxes) of an MPII evaluation.

    `mpii_dir` is the official root (holding annot/valid.json and images/) or an image folder; --ann and
    --headboxes override; head boxes default to gt_valid.json or gt_valid.mat beside the annotations.
    """
    images = mpii_dir
    if mpii_dir is not None and (Path(mpii_dir) / "annot").is_dir():
        images = Path(mpii_dir) / "images"
        ann = ann or Path(mpii_dir) / "annot" / "valid.json"
    if ann is None:
        where = f"--mpii {mpii_dir} has no annot/valid.json" if mpii_dir else "no MPII annotations given"
        raise DehrnetError(f"{where}: give the per-person annotation json with --ann FILE (e.g. annot/valid.json)")
    if headboxes is None:
        found = [p for p in (ann.parent / "gt_valid.json", ann.parent / "gt_valid.mat") if p.is_file()]
        if not found:
            raise DehrnetError(f"no head boxes: neither gt_valid.mat nor gt_valid.json beside {ann}; give "
                               "--headboxes FILE (the official gt_valid.mat, or json [[x1, y1], [x2, y2]] per person)")
        headboxes = found[0]
    return images, ann, headboxes


def eval_detector_conf(conf: float | None, detector: str, boxes: Path | None) -> float | None:
    """The user's --conf, else EVAL_YOLO_CONF for YOLO (detections files and HOG keep their own default)."""
    return conf if conf is not None or detector != "yolo" or boxes is not None else EVAL_YOLO_CONF


def yolo_eval_set(data_yaml: Path) -> tuple[Path, dict]:
    """(image root, COCO document) of the val split of an ultralytics pose data.yaml, its keypoint set the
    YAML's; every label line is checked (`datasets.yolo_pose`)."""
    from dehrnet_cli.datasets.yolo_pose import coco_document, read_data_yaml, yolo_keypoint_set

    data = read_data_yaml(Path(data_yaml))
    return data.root, coco_document(data, "val", yolo_keypoint_set(data))


ANALYSIS_FILES = ("pr_curves.png", "keypoint_errors.png", "analysis.html")  # what --analyze writes in its folder


def analysis_folder(figures: Path | None, report: Path | None) -> Path:
    """Where --analyze writes its figures and page: --figures, else `<report stem>_analysis` beside --report,
    else ./dehrnet_analysis."""
    if figures is not None:
        return Path(figures)
    return Path(report).with_name(f"{Path(report).stem}_analysis") if report is not None else Path("dehrnet_analysis")

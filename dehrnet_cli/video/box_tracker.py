"""ultralytics' own multi-object trackers (ByteTrack, BoT-SORT, ...) configured by their YAML files, run on
dehrnet's person boxes before the pose stage; boxes a tracker does not (yet) track are dropped, as
`yolo track` does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.stage_data import Detections

DEFAULT_BOX_TRACKER = "bytetrack.yaml"


def tracker_config(name: str):
    """The ultralytics tracker config (a namespace) named by a YAML file: a built-in name
    (bytetrack.yaml, botsort.yaml, ...) or a path of yours."""
    from ultralytics.utils import YAML, IterableSimpleNamespace
    from ultralytics.utils.checks import check_yaml

    if not name.endswith((".yaml", ".yml")):
        raise DehrnetError(f"--tracker {name}: give 'oks' or an ultralytics tracker YAML, e.g. bytetrack.yaml or "
                           "botsort.yaml")
    try:
        return IterableSimpleNamespace(**YAML.load(check_yaml(name)))
    except (FileNotFoundError, OSError, TypeError, ValueError) as e:
        reason = str(e).replace("❌", "").strip().splitlines()[0][:160] if str(e) else type(e).__name__
        raise DehrnetError(f"--tracker {name}: cannot read it ({reason}); use bytetrack.yaml, botsort.yaml, "
                           f"oks or the path of a tracker YAML") from None


class BoxTracker:
    """An ultralytics tracker (ByteTrack, BoT-SORT, ...) fed with our person boxes, one frame per call."""

    def __init__(self, config_name: str = DEFAULT_BOX_TRACKER) -> None:
        cfg = tracker_config(config_name)
        try:  # ultralytics' trackers import `lap` and, when it is missing, try to pip install it at run time
            import lap  # noqa: F401
        except ImportError:
            raise DehrnetError(f"--tracker {config_name}: ultralytics' trackers need the 'lap' package: pip install "
                               "'lap>=0.5.12' (or use --tracker oks)") from None
        from ultralytics.trackers.track import TRACKER_MAP

        kind = getattr(cfg, "tracker_type", None)
        tracker_cls = TRACKER_MAP.get(kind)
        if tracker_cls is None or hasattr(tracker_cls, "setup_predictor") or hasattr(tracker_cls,
                                                                                     "compute_frame_extras"):
            usable = sorted(k for k, c in TRACKER_MAP.items()
                            if not hasattr(c, "setup_predictor") and not hasattr(c, "compute_frame_extras"))
            raise DehrnetError(f"--tracker {config_name}: tracker_type {kind!r} is not usable on dehrnet's boxes; "
                               f"use one of {', '.join(usable)}")
        cfg.device = "cpu"
        self.name = Path(config_name).name
        self.tracker = tracker_cls(args=cfg)

    def update(self, detections: Detections, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """rows (M,) int64 of the detections the tracker keeps this frame and their track ids (M,) int64.
        image_bgr (H, W, 3) is used by trackers with camera-motion compensation (BoT-SORT)."""
        from ultralytics.engine.results import Boxes

        data = np.zeros((len(detections), 6), np.float32)  # x1, y1, x2, y2, score, class 0 (person)
        data[:, :4] = detections.boxes_xyxy
        data[:, 4] = detections.scores
        tracks = self.tracker.update(Boxes(data, image_bgr.shape[:2]), image_bgr)
        if len(tracks) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return tracks[:, -1].astype(np.int64), tracks[:, 4].astype(np.int64)

"""The video stage of predict: detection every N frames, track ids and keypoint smoothing.

A `VideoStage` holds the state of one source run (trackers, filters, the last poses) and replaces
`PoseEstimator.estimate_frames` for it: frames go in in order, poses with `track_ids` come out.

    detect (every det_every-th frame; boxes from the last frame's keypoints in between)
      -> box tracker (ByteTrack/BoT-SORT: ids, keeps tracked boxes)   [--tracker *.yaml]
      -> pose stage
      -> OKS tracker (ids by pose similarity)                          [--tracker oks]
      -> One-Euro smoothing per track and keypoint                     [--smooth]
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from dehrnet_cli.detect.base import Detector, WholeImageDetector
from dehrnet_cli.detect.yolo import YoloPersonDetector
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.topdown import TopDownEstimator
from dehrnet_cli.postprocess.oks import oks_sigmas
from dehrnet_cli.stage_data import Detections, Frame, Poses, frame_time_s
from dehrnet_cli.video.box_tracker import DEFAULT_BOX_TRACKER, BoxTracker
from dehrnet_cli.video.boxes import boxes_from_keypoints, source_rows
from dehrnet_cli.video.oks_tracker import OKS_TRACKER, OksTracker
from dehrnet_cli.video.settings import VideoSettings
from dehrnet_cli.video.smoothing import PoseSmoother


class VideoStage:
    """Frames of one source, in order -> poses with track ids (and smoothed keypoints if asked)."""

    def __init__(self, detector: Detector, topdown: TopDownEstimator, settings: VideoSettings,
                 fps: float | None = None) -> None:
        self.detector, self.topdown, self.settings, self.fps = detector, topdown, settings, fps
        self.box_tracker: BoxTracker | None = None
        self.oks_tracker: OksTracker | None = None
        if settings.tracking:
            name = settings.tracker or (DEFAULT_BOX_TRACKER if isinstance(detector, YoloPersonDetector)
                                        else OKS_TRACKER)
            if name == OKS_TRACKER:
                self.oks_tracker = OksTracker(oks_sigmas(topdown.spec), settings.oks_match_thr, settings.max_age,
                                              settings.kpt_thr)
            elif isinstance(detector, WholeImageDetector):
                raise DehrnetError(f"--tracker {name}: --detector none gives one whole-image box per frame, "
                                   "nothing for a box tracker to follow; use --tracker oks")
            else:
                self.box_tracker = BoxTracker(name)
        self.smoother = PoseSmoother(settings.smooth) if settings.smooth is not None else None
        self.last_poses: Poses | None = None  # raw poses of the last frame (boxes for det_every > 1)
        self.since_detection = 0

    def estimate(self, frames: list[Frame]) -> list[Poses]:
        """Poses of consecutive frames (one Poses per frame, in order)."""
        if self.settings.det_every > 1:
            return [self._estimate_one(frame) for frame in frames]
        tracked = [self._track_boxes(f, d) for f, d in zip(frames, self.detector(frames))]
        poses = self.topdown.estimate([f.image for f in frames], [det for det, _ in tracked])
        return [self._finish(f, p, det, ids) for f, p, (det, ids) in zip(frames, poses, tracked)]

    def _estimate_one(self, frame: Frame) -> Poses:
        """One frame of detection every N: boxes from the detector, or from the last frame's keypoints."""
        last = self.last_poses
        if last is None or len(last) == 0 or self.since_detection >= self.settings.det_every - 1:
            det = self.detector([frame])[0]
            self.since_detection = 0
        else:
            boxes, rows = boxes_from_keypoints(last.keypoints_xy, last.kpt_scores, frame.size, self.settings.kpt_thr)
            det = Detections(boxes, last.box_scores[rows])
            self.since_detection += 1
        det, ids = self._track_boxes(frame, det)
        return self._finish(frame, self.topdown.estimate([frame.image], [det])[0], det, ids)

    def _track_boxes(self, frame: Frame, det: Detections) -> tuple[Detections, np.ndarray | None]:
        """The boxes to estimate and their track ids (a box tracker drops the boxes it does not track)."""
        if self.box_tracker is None:
            return det, None
        rows, ids = self.box_tracker.update(det, frame.image)
        return Detections(det.boxes_xyxy[rows], det.scores[rows]), ids

    def _finish(self, frame: Frame, poses: Poses, det: Detections, box_ids: np.ndarray | None) -> Poses:
        self.last_poses = poses
        if box_ids is not None:
            poses = replace(poses, track_ids=box_ids[source_rows(poses.boxes_xyxy, det.boxes_xyxy)])
        elif self.oks_tracker is not None:
            poses = replace(poses, track_ids=self.oks_tracker.update(poses))
        if self.smoother is not None:
            poses = self.smoother(poses, frame_time_s(frame, self.fps))
        return poses

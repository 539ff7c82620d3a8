"""What the video stage is asked to do, from the predict flags: tracking, smoothing, detection every N frames
(no torch: the CLI checks these flags before any model work)."""

from __future__ import annotations

from dataclasses import dataclass

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.video.oks_tracker import OKS_TRACKER
from dehrnet_cli.video.smoothing import OneEuroSettings

TRACK_DET_CONF = 0.1  # YOLO score threshold under tracking: ByteTrack's second stage needs low boxes


@dataclass(frozen=True)
class VideoSettings:
    """track: give people stable ids; tracker: an ultralytics tracker YAML or "oks" (None: bytetrack.yaml
    with the YOLO detector, oks otherwise); det_every: run the detector on every N-th frame only;
    smooth: One-Euro settings, or None for raw keypoints (smoothing implies tracking); kpt_thr: joints
    scored below it neither shape keypoint boxes nor count in the OKS; oks_match_thr and max_age: the
    OKS tracker's least OKS to continue a track and the frames an unseen id lives on."""

    track: bool = False
    tracker: str | None = None
    det_every: int = 1
    smooth: OneEuroSettings | None = None
    kpt_thr: float = 0.3
    oks_match_thr: float = 0.2
    max_age: int = 30

    def __post_init__(self) -> None:
        if self.det_every < 1:
            raise DehrnetError(f"--det-every {self.det_every}: must be 1 (every frame) or more")
        if self.max_age < 0:
            raise DehrnetError(f"max_age {self.max_age}: must be 0 or more frames")

    @property
    def tracking(self) -> bool:
        return self.track or self.smooth is not None

    @property
    def active(self) -> bool:
        """Whether anything differs from plain per-frame estimation."""
        return self.tracking or self.det_every > 1


def detector_conf(settings: VideoSettings, detector: str, conf: float | None, boxes_file: bool = False
                  ) -> float | None:
    """The detector score threshold to use: `conf` if given; for YOLO under a box tracker, TRACK_DET_CONF
    (as `yolo track` does), since the tracker itself decides which low-score boxes continue a track."""
    yolo = detector == "yolo" and not boxes_file
    box_tracker = settings.tracking and settings.tracker != OKS_TRACKER
    return TRACK_DET_CONF if conf is None and yolo and box_tracker else conf


def video_settings(track: bool = False, tracker: str | None = None, det_every: int = 1, smooth: bool = False,
                   min_cutoff: float | None = None, beta: float | None = None, kpt_thr: float = 0.3) -> VideoSettings:
    """VideoSettings from the predict flags: --tracker implies --track, --smooth implies tracking, and the
    smoothing parameters need --smooth; keypoints under --kpt-thr hold their filter."""
    given = {name: value for name, value in (("min_cutoff", min_cutoff), ("beta", beta)) if value is not None}
    if given and not smooth:
        flags = " and ".join(f"--smooth-{name.replace('_', '-')}" for name in given)
        raise DehrnetError(f"{flags} set the keypoint filter: add --smooth to turn it on")
    smoothing = OneEuroSettings(score_thr=kpt_thr, **given) if smooth else None
    return VideoSettings(track=track or tracker is not None, tracker=tracker, det_every=det_every, smooth=smoothing,
                         kpt_thr=kpt_thr)

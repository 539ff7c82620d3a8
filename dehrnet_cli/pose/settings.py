"""The settings of the top-down stage, in a module of their own (no torch, no OpenCV) so that the CLI can
take its option defaults from them while `dehrnet --help` stays light."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopDownSettings:
    """How `pose.topdown.TopDownEstimator` runs. The defaults are the official HRNet test protocol and the one
    place the pipeline defaults live: PoseEstimator and the CLI options refer to these fields."""

    flip: bool = True  # flip test: average with the mirrored crop's heatmaps
    decoder: str = "msra"  # "msra" (official) or "dark"
    batch: int = 32  # crops per forward pass (before flipping)
    kpt_score_thr: float = 0.2  # rescoring: keypoints above this count (official in_vis_thre)
    oks_thr: float | None = 0.9  # OKS-NMS threshold per frame (official oks_thre); None turns it off
    crops_on: str = "auto"  # where crops are warped, run and decoded: auto, host or device (pose.topdown)

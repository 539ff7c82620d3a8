"""The settings of the top-down stage, in a module of their own (no torch, no OpenCV) so that the CLI can
take its option defaults from them while `dehrnet --help` stays light."""

from __future__ import annotations

import math
from dataclasses import dataclass

from dehrnet_cli.errors import DehrnetError

DECODERS = ("msra", "dark")

CROPS_ON = ("auto", "host", "device")  # where crops are warped, run and decoded


@dataclass(frozen=True)
class TopDownSettings:
    """How `pose.topdown.TopDownEstimator` runs, checked once. The defaults are the official HRNet test protocol
    and the one place the pipeline defaults live: PoseEstimator and the CLI options refer to these fields."""

    flip: bool = True  # flip test: average with the mirrored crop's heatmaps
    decoder: str = "msra"  # "msra" (official) or "dark"
    batch: int = 32  # crops per forward pass (before flipping)
    kpt_score_thr: float = 0.2  # rescoring: keypoints above this count (official in_vis_thre)
    oks_thr: float | None = 0.9  # OKS-NMS threshold per frame (official oks_thre); None turns it off
    crops_on: str = "auto"  # where crops are warped, run and decoded: auto, host or device (pose.topdown)

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            raise DehrnetError(f"--decoder {self.decoder!r}: use one of {', '.join(DECODERS)}")
        if self.batch < 1:
            raise DehrnetError(f"--batch {self.batch}: must be at least 1")
        if self.crops_on not in CROPS_ON:
            raise DehrnetError(f"crops_on {self.crops_on!r}: use one of {', '.join(CROPS_ON)}")
        for flag, value in (("--kpt-score-thr", self.kpt_score_thr), ("--oks-nms", self.oks_thr)):
            if value is not None and (math.isnan(value) or not 0 <= value <= 1):
                raise DehrnetError(f"{flag} {value}: must be between 0 and 1")

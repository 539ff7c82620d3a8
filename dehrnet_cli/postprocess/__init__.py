"""Pose post-processing of the official HRNet evaluation (public API): rescoring, one OKS, greedy OKS-NMS.

    from dehrnet_cli.postprocess import oks_nms, rescore
    scores = rescore(kpt_scores, box_scores, thr=0.2)
    keep = oks_nms(kpts, scores, areas, thr=0.9)

`oks` holds the one OKS implementation that NMS, the video tracker and the evaluation breakdown share.
"""

from dehrnet_cli.postprocess.nms import oks_nms
from dehrnet_cli.postprocess.oks import UNIFORM_SIGMA, oks_sigmas
from dehrnet_cli.postprocess.rescore import box_areas, rescore

__all__ = ["UNIFORM_SIGMA", "box_areas", "oks_nms", "oks_sigmas", "rescore"]

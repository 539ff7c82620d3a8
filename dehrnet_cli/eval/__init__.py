"""Evaluation with the standard protocols: coco (COCOeval keypoints), keypoint_breakdown (per-joint OKS),
mpii (PCKh), pck (PCK of annotated people), run (a model over an evaluation set), layout (where an
evaluation's files are).
"""

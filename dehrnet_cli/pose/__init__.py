"""The pose stage: person boxes -> crops -> heatmaps -> keypoints.

geometry (crop matrices, shared with training), flip (the flip test), codec (heatmap encode for training
and decode for inference, in one class), backends (torch and ONNX Runtime behind one call), onnx_session
(sessions and the metadata of exported models), settings (the stage's options: the pipeline defaults),
topdown (the stage that runs them in order).
"""

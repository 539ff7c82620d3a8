"""What video adds to per-frame estimation: stage (the video stage of predict: detection every N frames,
tracking, smoothing), box_tracker (ultralytics' trackers), oks_tracker (ids by pose similarity), boxes
(boxes from the last frame's keypoints), smoothing (One-Euro filters).
"""

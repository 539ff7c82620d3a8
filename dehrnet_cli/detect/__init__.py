"""Person boxes for the top-down stage: every detector maps (frames, image ids) -> one `Detections` per
frame. base (the protocol, the whole image), yolo (ultralytics), hog (OpenCV), boxes_file (a COCO
detections list), factory (`make_detector` from the flags).
"""

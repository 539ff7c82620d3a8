"""Where poses go: atomic (every output file is written atomically), render (skeletons on images),
video_writer (H.264 through PyAV), coco (COCO JSON and results lists), keypoints_csv and crops (analysis
exports), exports (the two together), outputs (planning and checking output paths before any work).
"""

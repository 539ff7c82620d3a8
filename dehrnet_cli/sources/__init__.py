"""Input sources, the first stage: `sources.open.open_source(spec)` turns what the user names (an image, a
folder, a glob, a .txt list, a video, a camera index, a stream URL) into a `Source` of `Frame`s.

base (Source, suffixes), images (reading images, listings), threaded (reader threads), video (PyAV
video, streams, cameras), open (the one entry point).
"""

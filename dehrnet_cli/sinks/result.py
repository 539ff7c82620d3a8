"""`PoseResult`: what one image or video frame gave, for Python users and for every sink.

    result = est("bus.jpg")
    result                      # PoseResult(bus.jpg, 810x1080, 4 people, coco 17 keypoints)
    result.plot()               # annotated copy, (H, W, 3) uint8 BGR
    result.to_coco(image_id=1)  # COCO result dicts
    result.to_df()              # one row per person x keypoint (pandas, else polars)
    result.save("out.jpg")      # the annotated copy, written atomically
    len(result), result[0]      # people; one person (a PoseResult of one)

Shape letters: N people, K keypoints; coordinates are pixels of the image as processed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.sinks.coco import ImageIds, poses_to_results
from dehrnet_cli.sinks.render import draw_poses
from dehrnet_cli.stage_data import Frame, Poses
from models.keypoints import KeypointSpec

TABLE_COLUMNS = ("frame", "time", "track_id", "person", "keypoint", "x", "y", "score")


@dataclass(frozen=True, repr=False)
class PoseResult:
    """The poses of one image or frame with their keypoint set and the frame's facts.

    poses: Poses (boxes_xyxy (N, 4), keypoints_xy (N, K, 2), kpt_scores (N, K), scores (N,), track_ids (N,) or
    None); keypoints: the keypoint set (names, skeleton, flip pairs); image: the frame, (H, W, 3) uint8 BGR (None
    once a sink no longer needs it); index: 0-based position in its source; path: the image file (None for video
    frames); time_s: presentation time of a video frame; name: what outputs call the frame (an image's path
    relative to its source's common folder, or VIDEO#index); size: (w, h) in pixels.
    """

    poses: Poses
    keypoints: KeypointSpec
    image: np.ndarray | None
    index: int = 0
    path: Path | None = None
    time_s: float | None = None
    name: str | None = None
    size: tuple[int, int] = (0, 0)

    @classmethod
    def of_frame(cls, frame: Frame, poses: Poses, keypoints: KeypointSpec, name: str | None = None) -> PoseResult:
        return cls(poses, keypoints, frame.image, frame.index, frame.path, frame.time_s,
                   name or (frame.path.name if frame.path is not None else None), frame.size)

    @property
    def frame(self) -> Frame:
        """The frame as the pipeline's stages exchange it."""
        if self.image is None:
            raise DehrnetError("this result no longer holds its image")
        return Frame(self.index, self.image, self.path, self.time_s)

    # the poses' arrays, under the names a user looks for
    @property
    def boxes_xyxy(self) -> np.ndarray:
        return self.poses.boxes_xyxy

    @property
    def keypoints_xy(self) -> np.ndarray:
        return self.poses.keypoints_xy

    @property
    def kpt_scores(self) -> np.ndarray:
        return self.poses.kpt_scores

    @property
    def scores(self) -> np.ndarray:
        return self.poses.scores

    @property
    def track_ids(self) -> np.ndarray | None:
        return self.poses.track_ids

    def __len__(self) -> int:
        return len(self.poses)

    def __getitem__(self, index: int) -> PoseResult:
        """One person, as a PoseResult of one (negative indices count from the end)."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"person {index} of {len(self)}")
        return replace(self, poses=self.poses.select([index % len(self)]))

    def __iter__(self):
        return (self[n] for n in range(len(self)))

    def __repr__(self) -> str:
        where = self.name or (f"frame {self.index}" if self.path is None else self.path.name)
        people = f"{len(self)} {'person' if len(self) == 1 else 'people'}"
        tracked = ", tracked" if self.track_ids is not None else ""
        return (f"PoseResult({where}, {self.size[0]}x{self.size[1]}, {people}{tracked}, "
                f"{self.keypoints.name} {self.keypoints.num_keypoints} keypoints)")

    def plot(self, kpt_thr: float = 0.3, boxes: bool = False, labels: bool = False, track_ids: bool = True,
             banner: str | None = None) -> np.ndarray:
        """An annotated copy of the image ((H, W, 3) uint8 BGR, same shape): skeletons (keypoints scored below
        `kpt_thr` hidden), `boxes`, `labels` (person number and score per box), `track_ids`, a `banner` line."""
        if self.image is None:
            raise DehrnetError("this result no longer holds its image: nothing to draw on")
        return draw_poses(self.image, self.poses, self.keypoints, kpt_thr, draw_boxes=boxes, draw_ids=track_ids,
                          labels=labels, banner=banner)

    def save(self, path: str | Path, **plot_options: Any) -> Path:
        """Write `plot(**plot_options)` to `path` (its suffix picks the format), atomically; returns the path."""
        from dehrnet_cli.sinks.video_writer import write_image

        return write_image(Path(path), self.plot(**plot_options))

    def to_coco(self, image_id: int | None = None) -> list[dict]:
        """COCO result dicts (image_id, category_id, keypoints [x, y, score] * K, score, track_id when tracked),
        as COCOeval's loadRes takes them; `image_id` default: the numeric file stem, else index + 1."""
        return poses_to_results(self.poses, ImageIds()(self.path, self.index) if image_id is None else image_id)

    def to_rows(self) -> dict[str, list]:
        """The table of `to_df` as columns (TABLE_COLUMNS): one row per person x keypoint."""
        n_people, n_kpts = len(self), self.keypoints.num_keypoints
        tracks = self.track_ids
        return {
            "frame": [self.index] * (n_people * n_kpts),
            "time": [np.nan if self.time_s is None else float(self.time_s)] * (n_people * n_kpts),
            "track_id": [None if tracks is None else int(tracks[n]) for n in range(n_people) for _ in range(n_kpts)],
            "person": [n for n in range(n_people) for _ in range(n_kpts)],
            "keypoint": list(self.keypoints.names) * n_people,
            "x": self.keypoints_xy[..., 0].astype(float).ravel().tolist(),
            "y": self.keypoints_xy[..., 1].astype(float).ravel().tolist(),
            "score": self.kpt_scores.astype(float).ravel().tolist(),
        }

    def to_df(self) -> Any:
        """One row per person x keypoint (columns TABLE_COLUMNS) as a pandas DataFrame, or a polars one when
        only polars is installed."""
        return rows_to_frame(self.to_rows())


def rows_to_frame(columns: dict[str, list]) -> Any:
    """Columns as a pandas DataFrame (else polars); a DehrnetError saying what to install when neither is."""
    try:
        import pandas
    except ImportError:
        pass
    else:
        return pandas.DataFrame(columns, columns=list(TABLE_COLUMNS))
    try:
        import polars
    except ImportError:
        raise DehrnetError("to_df() needs pandas or polars: pip install pandas (or polars)") from None
    return polars.DataFrame(columns)

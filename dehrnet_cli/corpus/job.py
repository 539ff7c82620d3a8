"""What a corpus job is: the corpus, OUT, the engine and its resources, and the per-item predict settings
(the same specs as `dehrnet predict ITEM`), checked once before any work."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from dehrnet_cli.detect.spec import DetectorSpec
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.settings import TopDownSettings
from dehrnet_cli.precision.runtime import RuntimeSpec
from dehrnet_cli.video.settings import VideoSettings
from dehrnet_cli.weights.model_choice import ModelSpec

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class CorpusJob:
    """corpus: a folder, glob, .txt list, image, video or pyarrow.fs URI (corpus.items); out_dir: OUT;
    model, runtime, detector, pose: the specs every worker builds its own PoseEstimator from (runtime.threads
    None: the local engine runs predict's default, a Ray worker one thread per CPU it is given); engine:
    "local" (this process) or "ray"; address: a running Ray cluster ("auto", HOST:PORT), None to start a
    local one; workers: Ray pose workers (None: one per CPU, or per gpus_per_worker GPUs); items_per_task:
    items a Ray task carries (None: about 20 tasks per worker, 1 to 32 items each). The rest are
    `dehrnet predict`'s own."""

    corpus: str
    out_dir: Path
    model: ModelSpec = field(default_factory=ModelSpec)
    runtime: RuntimeSpec = field(default_factory=RuntimeSpec)
    detector: DetectorSpec = field(default_factory=DetectorSpec)
    pose: TopDownSettings = field(default_factory=TopDownSettings)
    engine: str = "local"
    address: str | None = None
    workers: int | None = None
    gpus_per_worker: float = 0.0
    items_per_task: int | None = None
    save_media: bool = False
    overwrite: bool = False
    quiet: bool = False
    orientation: str | None = None
    kpt_thr: float = 0.3
    draw_boxes: bool = False
    banner: str | None = None
    video: VideoSettings | None = None

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise DehrnetError(f"--engine {self.engine!r}: use one of {', '.join(ENGINES)}")
        if self.engine == "local":
            for flag, value in (("--address", self.address), ("--workers", self.workers),
                                ("--gpus-per-worker", self.gpus_per_worker or None)):
                if value is not None:
                    raise DehrnetError(f"{flag}: only with --engine ray (the local engine is this one process)")
        if self.workers is not None and self.workers < 1:
            raise DehrnetError(f"--workers {self.workers}: must be at least 1")
        if self.gpus_per_worker < 0:
            raise DehrnetError(f"--gpus-per-worker {self.gpus_per_worker}: must be 0 (CPU) or more")
        if self.items_per_task is not None and self.items_per_task < 1:
            raise DehrnetError(f"items_per_task {self.items_per_task}: must be at least 1")

    def files(self) -> list[tuple[str, Path]]:
        """(flag, path) of the local files every worker reads besides the items."""
        given = (("--weights", self.model.weights), ("--boxes", self.detector.boxes), ("--ann", self.detector.ann),
                 ("--calib", self.runtime.calib))
        return [(flag, Path(path)) for flag, path in given if path is not None]

    def portable(self) -> CorpusJob:
        """This job with its local files as absolute paths: workers may start in another folder (OUT is already
        absolute: run_corpus resolved it)."""
        def absolute(path: Path | None) -> Path | None:
            return Path(path).resolve() if path is not None and Path(path).exists() else path

        det_model = self.detector.model
        if Path(det_model).exists():
            det_model = str(Path(det_model).resolve())
        return replace(self, model=replace(self.model, weights=absolute(self.model.weights)),
                       detector=replace(self.detector, boxes=absolute(self.detector.boxes),
                                        ann=absolute(self.detector.ann), model=det_model),
                       runtime=replace(self.runtime, calib=absolute(self.runtime.calib)))

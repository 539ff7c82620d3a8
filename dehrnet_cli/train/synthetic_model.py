"""A model that has actually learned something, for tests and the accuracy guard: a few hundred CPU steps
on synthetic people (`datasets.synthetic`).
"""

from __future__ import annotations

from pathlib import Path

from dehrnet_cli.datasets.augment import AugmentSettings
from dehrnet_cli.datasets.synthetic import SyntheticPeople


def train_synthetic_model(out_path: Path, steps: int = 300, seed: int = 0, model: str = "dehrnet_w8_128x96",
                          num_images: int = 3000, batch: int = 16) -> Path:
    """Train `model` on synthetic people for `steps` steps on the CPU and save it as a dehrnet checkpoint at
    `out_path`, meta holding steps, seed and PCK@0.1 (flip test) on 100 held-out scenes. For tests that need
    a model that has actually learned something."""
    import tempfile

    from dehrnet_cli.eval.pck import evaluate_pck
    from dehrnet_cli.pose.backends import TorchBackend
    from dehrnet_cli.pose.topdown import TopDownEstimator
    from dehrnet_cli.train.config import TrainConfig
    from dehrnet_cli.train.loop import train
    from models import load_model, save_checkpoint

    with tempfile.TemporaryDirectory() as run_dir:
        config = TrainConfig(model=model, data="synthetic", synthetic_images=num_images, batch=batch, seed=seed,
                             epochs=10**6, max_steps=steps, val_every=10**6, device="cpu", workers=0,
                             out=Path(run_dir), quiet=True, augment=SYNTHETIC_AUGMENT)
        trained = load_model(train(config).last_path)
    held_out = SyntheticPeople(100, trained.config, None, seed=seed + 1_000_003)
    pck = evaluate_pck(TopDownEstimator(TorchBackend(trained, "cpu")), held_out, 0.1)
    return save_checkpoint(trained, out_path, meta={"trained_on": "synthetic people", "steps": steps, "seed": seed,
                                                    "val_pck@0.1": pck})


# lighter than the paper's recipe: a few hundred CPU steps must be enough to learn
SYNTHETIC_AUGMENT = AugmentSettings(scale_factor=0.25, rotation_factor=30.0, rotation_prob=0.5, half_body_prob=0.1)

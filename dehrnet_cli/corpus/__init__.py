"""Corpus mode: `dehrnet predict CORPUS --out-dir OUT` over millions of images and videos, resumable, in
this process or on a Ray cluster (`--engine ray`). One COCO JSON per item, a manifest per job."""

from dehrnet_cli.corpus.job import CorpusJob
from dehrnet_cli.corpus.run import CorpusSummary, run_corpus

__all__ = ["CorpusJob", "CorpusSummary", "run_corpus"]

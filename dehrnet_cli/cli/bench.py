"""`dehrnet bench`: the CLI face of `dehrnet_cli.bench` (stage-by-stage and whole-pipeline speed)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from dehrnet_cli.cli.command import command, console, err_console
from dehrnet_cli.errors import DehrnetError

FLIP_CHOICES = {"both": (False, True), "on": (True,), "off": (False,)}


def parse_video_size(text: str) -> tuple[int, int]:
    """'1280x720' (w x h, as video sizes are written) -> (1280, 720)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise DehrnetError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 1280x720") from None
    return w, h


def _given(values: list | None) -> tuple | None:
    """A repeatable option's values as a tuple, or None when it was not given (the preset decides)."""
    return tuple(values) if values else None


def split_precisions(values: list[str] | None) -> tuple[str, ...] | None:
    """Repeated and comma-separated --precision values ('fp32,bf16' and 'int8') as one tuple, lower case,
    duplicates dropped; None when none were given (the preset decides)."""
    names = [name.strip().lower() for value in values or () for name in value.split(",") if name.strip()]
    return tuple(dict.fromkeys(names)) or None


@command("bench")
def bench_command(
    quick: bool = typer.Option(False, "--quick", help="A subset that takes under 3 minutes on a 2-core CPU: "
                               "batch 4, 8 frames, 3 repetitions, only what the target ratios need."),
    gpu: bool = typer.Option(False, "--gpu", help="Only the GPU section (CUDA): the network alone at batch 1, 8, "
                             "32, 64 in fp32 and fp16 (+ compiled with --compile), crops and decoding on the GPU, "
                             "the 1080p pipeline with 1 and 5 people, flip on (docs/gpu.md)."),
    models: list[str] = typer.Option(None, "--model", "-m", help="Architecture to time (repeatable); default "
                                     "dehrnet_w32_384x288 and hrnet_w32_384x288."),
    backends: list[str] = typer.Option(None, "--backend", help="torch and/or onnx (repeatable)."),
    precisions: list[str] = typer.Option(None, "--precision", help="fp32, fp16 (CUDA), bf16 (torch) and/or int8 "
                                         "(ONNX Runtime, CPU); repeatable or comma-separated. Default fp32 "
                                         "(+ fp16 on CUDA); bf16/int8 also time the fp32 paths they are "
                                         "compared with."),
    batches: list[int] = typer.Option(None, "--batch", help="Crops per forward pass (repeatable); default "
                                      "1, 8, 32, 64."),
    flip: str = typer.Option(None, "--flip", help="Flip test: both (default), on or off."),
    people: list[int] = typer.Option(None, "--people", help="People per frame (repeatable); default 1 and 5."),
    sizes: list[str] = typer.Option(None, "--size", help="Video size WxH (repeatable); default 1280x720 and "
                                    "1920x1080."),
    sweep: bool = typer.Option(None, "--sweep/--no-sweep", help="Every model x backend x precision x batch x "
                               "flip (default), or only what the target ratios need (--quick)."),
    pipeline_batch: int = typer.Option(None, "--pipeline-batch", help="Crops per forward in the pipeline runs."),
    frames: int = typer.Option(None, "--frames", help="Frames per stage repetition and pipeline run (the memory "
                               "check also runs twice as many)."),
    repeats: int = typer.Option(None, "--repeats", help="Timed repetitions per measurement."),
    warmup: int = typer.Option(None, "--warmup", help="Untimed repetitions first."),
    device: str = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N."),
    detector: bool = typer.Option(None, "--detector/--no-detector", help="Time the YOLO26n detector (the default) "
                                  "alone."),
    peer: bool = typer.Option(None, "--peer/--no-peer", help="Time YOLO11n-pose on the same video."),
    pipeline: bool = typer.Option(None, "--pipeline/--no-pipeline", help="Time the whole predict pipeline "
                                  "(--no-pipeline also skips the per-precision runs)."),
    default_path: bool = typer.Option(None, "--default-path/--no-default-path", help="The pipeline at 1280x720, 1 "
                                      "person, flip on, on torch, onnx and the default path (default on)."),
    precision_pipeline: bool = typer.Option(None, "--precision-pipeline/--no-precision-pipeline",
                                            help="With bf16/int8 asked: the pipeline at 1280x720, 3 people, "
                                            "flip on, once per precision (default on)."),
    compile_net: bool = typer.Option(None, "--compile", help="torch.compile the pose net (torch backend)."),
    ort_threads: int = typer.Option(None, "--ort-threads", help="onnxruntime intra-op threads."),
    threads: int = typer.Option(None, "--threads", help="torch intra-op threads (default: physical cores)."),
    json_path: Path = typer.Option(None, "--json", help="Write every number (and machine, versions, command, "
                                   "date) to this JSON file."),
    markdown: Path = typer.Option(None, "--markdown", help="Write or update this machine's section of a "
                                  "Markdown file, e.g. docs/benchmarks.md."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines (the tables still print)."),
) -> None:
    """Measure each pipeline stage alone and the whole pipeline on this machine (frames/s, crops/s).

    Synthetic video, fixed person boxes, random weights: speed only, no downloads.

    Prints every stage, pose FLOP/s next to the nominal peak, the target ratios and YOLO11n-pose alongside.

    Examples:
      dehrnet bench --quick
      dehrnet bench --device cuda --precision fp16 --batch 64 --json bench.json
      dehrnet bench --quick --precision bf16,int8 --model dehrnet_w32_384x288
      dehrnet bench --quick --json bench.json --markdown docs/benchmarks.md
      dehrnet bench --gpu --compile --json gpu.json --markdown gpu.md
    """
    from dehrnet_cli.bench.report import print_report, write_json, write_markdown
    from dehrnet_cli.bench.run import run_bench
    from dehrnet_cli.bench.settings import make_settings

    if flip is not None and flip not in FLIP_CHOICES:
        raise DehrnetError(f"--flip {flip!r}: use both, on or off")
    settings = make_settings(
        quick, gpu, models=_given(models), backends=_given(backends), precisions=split_precisions(precisions),
        batches=_given(batches), flips=FLIP_CHOICES.get(flip), people=_given(people),
        sizes=_given([parse_video_size(s) for s in sizes or ()]), sweep=sweep, pipeline_batch=pipeline_batch,
        frames=frames, repeats=repeats, warmup=warmup, device=device, detector=detector, peer=peer,
        pipeline=pipeline, default_path=default_path, precision_pipeline=precision_pipeline, compile=compile_net,
        ort_threads=ort_threads, torch_threads=threads)

    start = time.perf_counter()

    def log(line: str) -> None:
        if not quiet:
            err_console.print(f"[dim]bench {time.perf_counter() - start:5.0f} s[/] {line}", highlight=False)

    report = run_bench(settings, log=log)
    print_report(report, console)
    if json_path is not None:
        console.print(f"wrote {write_json(report, json_path)}")
    if markdown is not None:
        console.print(f"wrote {write_markdown(report, markdown)}")

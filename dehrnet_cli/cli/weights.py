"""`dehrnet weights list | download | verify`: the CLI face of `dehrnet_cli.weights`."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

import typer
from rich import box
from rich.table import Table

from dehrnet_cli.cli.command import FlagsWithoutTypes, add_commands, command, console, err_console
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.weights.cache import check_entry, entry_path, fetch, verify_cached, weights_dir
from dehrnet_cli.weights.download import download
from dehrnet_cli.weights.manifest import WeightsEntry, get_entry, load_detectors, load_manifest

weights_app = typer.Typer(
    help="Known checkpoints: list them, download them (checksummed, resumable), verify the cache.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    cls=FlagsWithoutTypes,
)

_URL_RE = re.compile(r"^https?://", re.IGNORECASE)

_HASH_RE = re.compile(r"^[0-9a-f]{8,64}$")


def _say(text: str) -> None:
    """One plain line on stdout (no markup, no wrapping: scripts read the path)."""
    console.print(text, soft_wrap=True, markup=False, highlight=False)


def _table(title: str, headers: tuple[str, ...], folding: str) -> Table:
    """A compact table; only the `folding` column wraps when the terminal is narrow (no text is cut)."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True)
    for header in headers:
        table.add_column(header, no_wrap=header != folding, overflow="fold")
    return table


def _size_label(size_bytes: int | None) -> str:
    return "?" if size_bytes is None else f"{size_bytes / 1e6:.1f} MB"


def _fitting_table(title: str, headers: tuple[str, ...], rows: list[tuple[str, ...]], optional: tuple[str, ...],
                   width: int) -> Table:
    """A compact table whose cells never wrap (names stay whole): the `optional` columns are left out, in
    order, while the table is wider than `width`."""
    shown = list(headers)
    widths = {h: max(len(h), *(len(row[headers.index(h)]) for row in rows)) for h in headers}
    for name in optional:
        if sum(widths[h] for h in shown) + 2 * (len(shown) - 1) <= width:
            break
        shown.remove(name)
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for header in shown:
        table.add_column(header, no_wrap=True, overflow="ignore")
    for row in rows:
        table.add_row(*(row[headers.index(h)] for h in shown))
    return table


def _cache_state(entry: WeightsEntry) -> tuple[str, str]:
    """(cached: yes, corrupt (the hash fails) or -, size: the cached file's, else the manifest's, else ?)."""
    path = entry_path(entry)
    if not path.is_file():
        return "-", _size_label(entry.size_bytes)
    return ("yes" if check_entry(entry, path).status == "ok" else "corrupt"), _size_label(path.stat().st_size)


@command("list")
def list_weights() -> None:
    """List the known checkpoints, whether each is cached (and intact), and their sizes; also the YOLO person
    detectors.

    Example: [bold]dehrnet weights list[/bold]
    """
    headers = ("name", "config", "input", "size", "cached", "licence")
    rows = []
    for entry in load_manifest().values():
        cached, size = _cache_state(entry)
        rows.append((entry.name, entry.config, entry.input_label, size, cached, entry.license))
    console.print(_fitting_table(f"Checkpoints (cache: {weights_dir()})", headers, rows, ("config", "licence"),
                                 console.width), crop=False)
    detectors = _table("Person detectors (downloaded by ultralytics itself, not by dehrnet)",
                       ("file", "licence", "url"), folding="url")
    for det in load_detectors().values():
        detectors.add_row(det.filename, det.license, det.url)
    console.print(detectors)


def _destination(out: Path | None, cache: Path, filename: str) -> Path:
    """--out FILE, --out EXISTING_FOLDER (the file keeps its name), or the cache."""
    if out is None:
        return cache / filename
    out = out.expanduser()
    return out / filename if out.is_dir() else out


def _parse_hash(value: str) -> tuple[str | None, str | None]:
    """--sha256 HEX -> (full sha256, prefix): 64 digits are a full hash, 8-63 a prefix."""
    value = value.strip().lower()
    if not _HASH_RE.match(value):
        raise DehrnetError(f"--sha256 {value!r}: expected 8 to 64 hex digits (a full sha256, or the "
                           "8-digit prefix in an openmmlab file name)")
    return (value, None) if len(value) == 64 else (None, value)


@command("download")
def download_weights(
    target: str = typer.Argument(..., help="A name from `dehrnet weights list`, or an https:// URL."),
    sha256: str | None = typer.Option(None, "--sha256", help="Expected sha256 of a URL download (64 hex "
                                      "digits, or a prefix of at least 8)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write to this file (or into this existing "
                                    "folder) instead of the weights cache."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Download a checkpoint (resumable, sha256-checked) into the weights cache or --out.

    Example: [bold]dehrnet weights download hrnet_w32.coco_384x288[/bold]

    Example: [bold]dehrnet weights download https://host/model.pth --sha256 HEX --out model.pth[/bold]
    """
    if _URL_RE.match(target):
        if sha256 is None:
            raise DehrnetError(f"{target}: a URL download needs --sha256 HEX (the expected checksum); "
                               "dehrnet never installs unverified weights")
        full, prefix = _parse_hash(sha256)
        name = Path(urllib.parse.unquote(urllib.parse.urlparse(target).path)).name or "weights.pth"
        dest = _destination(out, weights_dir(), name)
        _say(f"saved {download(target, dest, full, prefix, progress=not quiet)}")
        return
    if sha256 is not None:
        raise DehrnetError(f"--sha256 is only for URL downloads; the hash of '{target}' is in the manifest")
    entry = get_entry(target)
    dest = _destination(out, weights_dir(), entry.filename)
    if dest.is_file():
        status = check_entry(entry, dest)
        if status.status == "ok":
            _say(f"already there ({status.checked} ok): {dest}")
            return
        err_console.print(f"[yellow]{dest} does not match {target} ({status.checked}); downloading again[/]")
    _say(f"saved {fetch(entry, dest, progress=not quiet)}")


@command("verify")
def verify_weights() -> None:
    """Check the sha256 of every cached checkpoint; exit code 2 if one does not match.

    The full sha256 is checked when the manifest has it or when it was recorded at the file's verified
    download; else the published prefix (a file copied into the cache by hand).

    Example: [bold]dehrnet weights verify[/bold]
    """
    results = verify_cached()
    table = _table(f"Cached checkpoints in {weights_dir()}", ("name", "status", "checked"),
                   folding="checked")
    colours = {"ok": "green", "mismatch": "red", "missing": "dim"}
    for r in results:
        table.add_row(r.name, f"[{colours[r.status]}]{r.status}[/]", r.checked or "-")
    console.print(table)
    bad = [r for r in results if r.status == "mismatch"]
    if bad:
        files = ", ".join(f"{r.name} ({r.path})" for r in bad)
        raise DehrnetError(f"{len(bad)} cached file(s) fail verification: {files}; run `dehrnet weights "
                           "download NAME` to fetch them again")


@command("convert")
def convert_weights(
    src: Path = typer.Argument(..., help="An official HRNet .pth, an mmpose checkpoint or a dehrnet checkpoint."),
    dst: Path = typer.Argument(..., help="The dehrnet checkpoint to write (.pt)."),
    to: str = typer.Option(None, "--to", help="Build this config, e.g. dehrnet_w32_384x288 (a warm start from HRNet)."),
    input_size: str = typer.Option(None, "--input-size", help="HxW of the source file when not 384x288 (17 joints)."),
) -> None:
    """Convert a checkpoint into dehrnet's format (weights + config), or warm-start DE-HRNet from HRNet.

    Examples:
      dehrnet weights convert pose_hrnet_w32_256x192.pth hrnet_w32.pt --input-size 256x192
      dehrnet weights convert hrnet_w32_coco_384x288-d9f0d786_20200708.pth de.pt --to dehrnet_w32_384x288
    """
    from dehrnet_cli.cli.options import parse_size
    from dehrnet_cli.weights.convert import convert

    _say(f"wrote {convert(src, dst, to, parse_size(input_size))}")


add_commands(weights_app, list_weights, download_weights, verify_weights, convert_weights)

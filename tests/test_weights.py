"""The weights registry: manifest, cache folder, checksummed resumable downloads and `dehrnet weights`.

Every download goes to an HTTP server on 127.0.0.1 that the test starts; nothing touches the network.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import typer
from local_http import CUT_AT, DATA, DATA_SHA256
from typer.testing import CliRunner

from dehrnet_cli.cli.weights import weights_app
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.weights import cache, download
from dehrnet_cli.weights import manifest as manifest_module


@pytest.fixture(autouse=True)
def online_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Downloads allowed (only to 127.0.0.1), cache in a temp DEHRNET_HOME, wide tables."""
    real_urlopen = urllib.request.urlopen

    def local_only(request: urllib.request.Request, *args: object, **kwargs: object) -> object:
        if urllib.parse.urlparse(request.full_url).hostname != "127.0.0.1":
            raise AssertionError(f"a test tried the real network: {request.full_url}")
        return real_urlopen(request, *args, **kwargs)

    monkeypatch.setattr(download.urllib.request, "urlopen", local_only)
    monkeypatch.delenv("DEHRNET_OFFLINE", raising=False)
    monkeypatch.setenv("DEHRNET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path / "home"


def write_manifest(path: Path, url: str, **overrides: object) -> Path:
    """A one-entry manifest ("test_net.local") pointing at `url`, with `overrides` applied."""
    entry = {"config": "hrnet_w32_384x288", "input_size": [288, 384], "urls": [url], "sha256": DATA_SHA256,
             "sha256_prefix": None, "size_bytes": len(DATA), "license": "MIT", "source": "test",
             "format": "dehrnet", "filename": "test_net.pth"}
    entry.update(overrides)
    path.write_text(json.dumps({"manifest_version": 1, "checkpoints": {"test_net.local": entry}}))
    return path


def cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(weights_app, name="weights")

    @app.callback()
    def root() -> None:
        """Test root."""

    return app


# -- download -----------------------------------------------------------------------------------------

def test_download_with_full_hash_and_with_prefix(server, tmp_path):
    url, state = server
    dest = download.download(url, tmp_path / "a" / "w.pth", sha256=DATA_SHA256, progress=False)
    assert dest == tmp_path / "a" / "w.pth" and dest.read_bytes() == DATA
    assert not (tmp_path / "a" / "w.pth.part").exists()
    prefixed = download.download(url, tmp_path / "p.pth", sha256_prefix=DATA_SHA256[:8], progress=False)
    assert prefixed.read_bytes() == DATA
    assert state.ranges == [None, None]


def test_progress_bar_on_a_terminal(server, tmp_path, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    url, _ = server
    monkeypatch.setattr(sys, "stderr", Terminal())
    download.download(url, tmp_path / "shown.pth", sha256=DATA_SHA256, progress=True)
    shown = sys.stderr.getvalue()
    monkeypatch.setattr(sys, "stderr", Terminal())
    download.download(url, tmp_path / "quiet.pth", sha256=DATA_SHA256, progress=False)
    assert "shown.pth" in shown and "300.0" in shown and sys.stderr.getvalue() == ""


def test_sha256_file_reads_across_chunks(tmp_path):
    big = random.Random(1).randbytes(int(2.5 * (1 << 20)))
    (tmp_path / "big").write_bytes(big)
    assert download.sha256_file(tmp_path / "big") == hashlib.sha256(big).hexdigest()


@pytest.mark.parametrize("kind", ["sha256", "sha256_prefix"])
def test_checksum_mismatch_removes_the_file(server, tmp_path, kind):
    url, _ = server
    wrong = "0" * 64 if kind == "sha256" else "00000000"
    with pytest.raises(DehrnetError, match=f"expected {kind.replace('_', ' ')} {wrong}, got {DATA_SHA256}"):
        download.download(url, tmp_path / "w.pth", progress=False, **{kind: wrong})
    assert list(tmp_path.iterdir()) == [download.lock_path(tmp_path / "w.pth")]  # no file, no .part


def test_interrupted_download_resumes_with_range(server, tmp_path):
    url, state = server
    state.cut_first_response = True
    dest = tmp_path / "w.pth"
    with pytest.raises(DehrnetError, match="interrupted after .* run the same command again to resume"):
        download.download(url, dest, sha256=DATA_SHA256, progress=False)
    part = tmp_path / "w.pth.part"
    assert part.stat().st_size == CUT_AT and not dest.exists()
    download.download(url, dest, sha256=DATA_SHA256, progress=False)
    assert state.ranges == [None, f"bytes={CUT_AT}-"]
    assert dest.read_bytes() == DATA and not part.exists()


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    url, state = server
    state.honour_range, state.cut_first_response = False, True
    dest = tmp_path / "w.pth"
    with pytest.raises(DehrnetError, match="interrupted"):
        download.download(url, dest, sha256=DATA_SHA256, progress=False)
    download.download(url, dest, sha256=DATA_SHA256, progress=False)
    assert state.ranges == [None, f"bytes={CUT_AT}-"]  # asked to resume, got 200 and the whole file
    assert dest.read_bytes() == DATA


def test_unresumable_part_is_dropped_and_fetched_again(server, tmp_path):
    url, state = server
    (tmp_path / "w.pth.part").write_bytes(b"x" * (len(DATA) + 10))  # longer than the file: HTTP 416
    download.download(url, tmp_path / "w.pth", sha256=DATA_SHA256, progress=False)
    assert state.ranges == [f"bytes={len(DATA) + 10}-", None]
    assert (tmp_path / "w.pth").read_bytes() == DATA


def test_offline_env_fails_fast_naming_url_and_path(server, tmp_path, monkeypatch):
    url, state = server
    monkeypatch.setenv("DEHRNET_OFFLINE", "1")
    dest = tmp_path / "w.pth"
    with pytest.raises(DehrnetError) as err:
        download.download(url, dest, sha256=DATA_SHA256, progress=False)
    assert f"download {url} elsewhere and place it at {dest}" in str(err.value)
    assert "--weights FILE" in str(err.value) and state.ranges == []


def test_unreachable_host_names_url_and_path(tmp_path):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/w.pth"
    expected = rf"cannot reach {re.escape(url)} .*place it at {re.escape(str(tmp_path / 'w.pth'))}"
    with pytest.raises(DehrnetError, match=expected):
        download.download(url, tmp_path / "w.pth", sha256=DATA_SHA256, progress=False, timeout=5)


def test_not_enough_disk_space_says_how_much_and_where(server, tmp_path, monkeypatch):
    url, _ = server
    monkeypatch.setattr(download.shutil, "disk_usage", lambda p: type("U", (), {"free": 1000})())
    expected = rf"not enough disk space in {re.escape(str(tmp_path))} .*needs 300\.0 KB"
    with pytest.raises(DehrnetError, match=expected):
        download.download(url, tmp_path / "w.pth", sha256=DATA_SHA256, progress=False)


def test_disk_full_while_writing_keeps_the_part_and_says_how_much(server, tmp_path, monkeypatch):
    class FullDisk(io.BytesIO):
        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    url, _ = server
    monkeypatch.setattr(download, "open", lambda *args, **kwargs: FullDisk(), raising=False)
    expected = rf"disk full in {re.escape(str(tmp_path))} while downloading .*needs 300\.0 KB in all"
    with pytest.raises(DehrnetError, match=expected):
        download.download(url, tmp_path / "w.pth", sha256=DATA_SHA256, progress=False)


@pytest.mark.parametrize("other", ["thread", "process"])
def test_two_downloads_of_one_file_at_once_fetch_it_once_and_both_succeed(server, tmp_path, other):
    """The second download waits on the first's lock and then uses the file it verified (no shared .part)."""
    url, state = server
    state.seconds_per_chunk = 0.05  # 30 chunks: 1.5 s, so the two overlap
    dest = tmp_path / "w.pth"
    results: list[object] = []
    if other == "thread":
        first = threading.Thread(target=lambda: results.append(
            download.download(url, dest, sha256=DATA_SHA256, progress=False)))
        first.start()
    else:
        code = (f"from dehrnet_cli.weights.download import download\n"
                f"download({url!r}, {str(dest)!r}, sha256={DATA_SHA256!r}, progress=False)")
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        first = subprocess.Popen([sys.executable, "-c", code], env=env)
    deadline = time.monotonic() + 60
    while not (tmp_path / "w.pth.part").exists():  # the first one is downloading
        assert time.monotonic() < deadline, "the first download never started"
        time.sleep(0.01)
    second = download.download(url, dest, sha256=DATA_SHA256, progress=False)
    if other == "thread":
        first.join()
        assert results == [dest]
    else:
        assert first.wait(timeout=60) == 0
    assert second == dest and dest.read_bytes() == DATA and not (tmp_path / "w.pth.part").exists()
    assert state.ranges == [None]  # one transfer: the second used the verified file


# -- cache folder and registry -------------------------------------------------------------------------

def test_weights_dir_follows_env_at_call_time(tmp_path, monkeypatch):
    monkeypatch.setenv("DEHRNET_HOME", str(tmp_path / "h"))
    assert cache.weights_dir() == tmp_path / "h" / "weights"
    monkeypatch.delenv("DEHRNET_HOME")
    monkeypatch.setattr(manifest_module, "MANIFEST_PATH", tmp_path / "installed" / "manifest.json")  # no checkout
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.weights_dir() == tmp_path / "xdg" / "dehrnet" / "weights"
    checkout = tmp_path / "repo" / "weights"
    checkout.mkdir(parents=True)
    (checkout / "manifest.json").write_text("{}")
    monkeypatch.setattr(manifest_module, "MANIFEST_PATH", checkout / "manifest.json")
    assert cache.weights_dir() == checkout


def test_resolve_downloads_into_dehrnet_home_once(server, tmp_path, online_home):
    url, state = server
    manifest = write_manifest(tmp_path / "manifest.json", url)
    path = cache.resolve("test_net.local", manifest=manifest, progress=False)
    assert path == online_home / "weights" / "test_net.pth" and path.read_bytes() == DATA
    assert cache.resolve("test_net.local", manifest=manifest) == path
    assert len(state.ranges) == 1  # the second call used the cache


def test_resolve_tries_the_next_mirror(server, tmp_path):
    url, state = server
    manifest = write_manifest(tmp_path / "manifest.json", url, urls=[url.replace("file.bin", "gone"), url])
    assert cache.resolve("test_net.local", manifest=manifest, progress=False).read_bytes() == DATA
    assert len(state.ranges) == 2  # the 404 of the first mirror, then the second


def test_resolve_unknown_name_suggests_close_names():
    with pytest.raises(DehrnetError, match=r"unknown weights 'hrnet_w32\.coco_384x28'; did you mean "
                                           r"hrnet_w32\.coco_384x288.*`dehrnet weights list`"):
        cache.resolve("hrnet_w32.coco_384x28")


def test_verify_cached_reports_ok_mismatch_missing(tmp_path, online_home):
    manifest = tmp_path / "manifest.json"
    base = {"config": "hrnet_w32_384x288", "input_size": [288, 384], "license": "MIT", "source": "test",
            "format": "dehrnet"}
    manifest.write_text(json.dumps({"checkpoints": {
        "a.full": {**base, "urls": ["https://h/a.pth"], "sha256": DATA_SHA256},
        "b.prefix": {**base, "urls": ["https://h/b.pth"], "sha256_prefix": DATA_SHA256[:8]},
        "c.missing": {**base, "urls": ["https://h/c.pth"], "sha256_prefix": DATA_SHA256[:8]},
    }}))
    (online_home / "weights").mkdir(parents=True)
    (online_home / "weights" / "a.pth").write_bytes(DATA)
    (online_home / "weights" / "b.pth").write_bytes(DATA[:-1])
    results = {r.name: r for r in cache.verify_cached(manifest)}
    assert (results["a.full"].status, results["a.full"].checked) == ("ok", "sha256")
    assert (results["b.prefix"].status, results["b.prefix"].checked) == ("mismatch", "sha256 prefix")
    assert results["c.missing"].status == "missing"
    assert results["c.missing"].path == online_home / "weights" / "c.pth"


def test_a_verified_download_records_the_full_sha256_and_verify_checks_all_64_digits(server, tmp_path,
                                                                                     online_home):
    """An entry known only by its 8-digit prefix (openmmlab file names) is checked by that prefix at download;
    the full sha256 of the verified file is then recorded beside it, and later checks compare all 64 digits.
    (A different file with the same 8-digit prefix cannot be made here; a 2-digit prefix shows the point.)"""
    url, _ = server
    manifest = write_manifest(tmp_path / "manifest.json", url, sha256=None, sha256_prefix=DATA_SHA256[:8])
    path = cache.resolve("test_net.local", manifest=manifest, progress=False)
    [result] = cache.verify_cached(manifest)
    assert (result.status, result.checked) == ("ok", "sha256 (recorded at download)")
    entry = manifest_module.get_entry("test_net.local", manifest)
    short = dataclasses.replace(entry, sha256_prefix=DATA_SHA256[:2])
    same_prefix = next(data for n in range(100_000) if hashlib.sha256(data := DATA + n.to_bytes(4, "little")
                                                                        ).hexdigest()[:2] == DATA_SHA256[:2])
    path.write_bytes(same_prefix)
    assert cache.check_entry(short) == cache.CachedWeights("test_net.local", path, "mismatch",
                                                           "sha256 (recorded at download)")
    assert cache.check_entry(entry).status == "mismatch"
    recorded = [p for p in path.parent.iterdir() if p not in (path, download.lock_path(path))]
    assert len(recorded) == 1 and DATA_SHA256 in recorded[0].read_text()
    recorded[0].unlink()  # a file placed by hand has no record: only its prefix can be checked
    assert cache.check_entry(short) == cache.CachedWeights("test_net.local", path, "ok", "sha256 prefix")


# -- the manifest ----------------------------------------------------------------------------------------

def test_real_manifest_entries_are_valid_and_match_the_model_configs():
    from models.hrnet import VARIANTS

    as_pairs = json.loads(manifest_module.MANIFEST_PATH.read_text(), object_pairs_hook=lambda pairs: pairs)
    names = [name for name, _ in dict(as_pairs)["checkpoints"]]  # every name, repeats kept
    assert len(names) == len(set(names))
    entries = manifest_module.load_manifest()
    assert sorted(entries) == sorted(names) and len(entries) >= 5
    try:
        from models import list_models
        known = set(list_models())
    except ImportError:
        known = set(VARIANTS)
    for name, entry in entries.items():
        assert entry.config in known, name
        assert entry.input_size == tuple(VARIANTS[entry.config].input_size), name
        assert all(u.startswith("https://") for u in entry.urls), name
        stamp = re.search(r"-([0-9a-f]{8})_\d{8}\.pth$", entry.filename)  # openmmlab: sha256[:8]_date
        if stamp:
            assert entry.sha256_prefix == stamp.group(1), name
    for config in ("hrnet_w32_256x192", "hrnet_w32_384x288", "hrnet_w48_256x192", "hrnet_w48_384x288",
                   "hrnet_w32_mpii_256x256"):
        assert any(e.config == config for e in entries.values()), config
    detectors = manifest_module.load_detectors()
    assert "yolo11n.pt" in detectors and detectors["yolo11n.pt"].url.endswith("/yolo11n.pt")


@pytest.mark.parametrize("broken, message", [
    ({"format": "onnx"}, "format must be one of"),
    ({"sha256": "abc"}, "sha256: expected 64-64"),
    ({"sha256": None, "sha256_prefix": None}, "give sha256 or sha256_prefix"),
    ({"sha256_prefix": "deadbeef"}, "does not start sha256"),
    ({"input_size": [288]}, "input_size must be"),
    ({"urls": ["ftp://x/y.pth"]}, "urls must be"),
    ({"config": None}, "config must be a non-empty string"),
])
def test_broken_manifest_entry_is_one_clear_error(tmp_path, broken, message):
    manifest = write_manifest(tmp_path / "m.json", "https://h/w.pth", **broken)
    with pytest.raises(DehrnetError, match=rf"{re.escape(str(manifest))}: entry 'test_net.local'.*{message}"):
        manifest_module.load_manifest(manifest)


def test_broken_manifest_file_is_one_clear_error(tmp_path):
    manifest = tmp_path / "m.json"
    manifest.write_text('{"checkpoints": {"a.b": {}, "a.b": {}}}')
    with pytest.raises(DehrnetError, match="repeated name.*a.b"):
        manifest_module.load_manifest(manifest)
    manifest.write_text("{not json")
    with pytest.raises(DehrnetError, match="unreadable"):
        manifest_module.load_manifest(manifest)
    with pytest.raises(DehrnetError, match="missing"):
        manifest_module.load_manifest(tmp_path / "absent.json")


# -- CLI -------------------------------------------------------------------------------------------------

def test_cli_download_url_checksum_failure_exits_2(server, tmp_path):
    url, _ = server
    dest = tmp_path / "w.pth"
    result = CliRunner().invoke(cli(), ["weights", "download", url, "--sha256", "0" * 64, "--out", str(dest)])
    assert result.exit_code == 2
    assert "checksum mismatch" in result.stderr and DATA_SHA256 in result.stderr
    assert not dest.exists() and not (tmp_path / "w.pth.part").exists()


def test_cli_download_url_ok_and_needs_a_hash(server, tmp_path):
    url, _ = server
    dest = tmp_path / "w.pth"
    args = ["weights", "download", url, "--sha256", DATA_SHA256[:8], "-o", str(dest)]
    result = CliRunner().invoke(cli(), args)
    assert result.exit_code == 0, result.output
    assert f"saved {dest}" in result.stdout and dest.read_bytes() == DATA
    folder = tmp_path / "into"
    folder.mkdir()
    args = ["weights", "download", url, "--sha256", DATA_SHA256, "--out", str(folder), "--quiet"]
    assert CliRunner().invoke(cli(), args).exit_code == 0
    assert (folder / "file.bin").read_bytes() == DATA  # an existing folder keeps the URL's file name
    result = CliRunner().invoke(cli(), ["weights", "download", url])
    assert result.exit_code == 2 and "needs --sha256" in result.stderr


def test_cli_download_name_fetches_then_reuses_then_repairs(server, tmp_path, online_home, monkeypatch):
    url, state = server
    monkeypatch.setattr(manifest_module, "MANIFEST_PATH", write_manifest(tmp_path / "manifest.json", url))
    cached = online_home / "weights" / "test_net.pth"
    result = CliRunner().invoke(cli(), ["weights", "download", "test_net.local"])
    assert result.exit_code == 0 and f"saved {cached}" in result.stdout and cached.read_bytes() == DATA
    result = CliRunner().invoke(cli(), ["weights", "download", "test_net.local"])
    assert f"already there (sha256 ok): {cached}" in result.stdout and len(state.ranges) == 1
    cached.write_bytes(b"damaged")
    result = CliRunner().invoke(cli(), ["weights", "download", "test_net.local"])
    assert result.exit_code == 0 and "does not match" in result.stderr and cached.read_bytes() == DATA


def test_cli_download_unknown_name_exits_2_with_suggestion():
    result = CliRunner().invoke(cli(), ["weights", "download", "hrnet_w48.coco_384"])
    assert result.exit_code == 2 and "did you mean hrnet_w48.coco_384x288" in result.stderr


def test_cli_list_shows_entries_cache_state_and_detectors(online_home):
    entries = manifest_module.load_manifest()
    cached = entries["hrnet_w32.coco_384x288"]
    (online_home / "weights").mkdir(parents=True)
    (online_home / "weights" / cached.filename).write_bytes(b"placed by hand")
    result = CliRunner().invoke(cli(), ["weights", "list"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.strip()}
    for name, entry in entries.items():
        assert rows[name][1:3] == [entry.config, entry.input_label]
        if name != cached.name:
            assert rows[name][3:5] == ["?", "-"]
    # the cached file's real size (14 bytes), not the manifest's "?"; "corrupt": its hash fails (issue 14)
    assert rows[cached.name][3:6] == ["0.0", "MB", "corrupt"]
    assert "yolo11n.pt" in rows and str(online_home / "weights") in result.stdout


def test_cli_list_says_yes_for_an_intact_file_with_its_size(server, tmp_path, online_home, monkeypatch):
    url, _ = server
    monkeypatch.setattr(manifest_module, "MANIFEST_PATH", write_manifest(tmp_path / "manifest.json", url,
                                                                         size_bytes=None))
    (online_home / "weights").mkdir(parents=True)
    (online_home / "weights" / "test_net.pth").write_bytes(DATA)
    result = CliRunner().invoke(cli(), ["weights", "list"])
    row = next(line.split() for line in result.stdout.splitlines() if line.strip().startswith("test_net.local"))
    assert row[3:6] == [f"{len(DATA) / 1e6:.1f}", "MB", "yes"]


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_cli_list_never_breaks_a_name(online_home, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    result = CliRunner().invoke(cli(), ["weights", "list"])
    words = result.stdout.split()
    for entry in manifest_module.load_manifest().values():
        assert entry.name in words  # whole, on one line: never folded mid-word
        assert columns < 100 or entry.config in words
    table = result.stdout.split("Person detectors")[0]
    assert "…" not in table


def test_cli_verify_exit_code_follows_mismatches(online_home):
    result = CliRunner().invoke(cli(), ["weights", "verify"])
    assert result.exit_code == 0 and "missing" in result.stdout
    entry = manifest_module.load_manifest()["hrnet_w48.coco_256x192"]
    (online_home / "weights").mkdir(parents=True)
    (online_home / "weights" / entry.filename).write_bytes(b"not the checkpoint")
    result = CliRunner().invoke(cli(), ["weights", "verify"])
    assert result.exit_code == 2
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line.strip()}
    assert rows["hrnet_w48.coco_256x192"] == ["mismatch", "sha256", "prefix"]
    assert rows["hrnet_w32.coco_384x288"] == ["missing", "-"]
    assert "fail verification: hrnet_w48.coco_256x192" in result.stderr


@pytest.mark.parametrize("command", ["list", "download", "verify"])
def test_every_command_help_has_an_example(command):
    result = CliRunner().invoke(cli(), ["weights", command, "--help"])
    assert result.exit_code == 0 and f"Example: dehrnet weights {command}" in result.stdout


def test_a_file_is_hashed_once_while_it_is_unchanged(tmp_path, monkeypatch):
    import hashlib

    from dehrnet_cli.weights import download as download_module

    path = tmp_path / "w.pt"
    path.write_bytes(b"x" * 1000)
    reads: list[int] = []
    real = hashlib.sha256

    def counted(*args):
        reads.append(1)
        return real(*args)

    monkeypatch.setattr(download_module.hashlib, "sha256", counted)
    first = download_module.sha256_file(path)
    assert download_module.sha256_file(path) == first and len(reads) == 1
    path.write_bytes(b"y" * 1001)  # changed: hashed again
    assert download_module.sha256_file(path) == real(b"y" * 1001).hexdigest() and len(reads) == 2

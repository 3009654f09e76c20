"""Small helpers shared by tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root/data`` as {relative path: bytes} (the ledger included)."""
    data = root / "data"
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(data.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def data_only(snap: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in snap.items() if not k.startswith("data/.migrate")}


def refused_up(root: Path):
    """Run ``migrate up`` on ``root``, expect a refusal that wrote nothing; the error."""
    import pytest

    from migrate import engine
    from migrate.errors import BadInputError
    from migrate.store import Store

    before = snapshot(root)
    with pytest.raises(BadInputError) as exc:
        engine.up(Store(root))
    assert snapshot(root) == before
    return exc.value


def up_stopped_in_the_third_write(root: Path, monkeypatch) -> None:
    """`up` fails half-way through writing its third failure file (written in place): the
    file holds a prefix of its new version, the ledger's run is pending, the other files'
    staged versions wait in the archive (the state a SIGKILL there leaves)."""
    import errno
    import os

    import pytest

    from migrate import engine
    from migrate.errors import RepoError
    from migrate.store import Store

    real_open, real_write = os.open, os.write
    failures = str(root / "data" / "failures")
    opened: list[int] = []

    def open_(path, flags, *a, **k):
        fd = real_open(path, flags, *a, **k)
        if str(path).startswith(failures) and flags & os.O_TRUNC:
            opened.append(fd)
        return fd

    def write(fd, data):
        if len(opened) == 3 and fd == opened[2]:
            real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.EIO, "Input/output error")
        return real_write(fd, data)

    with monkeypatch.context() as m:  # only these: other patches of the test stay
        m.setattr("os.open", open_)
        m.setattr("os.write", write)
        with pytest.raises(RepoError, match="unfinished"):
            engine.up(Store(root))


def records(root: Path) -> list[dict]:
    """Every failure record under ``root`` as one dict, read independently of the tool:
    the record's own keys (an envelope item, or a per-recipe line) plus ``file``, ``line``,
    ``scope`` (package: an envelope item; platform: a per-recipe line), ``package_id``,
    ``name``, ``platform`` and ``run`` (the file name's stamp, else the line's time)."""
    import json
    import re

    out = []
    for f in sorted((root / "data" / "failures").glob("*.jsonl")):
        stamp = re.search(r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ", f.name)
        for i, text in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if not text.strip():
                continue
            line = json.loads(text)
            if "failures" in line:
                run = stamp.group(0) if stamp else line["updated_at"].replace(":", "-")
                for item in line["failures"]:
                    pid = item["package_id"]
                    where = {"file": f.name, "line": i, "scope": "package", "run": run}
                    where |= {"name": pid.split(":", 1)[1], "platform": line["environment"]}
                    out.append({**item, **where})
                continue
            eco = line.get("ecosystem")
            pid = f"{eco}:{line['recipe']}" if eco else None
            run = stamp.group(0) if stamp else line["timestamp"][:19].replace(":", "-") + "Z"
            where = {"file": f.name, "line": i, "scope": "platform", "run": run}
            out.append({**line, **where, "package_id": pid, "name": line["recipe"]})
    return out


def leftovers(root: Path) -> list[str]:
    """What a run may leave behind only while it is unfinished: temporary files and the
    staging archive."""
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.name.endswith((".migrate-tmp", ".migrate-stage")) or p.name == "staged.bin"
    )


def run_files(root):
    """The ledger's run files (not the gather index beside them), in order."""
    folder = root / "data" / ".migrate" / "runs"
    return sorted(p for p in folder.iterdir() if not p.name.endswith(".index.jsonl"))


def reseal(run: Path, strip: bool = False) -> None:
    """A run file edited by a test, sealed again as migrate would (its header's ``entries``
    and ``sum`` over the lines now there), or with the seal taken off (``strip``: as
    migrate 0.3.0 and older wrote it)."""
    from migrate.store.ledger import seal

    head, _, body = run.read_bytes().partition(b"\n")
    doc = json.loads(head)
    doc.pop("entries", None)
    doc.pop("sum", None)
    if strip:
        doc["tool_version"] = "0.3.0"  # (runs of 0.3.1 and later must be sealed)
    else:
        doc["entries"], doc["sum"] = seal([body])
    run.write_bytes(json.dumps(doc, separators=(",", ":")).encode() + b"\n" + body)


def step_up(step, repo, rel: str, data: bytes | None = None, quarantine: bool = False):
    """One line step through the engine's pure core on one file: what it gives (the new
    bytes, its patch, counts, problems), as a namespace."""
    from collections import Counter
    from types import SimpleNamespace

    from migrate.engine.lifecycle import forward_lines
    from migrate.steps.base import run_context

    data = repo.read_bytes(rel) if data is None else data
    out = forward_lines(rel, data, [step], {step.id: step.prepare(run_context(repo))}, quarantine)
    return SimpleNamespace(
        data=out.data,
        patch=out.patches.get(step.id),
        counts=Counter(out.counts.get(step.id, {})),
        problems=out.problems,
        notes=out.notes.get(step.id, []),
        kept=out.kept.get(step.id, {}),
        bug=out.bug,
    )


def step_down(step, data: bytes, patch) -> bytes:
    from migrate.engine.lifecycle import down_lines

    return down_lines(data, patch, step)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def headless_dom(page: Path, profile: Path):
    """``page`` loaded in headless chromium (no network features), its DOM once loaded:
    the finished process (``stdout`` the DOM, ``stderr`` chromium's log)."""
    import subprocess

    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
    flags += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
    return subprocess.run(
        [CHROMIUM, *flags, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )

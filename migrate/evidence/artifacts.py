"""Evidence files given with ``--evidence DIR``: recognized by content, never by name.

* install JSON — one object ``{"status": "error", "missing_recipes": [...], ...}`` as
  ``tsuku install --json`` prints it; the exit code is under ``exit_code`` or (since May)
  ``install_exit_code``. The output does not name the recipe, so it is taken from a
  ``recipe``/``package_id`` field when the file has one, else from the file name
  (``node.json``, ``install-node.json``, ``node.install.json``).
* validation results — a JSON array of ``{recipe, platform, status, exit_code, attempts,
  blocked_by}`` (CI ``validation-results-<platform>.json``).
* logs — plain text with the orchestrator's section markers (see :mod:`.logs`).

A run stamp (``2026-02-18T15-51-38Z``) anywhere in a file's path ties its findings to that
run; without one a finding applies to the latest record of its recipe. An unreadable or
malformed file is reported and skipped, never fatal.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from migrate import codec
from migrate.evidence import EvidenceSet, Finding
from migrate.evidence.logs import scan_log
from migrate.models import valid_blocker_name as valid_name

STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z")
MAX_BYTES = 64 * 1024 * 1024


def run_of(path: Path) -> str | None:
    found = STAMP.findall(path.as_posix())
    return found[-1] if found else None


def _recipe_from_name(path: Path) -> str:
    stem = path.name
    for suffix in (".json", ".install", "-install"):
        stem = stem.removesuffix(suffix)
    return stem.removeprefix("install-")


def _names(value: Any, where: str, problems: list[str]) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
        problems.append(f"{where}: expected a list of names, got {type(value).__name__}")
        return None
    bad = [n for n in value if not valid_name(n)]
    if bad:
        problems.append(f"{where}: rejected names {bad} (contain /, \\, .., < or >)")
    return [n for n in value if valid_name(n)]


def _install_json(obj: dict, path: Path, shown: str, out: EvidenceSet) -> None:
    names = _names(obj.get("missing_recipes"), f"{shown}: missing_recipes", out.problems)
    if names is None:
        return
    exit_code = obj.get("install_exit_code", obj.get("exit_code"))
    package_id = obj.get("package_id") if isinstance(obj.get("package_id"), str) else None
    recipe = obj.get("recipe") if isinstance(obj.get("recipe"), str) else None
    if recipe is None:
        recipe = package_id.partition(":")[2] if package_id else _recipe_from_name(path)
    key = "install_exit_code" if "install_exit_code" in obj else "exit_code"
    if names or (obj.get("status") == "error" and exit_code not in (8, None)):
        out.findings.append(
            Finding(
                "install_json",
                recipe,
                names,
                f"missing_recipes {json.dumps(names)} ({key} {exit_code})",
                shown,
                None,
                obj.get("platform") if isinstance(obj.get("platform"), str) else None,
                run_of(path),
                exit_code if isinstance(exit_code, int) else None,
                package_id,
            )
        )
    out.files["install_json"] = out.files.get("install_json", 0) + 1


def _validation_results(arr: list, path: Path, shown: str, out: EvidenceSet) -> None:
    for i, entry in enumerate(arr):
        where = f"{shown}: [{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("recipe"), str):
            out.problems.append(f"{where}: not a validation result (no recipe)")
            continue
        if entry.get("status") != "fail":
            continue
        names = _names(entry.get("blocked_by"), f"{where}.blocked_by", out.problems)
        exit_code = entry.get("exit_code")
        names = names or []  # absent or [] on an exit-8 failure states nothing (see Finding)
        out.findings.append(
            Finding(
                "validation_results",
                entry["recipe"],
                names,
                f"{entry['recipe']} on {entry.get('platform')}: status fail, exit_code"
                f" {exit_code}, blocked_by {json.dumps(names)}",
                shown,
                i + 1,
                entry.get("platform") if isinstance(entry.get("platform"), str) else None,
                run_of(path),
                exit_code if isinstance(exit_code, int) else None,
            )
        )
    out.files["validation_results"] = out.files.get("validation_results", 0) + 1


def scan_file(path: Path, shown: str, out: EvidenceSet) -> None:
    try:
        if path.stat().st_size > MAX_BYTES:
            out.problems.append(f"{shown}: larger than {MAX_BYTES // 2**20} MB, skipped")
            return
        data = path.read_bytes()
    except OSError as exc:
        out.problems.append(f"{shown}: cannot read ({exc.strerror}), skipped")
        return
    head = data.lstrip()[:1]
    if head in (b"{", b"["):
        try:
            obj = codec.loads(data)
        except codec.DecodeError as exc:
            out.problems.append(f"{shown}: {exc}, skipped")
            return
        if isinstance(obj, dict) and "missing_recipes" in obj:
            _install_json(obj, path, shown, out)
        elif (
            isinstance(obj, list)
            and obj
            and all(isinstance(e, dict) and "recipe" in e and "status" in e for e in obj)
        ):
            _validation_results(obj, path, shown, out)
        elif isinstance(obj, list) and not obj:
            out.files["validation_results"] = out.files.get("validation_results", 0) + 1
        else:
            out.problems.append(f"{shown}: JSON of no known evidence kind, skipped")
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        out.problems.append(f"{shown}: not UTF-8 text, skipped")
        return
    if scan_log(text, shown, run_of(path), out):
        out.files["log"] = out.files.get("log", 0) + 1
    else:
        out.problems.append(f"{shown}: no evidence recognized, skipped")


def scan_dirs(dirs: list[str]) -> EvidenceSet:
    """Every file under the given folders (or the given files), sorted, recognized by content."""
    out = EvidenceSet()
    for d in dirs:
        root = Path(d)
        if not root.exists():
            out.problems.append(f"{d}: no such file or directory, skipped")
            continue
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for p in paths:
            if p.name.startswith("."):
                continue
            # provenance names the file from the evidence folder's own name down, so no
            # machine-specific absolute path ends up in committed records
            shown = p.name if root.is_file() else (Path(root.name) / p.relative_to(root))
            scan_file(p, Path(shown).as_posix(), out)
    return out

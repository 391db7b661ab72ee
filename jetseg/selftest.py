"""The self-test report: named checks with a status (passed, failed, skipped with the reason), written as
``report.json`` and ``report.md`` for a user to attach to an issue. The checks themselves are composed by
``jetseg selftest`` (jetseg/cli/selftest.py) from the layers they test; this module only runs and reports.

``./setup.sh test-device`` merges the on-device pytest's JUnit XML into the same report
(:func:`merge_junit`), so one list holds every device check: selftest's and pytest's.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from jetseg.errors import JetsegError

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
#: What ``jetseg selftest --out DIR`` writes into DIR.
REPORT_FILES = ("report.json", "report.md")

#: The machine facts a maintainer needs first (keys of DeviceInfo.to_dict()).
MAINTAINER_FACTS = ("model", "l4t", "jetpack", "tensorrt", "cuda", "nvpmodel", "jetson_clocks", "dla_cores")


class Skip(Exception):
    """Raised by a check that cannot run on this machine; the message is the reason."""


@dataclass
class CheckResult:
    """One check: its name, group (``portable`` or ``device``), status, what it found and how long it took."""

    name: str
    group: str
    status: str
    detail: str = ""
    seconds: float = 0.0
    data: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


#: A check returns (one-line detail, data for report.json) or raises Skip / an error.
CheckFn = Callable[[], Any]


def run_check(name: str, group: str, fn: CheckFn, verbose: bool = False) -> CheckResult:
    """Run one check. Skip -> skipped; any exception -> failed with its message (a self-test reports every
    failure and goes on to the next check; ``verbose`` adds the traceback to the data)."""
    start = time.monotonic()
    try:
        outcome = fn()
    except Skip as exc:
        return CheckResult(name, group, SKIPPED, str(exc), round(time.monotonic() - start, 3))
    except Exception as exc:  # a failing check is a result, reported with its message (and traceback on request)
        first = (str(exc).strip().splitlines() or [""])[0]
        detail = first if isinstance(exc, JetsegError) else "%s: %s" % (type(exc).__name__, first)
        data = {"traceback": traceback.format_exc()} if verbose else {}
        return CheckResult(name, group, FAILED, detail, round(time.monotonic() - start, 3), data)
    detail, data = outcome if isinstance(outcome, tuple) else (str(outcome or ""), {})
    return CheckResult(name, group, PASSED, detail, round(time.monotonic() - start, 3), dict(data))


def summary(results: List[CheckResult]) -> Dict[str, int]:
    return {status: sum(1 for r in results if r.status == status) for status in (PASSED, FAILED, SKIPPED)}


def write_report(out: Path, results: List[CheckResult], machine: Dict[str, Any]) -> Dict[str, Any]:
    """Write ``out/report.json`` and ``out/report.md``; return the report."""
    import jetseg

    report = {"jetseg": jetseg.__version__, "python": platform.python_version(), "platform": platform.platform(),
              "argv": sys.argv[1:], "machine": machine, "summary": summary(results),
              "checks": [r.to_dict() for r in results]}
    check_report_folder(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in ((REPORT_FILES[0], json.dumps(report, indent=2, default=str) + "\n"),
                           (REPORT_FILES[1], markdown(report))):
            _write_new(out / name, text)
    except OSError as exc:
        raise JetsegError("cannot write the report into %s (%s); choose another --out"
                          % (out, exc.strerror or exc)) from None
    return report


def check_report_folder(out: Path) -> None:
    """Raise JetsegError (one line) if the report cannot go into ``out``: it is not a folder, or a report file
    there is a folder. Checked before the checks run, and again before writing. (A symbolic link in its place
    is replaced, never followed: :func:`_write_new`.)"""
    if out.exists() and not out.is_dir():
        raise JetsegError("--out %s is a file; expected a folder for %s" % (out, " and ".join(REPORT_FILES)))
    for name in REPORT_FILES:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            raise JetsegError("%s is a folder; remove it or choose another --out" % path)


def _write_new(path: Path, text: str) -> None:
    """Write ``text`` into a fresh temporary file next to ``path`` and rename it over ``path``: a planted
    symbolic link is replaced, never followed."""
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, str(path))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def markdown(report: Dict[str, Any]) -> str:
    counts = report["summary"]
    lines = ["# jetseg selftest", "",
             "jetseg %s, Python %s, %s" % (report["jetseg"], report["python"], report["platform"]), "",
             "**%d passed, %d failed, %d skipped**" % (counts[PASSED], counts[FAILED], counts[SKIPPED]), "",
             "| check | group | status | seconds | detail |", "|---|---|---|---|---|"]
    for check in report["checks"]:
        detail = str(check["detail"]).replace("|", "\\|").replace("\n", " ")
        lines.append("| %s | %s | %s | %.1f | %s |" % (check["name"], check["group"], check["status"],
                                                       check["seconds"], detail))
    machine = report.get("machine") or {}
    lines += ["", "## For the maintainer", ""]
    lines += ["- %s: %s" % (key, machine.get(key, "unknown")) for key in MAINTAINER_FACTS]
    logs = [(c["name"], c["data"]["build_log"]) for c in report["checks"]
            if c["status"] == FAILED and (c.get("data") or {}).get("build_log")]
    if logs:
        lines += ["", "Engine build logs of the failed checks (in this folder):", ""]
        lines += ["- %s: %s" % (name, log) for name, log in logs]
    lines += ["", "## How to send this report", "",
              "Open an issue in jetseg's GitHub repository titled \"selftest: <device>, JetPack <version>\", zip "
              "this folder (report.md, report.json, pytest-junit.xml, summary.md, the logs) and attach the zip. The "
              "checks use synthetic frames only: no patient data is in it.",
              "", "## Machine", "", "```json", json.dumps(machine, indent=2, default=str), "```", ""]
    return "\n".join(lines)


def junit_results(path: Path) -> List[CheckResult]:
    """The test cases of a pytest JUnit XML file as checks of group ``pytest``: passed, failed (a failure or an
    error, with its message) or skipped (with its reason). A missing or unreadable file is one failed check."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(str(path)).getroot()
    except (OSError, ET.ParseError) as exc:
        return [CheckResult("on-device pytest", "pytest", FAILED,
                            "no readable JUnit report at %s (%s); see pytest.log" % (path, exc))]
    results = []
    for case in root.iter("testcase"):
        name = "%s::%s" % (case.get("classname", ""), case.get("name", ""))
        status, detail = PASSED, ""
        for child in case:
            if child.tag in ("failure", "error"):
                status, detail = FAILED, (child.get("message") or (child.text or "").strip())
            elif child.tag == "skipped" and status != FAILED:
                status, detail = SKIPPED, (child.get("message") or "")
        first = (detail.strip().splitlines() or [""])[0]
        results.append(CheckResult(name, "pytest", status, first, round(float(case.get("time") or 0), 3)))
    return results


def merge_junit(out: Path, junit: Path) -> Dict[str, Any]:
    """Add the JUnit results to ``out/report.json`` (and ``report.md``); a missing report.json becomes a failed
    ``selftest`` check, so the merged report is never silently partial. Returns the merged report."""
    path = out / "report.json"
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        checks = [CheckResult(**c) for c in report["checks"] if c.get("group") != "pytest"]
        machine = report.get("machine", {})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        checks = [CheckResult("selftest", "portable", FAILED, "no usable %s (%s); see selftest.log" % (path, exc))]
        machine = {}
    return write_report(out, checks + junit_results(junit), machine)


def exit_code(results: List[CheckResult]) -> int:
    """0 when nothing failed (skipped checks are fine), else 1."""
    return 1 if any(r.status == FAILED for r in results) else 0


def reason_not_on_device(tensorrt_version: Optional[str], is_jetson: bool) -> Optional[str]:
    """Why the device checks cannot run here, or None when they can."""
    if not is_jetson:
        return "not a Jetson (no /etc/nv_tegra_release); run 'jetseg selftest' on the device"
    if tensorrt_version is None:
        return "TensorRT is not importable (JetPack's python3-libnvinfer; ./setup.sh makes the venv see it)"
    return None

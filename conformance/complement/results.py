"""Per-test Complement results, kept in the repository as a TSV file.

    results.py [--check] [--partial] RESULTS.tsv NOTES.tsv RUN.json [...]

RUN.json files are ``go test -json`` output. Every test (top-level and subtest) of
the run becomes a row ``package  test  result  note`` of RESULTS.tsv (``result``:
pass, fail or skip). ``note`` is the note of NOTES.tsv for that test when there is one
(written by hand: why it fails, which issue it waits for, or ``flaky: ...``), else for
a failing test the first telling line of its output.

Rows of tests that did not run are kept. With --check, a test that passed in the
committed RESULTS.tsv and now fails, is skipped or (without --partial: the run covered
whole packages) is missing, is a regression: they are listed, the file is left as it
is, and the exit status is 1. Tests whose note starts with "flaky" do not count.
Otherwise the file is rewritten, so newly passing tests are recorded.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE_PREFIX = "github.com/matrix-org/complement/"
HEADER = ["package", "test", "result", "note"]
Key = tuple[str, str]

LOCAL_URL = re.compile(r"https?://127\.0\.0\.1:\d+")  # ports differ from run to run
ANSI = re.compile(r"\x1b?\[[0-9;]*m")
NOISE = re.compile(
    r"\[CSAPI\] (GET|PUT|POST|DELETE) .* => [23]\d\d |^=== |^--- |^\s*$|"
    r"called runtime\.SkipIf|SendEventSynced waiting|^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d "
)


def load_run(paths: list[str]) -> tuple[dict[Key, str], dict[Key, list[str]]]:
    """(package, test) -> pass/fail/skip, and each test's output lines."""
    results: dict[Key, str] = {}
    output: dict[Key, list[str]] = defaultdict(list)
    for path in paths:
        with open(path, errors="replace") as f:
            for line in f:
                if not line.startswith("{"):
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                test = event.get("Test")
                if not test:
                    continue
                key = (event.get("Package", "").removeprefix(PACKAGE_PREFIX), test)
                action = event.get("Action")
                if action == "output":
                    output[key].append(event.get("Output", ""))
                elif action in ("pass", "fail", "skip"):
                    results[key] = action
    return results, output


def failure_line(lines: list[str]) -> str:
    """The most telling line of a failing test's output."""
    red = [ANSI.sub("", line).strip() for line in lines if "[31m" in line]
    clean = [ANSI.sub("", line).strip() for line in lines]
    for group in (
        red,
        [c for c in clean if re.search(r"panic|Fatal|timed out|Error Trace|Error:", c)],
        [c for c in clean if re.search(r"_test\.go:\d+:", c)],
        clean,
    ):
        for candidate in group:
            if candidate and not NOISE.search(candidate):
                return LOCAL_URL.sub("", candidate.replace("\t", " "))[:200]
    return ""


def read_tsv(path: Path) -> list[dict[str, str]]:
    """The rows of a TSV file with a header line (fields hold no tabs or newlines)."""
    if not path.exists():
        return []
    header, *lines = path.read_text().splitlines()
    names = header.split("\t")
    return [dict(zip(names, line.split("\t"), strict=False)) for line in lines if line]


def write_tsv(path: Path, rows: list[dict[str, str]]) -> None:
    def field(value: str) -> str:
        return " ".join(value.split("\t")).replace("\n", " ")

    lines = ["\t".join(HEADER)]
    lines += ["\t".join(field(row.get(name, "")) for name in HEADER) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--partial", action="store_true")
    parser.add_argument("results", type=Path)
    parser.add_argument("notes", type=Path)
    parser.add_argument("runs", nargs="+")
    args = parser.parse_args()

    run, output = load_run(args.runs)
    if not run:
        print("no test results in the run", file=sys.stderr)
        return 1
    notes = {(r["package"], r["test"]): r["note"] for r in read_tsv(args.notes)}
    committed = {(r["package"], r["test"]): r for r in read_tsv(args.results)}
    packages_run = {package for package, _ in run}

    regressions = []
    for key, row in committed.items():
        if row["result"] != "pass" or notes.get(key, "").startswith("flaky"):
            continue
        now = run.get(key)
        if now is None and (args.partial or key[0] not in packages_run):
            continue
        if now != "pass":
            regressions.append(f"{key[0]} {key[1]}: {now or 'missing'}")

    if args.check and regressions:
        print(f"{len(regressions)} tests passed before and do not now:", file=sys.stderr)
        for line in regressions:
            print(f"  {line}", file=sys.stderr)
        return 1

    failing_children: dict[Key, int] = defaultdict(int)
    for (package, test), result in run.items():
        for i, char in enumerate(test):
            if char == "/" and result == "fail":
                failing_children[(package, test[:i])] += 1
    rows = dict(committed)
    for key, result in run.items():
        note = notes.get(key, "")
        if not note and result == "fail":
            children = failing_children.get(key)
            note = f"{children} failing subtests" if children else failure_line(output[key])
        rows[key] = {"package": key[0], "test": key[1], "result": result, "note": note}
    write_tsv(args.results, [rows[key] for key in sorted(rows)])

    counts: dict[tuple[str, bool, str], int] = defaultdict(int)
    for (package, test), row in rows.items():
        counts[(package, "/" in test, row["result"])] += 1
    for package in sorted({p for p, _, _ in counts}):
        for sub, label in ((False, "top-level"), (True, "subtests")):
            c = {r: counts[(package, sub, r)] for r in ("pass", "fail", "skip")}
            print(f"{package} {label}: {c['pass']} pass, {c['fail']} fail, {c['skip']} skip")
    if regressions:
        print(f"{len(regressions)} tests passed before and do not now (recorded)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

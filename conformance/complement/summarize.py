#!/usr/bin/env python3
"""Summarize `go test -json` output of Complement runs.

    summarize.py [--log PLAIN.log] [--failures] RESULT.json [...]

Prints pass/fail/skip counts for top-level tests and for subtests, then the failing
top-level tests with the first assertion line of each (--failures: every failing test
with its first lines of failure output). --log also writes the plain test output.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
from collections import defaultdict

signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet when piped into head


def load(paths: list[str]):
    results: dict[str, str] = {}  # test -> pass/fail/skip
    output: dict[str, list[str]] = defaultdict(list)
    plain: list[str] = []
    elapsed: dict[str, float] = {}
    for p in paths:
        with open(p, errors="replace") as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    plain.append(line + "\n")
                    continue
                try:
                    ev = json.loads(line)
                except ValueError:
                    plain.append(line + "\n")
                    continue
                t = ev.get("Test")
                act = ev.get("Action")
                if act == "output":
                    plain.append(ev.get("Output", ""))
                    if t:
                        output[t].append(ev.get("Output", ""))
                elif t and act in ("pass", "fail", "skip"):
                    results[t] = act
                    elapsed[t] = ev.get("Elapsed", 0.0)
    return results, output, plain, elapsed


ANSI = re.compile(r"\x1b?\[[0-9;]*m")
NOISE = re.compile(
    r"\[CSAPI\] (GET|PUT|POST|DELETE) .* => [23]\d\d |^=== |^--- |^\s*$|"
    r"called runtime\.SkipIf|SendEventSynced waiting|^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d "
)


def reason(lines: list[str]) -> str:
    """The most telling line of a failing test's output."""
    clean = [ANSI.sub("", ln).strip() for ln in lines]
    red = [ANSI.sub("", ln).strip() for ln in lines if "[31m" in ln]
    for group in (
        red,
        [c for c in clean if re.search(r"panic|FAIL:|Fatal|timed out|Error Trace|Error:", c)],
        [c for c in clean if re.search(r"_test\.go:\d+:", c) and not NOISE.search(c)],
        [c for c in clean if not NOISE.search(c)],
    ):
        for c in group:
            if c and not NOISE.search(c):
                return c[:300]
    return "(no output)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--log")
    ap.add_argument("--failures", action="store_true")
    a = ap.parse_args()
    results, output, plain, elapsed = load(a.paths)
    if a.log:
        with open(a.log, "w") as f:
            f.writelines(plain)
    top = {t: r for t, r in results.items() if "/" not in t}
    sub = {t: r for t, r in results.items() if "/" in t}

    def counts(d):
        c = defaultdict(int)
        for r in d.values():
            c[r] += 1
        return f"{c['pass']} passed, {c['fail']} failed, {c['skip']} skipped (of {len(d)})"

    print(f"top-level: {counts(top)}")
    print(f"subtests:  {counts(sub)}")
    # leaf tests: those without children (subtest names may contain "/" themselves)
    prefixes = {t[:i] for t in results for i, ch in enumerate(t) if ch == "/"}
    parents = prefixes & set(results)
    leaves = {t: r for t, r in results.items() if t not in parents}
    print(f"leaves:    {counts(leaves)}")
    print()
    failing = sorted(t for t, r in top.items() if r == "fail")
    print(f"failing top-level tests ({len(failing)}):")
    for t in failing:
        subs_failed = sorted(
            s for s, r in sub.items() if r == "fail" and s.startswith(t + "/") and s not in parents
        )
        own = reason(output[t]) if not subs_failed else reason(output[subs_failed[0]])
        extra = (
            f" [{len(subs_failed)} failing subtests, first {subs_failed[0]}]" if subs_failed else ""
        )
        print(f"- {t}{extra}: {own}")
    if a.failures:
        print()
        for t in sorted(x for x, r in results.items() if r == "fail" and x not in parents):
            print(f"### {t} ({elapsed.get(t, 0):.1f}s)")
            shown = [ln.rstrip() for ln in output[t] if ln.strip()][:25]
            print("\n".join(shown))
            print()
    skipped = sorted(t for t, r in results.items() if r == "skip")
    if skipped:
        print()
        print(f"skipped ({len(skipped)}): " + ", ".join(skipped))


if __name__ == "__main__":
    main()

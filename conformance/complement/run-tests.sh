#!/usr/bin/env bash
# Run Complement test packages against localhost/complement-matrixhs:latest.
#
#   run-tests.sh [PKG ...]          # default: ./tests/csapi
#   RUN='TestLogin|TestRegistration' run-tests.sh ./tests/csapi
#
# Each package runs on its own (leftover Complement containers, blueprint images and
# networks are removed before and after). Results: WORK/results/<pkg>-<stamp>.json
# (go test -json), .log (plain output) and .summary.txt (summarize.py).
#
# Environment (defaults):
#   RUN              go test -run regex (all)
#   GO_TIMEOUT       60m
#   DIRTY            1: reuse one deployment across a package's tests
#                    (COMPLEMENT_ENABLE_DIRTY_RUNS; Synapse's CI does so; much faster here)
#   SPAWN_TIMEOUT    60 (COMPLEMENT_SPAWN_HS_TIMEOUT_SECS)
#   PARALLEL         go test -parallel (2)
#   ISOLATE          with DIRTY=1, tests that restart servers, run last in their own
#                    go test (default: the three that do at bb8d0f02; empty: off)
# Needs: setup-host.sh, assemble-src.sh (WORK/src/complement), build-image.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="${COMPLEMENT_WORK:-$PWD/.complement}"
WORK="$(cd "$WORK" && pwd)"
src="$WORK/src/complement"
[[ -d "$src/vendor" ]] || { echo "no $src/vendor: run assemble-src.sh first" >&2; exit 1; }

export PATH="$WORK/gotool/bin:$PATH"
eval "$("$here/podman-service.sh" start)"
export GOFLAGS=-mod=vendor GOPROXY=off GOTOOLCHAIN=local GOWORK=off
export GOCACHE="${GOCACHE:-$WORK/gocache}"
export COMPLEMENT_BASE_IMAGE="${COMPLEMENT_BASE_IMAGE:-localhost/complement-matrixhs:latest}"
export COMPLEMENT_HOSTNAME_RUNNING_COMPLEMENT=host.containers.internal
export COMPLEMENT_SPAWN_HS_TIMEOUT_SECS="${SPAWN_TIMEOUT:-60}"
if [[ "${DIRTY:-1}" == 1 ]]; then export COMPLEMENT_ENABLE_DIRTY_RUNS=1; fi

clean() {
  podman ps -aq --filter label=complement_context | xargs -r podman rm -f >/dev/null 2>&1 || true
  podman images -q --filter label=complement_context | sort -u | xargs -r podman rmi -f >/dev/null 2>&1 || true
  podman network ls -q --filter name=complement | xargs -r podman network rm -f >/dev/null 2>&1 || true
  # aardvark-dns (the containers' DNS, podman's netavark backend) keeps running after its
  # networks are gone, and version 1.4 does not answer on the gateway of a network made
  # after it started: hs1 and hs2 could not resolve each other ("Name or service not
  # known") in every run after the first. Stopped here, netavark starts a fresh one with
  # the next container.
  local dns=/run/containers/networks/aardvark-dns
  if [[ -f "$dns/aardvark.pid" ]] && ! podman ps -q --filter network=podman | grep -q .; then
    kill "$(cat "$dns/aardvark.pid")" 2>/dev/null || true
    rm -f "$dns"/complement_* "$dns/aardvark.pid"
  fi
}

pkgs=("$@"); [[ ${#pkgs[@]} -gt 0 ]] || pkgs=(./tests/csapi)
# Complement tests (at bb8d0f02) that call deployment.StopServer/StartServer.
ISOLATE="${ISOLATE-^(TestToDeviceMessagesOverFederation|TestDeviceListsUpdateOverFederation|TestDelayedEvents)\$}"
mkdir -p "$WORK/results"
: > "$WORK/results/last-run"  # the .json files of this run, one a line
rc=0
for pkg in "${pkgs[@]}"; do
  clean
  name="$(echo "${pkg#./}" | tr '/.' '--' | sed 's/-\+$//')"
  stamp="$(date -u +%Y%m%dT%H%M%SZ)"
  out="$WORK/results/$name-$stamp"
  args=(-v -json -count=1 -timeout "${GO_TIMEOUT:-60m}" -parallel "${PARALLEL:-2}")
  echo "== $pkg -> $out.json ($(date -u +%H:%M:%S))"
  echo "$out.json" >> "$WORK/results/last-run"
  start=$(date +%s)
  if [[ "${DIRTY:-1}" == 1 && -n "$ISOLATE" ]]; then
    # Tests that stop and start servers broke the shared (dirty) deployment here: after
    # TestToDeviceMessagesOverFederation, every later test reaching the dirty hs2 got
    # "connect: no route to host". Run them last, in a go test without dirty deployments.
    first=("${args[@]}" -skip "$ISOLATE"); [[ -n "${RUN:-}" ]] && first+=(-run "$RUN")
    (cd "$src" && go test "${first[@]}" "$pkg") > "$out.json" 2> "$out.stderr" || rc=$?
    if [[ -z "${RUN:-}" ]]; then
      clean
      (cd "$src" && env -u COMPLEMENT_ENABLE_DIRTY_RUNS go test "${args[@]}" -run "$ISOLATE" "$pkg") \
        >> "$out.json" 2>> "$out.stderr" || rc=$?
    fi
  else
    [[ -n "${RUN:-}" ]] && args+=(-run "$RUN")
    (cd "$src" && go test "${args[@]}" "$pkg") > "$out.json" 2> "$out.stderr" || rc=$?
  fi
  end=$(date +%s)
  python3 "$here/summarize.py" --log "$out.log" "$out.json" > "$out.summary.txt" || true
  echo "wall: $((end - start)) s" >> "$out.summary.txt"
  cat "$out.summary.txt" | head -20
  clean
done
exit $rc

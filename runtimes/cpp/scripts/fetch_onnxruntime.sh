#!/usr/bin/env bash
# Assemble an ONNX Runtime folder (include/ + lib/) in the layout of ONNX Runtime's release archives:
#   include/  the C and C++ API headers (ORT 1.29, from the npm package com.github.asus4.onnxruntime@0.4.9)
#   lib/      libonnxruntime.so from the onnxruntime wheel installed in the repo's .venv
# Headers of API version 29 work with any library of version 1.29 or newer (the C API is append-only).
#
# Usage: runtimes/cpp/scripts/fetch_onnxruntime.sh [DEST]     (default: <repo>/.cache/onnxruntime)
# Env:   PYTHON (default <repo>/.venv/bin/python)  -- the interpreter whose onnxruntime wheel provides the library
# Prints the folder on its last line; pass it to CMake as -DONNXRUNTIME_ROOT=... (or export ONNXRUNTIME_ROOT).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
DEST="${1:-$REPO_ROOT/.cache/onnxruntime}"
PYTHON="${PYTHON:-$REPO_ROOT/.venv/bin/python}"

NPM_PACKAGE="com.github.asus4.onnxruntime"
NPM_VERSION="0.4.9"
NPM_SHA1="3659f34012db8208ffb7f67d704204cb08792fed"
HEADERS_IN_TARBALL="package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/onnxruntime.framework/Headers"
HEADERS_API_VERSION=29

fail() { echo "fetch_onnxruntime: $*" >&2; exit 1; }

# 1. the shared library from the wheel
[ -x "$PYTHON" ] || fail "no Python at $PYTHON; run 'make venv' at the repo root, or set PYTHON=/path/to/python"
WHEEL_INFO="$("$PYTHON" - <<'PY'
import importlib.metadata, importlib.util, pathlib
spec = importlib.util.find_spec("onnxruntime")
if spec is None:
    print("none")
else:
    capi = pathlib.Path(spec.submodule_search_locations[0]) / "capi"
    libs = sorted((p for p in capi.glob("libonnxruntime.so*") if not p.is_symlink()), key=lambda p: p.stat().st_size)
    print(importlib.metadata.version("onnxruntime"), libs[-1] if libs else "")
PY
)"
[ "$WHEEL_INFO" != "none" ] || fail "$PYTHON has no onnxruntime package; install it: $PYTHON -m pip install onnxruntime"
LIB_VERSION="${WHEEL_INFO%% *}"              # 1.32.0
WHEEL_LIB="${WHEEL_INFO#* }"                 # .../onnxruntime/capi/libonnxruntime.so.1.32.0
[ -n "$WHEEL_LIB" ] && [ -f "$WHEEL_LIB" ] || fail "the onnxruntime $LIB_VERSION wheel holds no libonnxruntime.so (a GPU or custom build?)"
LIB_NAME="libonnxruntime.so.$LIB_VERSION"
LIB_MAJOR="$(echo "$LIB_VERSION" | cut -d. -f1)"
LIB_MINOR="$(echo "$LIB_VERSION" | cut -d. -f2)"
[ "$LIB_MAJOR" -gt 1 ] || { [ "$LIB_MAJOR" -eq 1 ] && [ "$LIB_MINOR" -ge "$HEADERS_API_VERSION" ]; } \
    || fail "onnxruntime $LIB_VERSION is older than the 1.$HEADERS_API_VERSION headers; install onnxruntime>=1.$HEADERS_API_VERSION"

STAMP="$DEST/.assembled"
WANT="headers=$NPM_PACKAGE@$NPM_VERSION lib=$LIB_VERSION"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && [ -f "$DEST/lib/$LIB_NAME" ]; then
    echo "onnxruntime already assembled ($WANT)"
    echo "$DEST"
    exit 0
fi

# 2. the headers from the npm package (npm checks the tarball's integrity against the registry; we pin its sha1 too)
command -v npm >/dev/null || fail "npm not found; run runtimes/cpp/scripts/install_system_deps.sh (installs npm) or apt-get install npm"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
echo "downloading $NPM_PACKAGE@$NPM_VERSION (about 150 MB, for its headers)"
(cd "$WORK" && npm pack --silent "$NPM_PACKAGE@$NPM_VERSION" >/dev/null)
TARBALL="$WORK/$NPM_PACKAGE-$NPM_VERSION.tgz"
[ "$(sha1sum "$TARBALL" | cut -d' ' -f1)" = "$NPM_SHA1" ] || fail "$TARBALL has an unexpected sha1 (wanted $NPM_SHA1)"
tar -xzf "$TARBALL" -C "$WORK" "$HEADERS_IN_TARBALL"
grep -q "#define ORT_API_VERSION $HEADERS_API_VERSION" "$WORK/$HEADERS_IN_TARBALL/onnxruntime_c_api.h" \
    || fail "headers in $NPM_PACKAGE@$NPM_VERSION are not API version $HEADERS_API_VERSION"

# 3. assemble: a copy of the library (so the cache survives a venv rebuild) plus the soname links
rm -rf "$DEST"
mkdir -p "$DEST/include" "$DEST/lib"
cp "$WORK/$HEADERS_IN_TARBALL"/*.h "$DEST/include/"
cp "$WHEEL_LIB" "$DEST/lib/$LIB_NAME"
ln -s "$LIB_NAME" "$DEST/lib/libonnxruntime.so.1"
ln -s "$LIB_NAME" "$DEST/lib/libonnxruntime.so"
echo "$LIB_VERSION" > "$DEST/VERSION_NUMBER"
echo "$WANT" > "$STAMP"
echo "assembled onnxruntime ($WANT)"
echo "$DEST"

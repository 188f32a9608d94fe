#!/usr/bin/env bash
# Install the Debian packages the C++ runtime builds against (OpenCV 4.6, nlohmann-json, CMake, g++).
# Skips apt entirely when every package is already installed; uses sudo only when not root.
set -euo pipefail

PACKAGES=(cmake g++ make pkg-config libopencv-dev nlohmann-json3-dev)
# npm fetches the ONNX Runtime headers (scripts/fetch_onnxruntime.sh); only needed when it is not on PATH.
command -v npm >/dev/null || PACKAGES+=(npm)

missing=()
for package in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "system packages already installed: ${PACKAGES[*]}"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "installing: ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"

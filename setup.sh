#!/usr/bin/env bash
# jetseg installer and entry point for the README's commands.
#
#   ./setup.sh            install into ./.venv (idempotent; re-runs only what changed)
#   ./setup.sh demo       install if needed, then run `jetseg demo`
#   ./setup.sh test       install with the dev tools, then static checks and the whole test suite
#   ./setup.sh test-device  on a Jetson: the on-device tests (markers jetson, trt, gpu)
#
# On x86 hosts: CPU PyTorch (torch==2.13.0), ONNX Runtime, OpenCV headless from PyPI, and the apt packages
# the tests use (ffmpeg, GStreamer tools, chromium). On a Jetson (/etc/nv_tegra_release): a venv with
# --system-site-packages so that JetPack's TensorRT bindings and GStreamer-enabled OpenCV are used; never
# OpenCV or TensorRT from pip there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
VENV="${JETSEG_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
ACTION="${1:-install}"
shift || true

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

is_jetson() { [ -f /etc/nv_tegra_release ]; }

APT_PACKAGES="ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-libav chromium"

apt_install() {
    # Installs missing Debian/Ubuntu packages when we can (root or sudo); otherwise says what is missing.
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"; else
            say "missing system packages (tests that need them will skip): ${missing[*]}"
            say "install them with: sudo apt-get install ${missing[*]}"
            return 0
        fi
    fi
    say "apt: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

stamp_of() { cat "$ROOT/pyproject.toml" "$ROOT/setup.py" "$ROOT/setup.sh" | sha256sum | cut -c1-16; }

make_venv() {
    local extra_flags=("$@")
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating virtual environment $VENV"
        "$PY" -m venv "${extra_flags[@]}" "$VENV"
        "$VENV/bin/python" -m pip install -q --upgrade pip
    fi
}

install_x86() {
    apt_install $APT_PACKAGES
    make_venv
    local pip="$VENV/bin/python -m pip"
    if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
        say "pip: PyTorch (CPU build torch==2.13.0)"
        $pip install -q torch==2.13.0
    fi
    say "pip: jetseg and its extras"
    $pip install -q -e ".[onnx,opencv,scans,runtime,bench,train,dev]"
    # TensorRT cannot be installed here; its type stubs let mypy check the adapters (10.x API).
    $pip install -q --no-deps tensorrt-stubs
}

install_jetson() {
    # JetPack 5 (Xavier, Python 3.8, TensorRT 8.5) and JetPack 6 (Orin). Filled in by the Jetson work:
    # TensorRT and OpenCV come from JetPack through --system-site-packages.
    say "Jetson detected: $(head -n1 /etc/nv_tegra_release)"
    make_venv --system-site-packages
    local pip="$VENV/bin/python -m pip"
    $pip install -q -e ".[onnx,scans,runtime,bench,train,dev]" --no-deps
    $pip install -q "numpy<1.25" PyYAML onnx pydicom nibabel tqdm prometheus-client matplotlib psutil pytest ruff vermin mypy
}

install() {
    local stamp
    stamp="$(stamp_of)"
    if [ -f "$VENV/.jetseg-stamp" ] && [ "$(cat "$VENV/.jetseg-stamp")" = "$stamp" ]; then
        return 0
    fi
    if is_jetson; then install_jetson; else install_x86; fi
    echo "$stamp" > "$VENV/.jetseg-stamp"
    say "installed: $("$VENV/bin/jetseg" --version)"
}

static_checks() {
    say "ruff"
    "$VENV/bin/ruff" check .
    say "vermin --target=3.8- (shipped code must run on JetPack 5's Python 3.8)"
    "$VENV/bin/vermin" -q --no-tips --violations --target=3.8- --eval-annotations \
        --exclude-regex '(^|/)(\.venv|build|tests)/' jetseg jetson calibration benchmarks models
    if [ -f "$ROOT/mypy.ini" ]; then
        say "mypy (TensorRT/pycuda adapters against tensorrt-stubs)"
        "$VENV/bin/mypy" --config-file "$ROOT/mypy.ini"
    fi
}

case "$ACTION" in
    install) install ;;
    demo) install; exec "$VENV/bin/jetseg" demo "$@" ;;
    test)
        install
        static_checks
        say "pytest"
        "$VENV/bin/python" -m pytest "$@"
        ;;
    test-device)
        install
        "$VENV/bin/python" -m pytest -m "jetson or trt or gpu" "$@"
        ;;
    *) die "unknown action '$ACTION' (use: install, demo, test, test-device)" ;;
esac

#!/usr/bin/env bash
# jetseg installer and entry point for the README's commands.
#
#   ./setup.sh            install into ./.venv (idempotent; re-runs only what changed)
#   ./setup.sh demo       install if needed, then run `jetseg demo`
#   ./setup.sh test       install with the dev tools, then static checks and the whole test suite
#   ./setup.sh test-jetpack5  the JetPack 5 twin: Python 3.8 venv (.venv-jp5) with requirements/jetpack5.txt,
#                           then the whole test suite there (runs on any x86 host; CI runs it)
#   ./setup.sh test-device  on a Jetson: `jetseg selftest`, then the on-device tests (markers jetson, trt, gpu)
#
# On x86 hosts: CPU PyTorch (torch==2.13.0), ONNX Runtime, OpenVINO (the openvino backend), OpenCV headless from PyPI, and the apt packages
# the tests use (ffmpeg, GStreamer tools, chromium). On a Jetson (/etc/nv_tegra_release): a venv with
# --system-site-packages so that JetPack's TensorRT bindings and GStreamer-enabled OpenCV are used; never
# OpenCV or TensorRT from pip there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
VENV="${JETSEG_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
# Flags that may come before the action: --with-torch2trt (Jetson: build torch2trt from source).
while [ $# -gt 0 ]; do
    case "$1" in
        --with-torch2trt) export JETSEG_WITH_TORCH2TRT=1; shift ;;
        *) break ;;
    esac
done
ACTION="${1:-install}"
shift || true

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

is_jetson() { [ -f /etc/nv_tegra_release ]; }

#: JetPack 5's Python stack: pinned in ONE file, shared by the Jetson install and its twin (test-jetpack5).
JP5_CONSTRAINTS="$ROOT/requirements/jetpack5.txt"
#: What the Jetson install takes from PyPI (versions from $JP5_CONSTRAINTS on JetPack 5).
#: polygraphy: NVIDIA's cross-check of jetseg's engines in the on-device tests (tests/jetson/trt/test_polygraphy.py).
JETSON_PY_PACKAGES="numpy PyYAML packaging onnx pydicom nibabel tqdm prometheus-client matplotlib psutil pytest polygraphy"

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

stamp_of() {
    # What the install depends on: the project files and the optional Jetson steps asked for.
    { cat "$ROOT/pyproject.toml" "$ROOT/setup.py" "$ROOT/setup.sh" "$ROOT/requirements/jetpack5.txt"
      echo "${JETSEG_TORCH_WHEEL:-}|${JETSEG_ORT_WHEEL:-}|${JETSEG_WITH_TORCH2TRT:-}|${JETSEG_PYCUDA:-}"
    } | sha256sum | cut -c1-16
}

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
    $pip install -q -e ".[onnx,openvino,opencv,scans,runtime,bench,train,dev]"
    # TensorRT cannot be installed here; its type stubs let mypy check the adapters (10.x API).
    $pip install -q --no-deps tensorrt-stubs
}

# --- install_jetson: JetPack 5/6 devices (docs/jetson.md explains every step) ------------------------------
# Optional steps, switched on by environment variables (on an installed venv, remove .venv/.jetseg-stamp first
# so that ./setup.sh runs the install again):
#   JETSEG_TORCH_WHEEL=URL|FILE  NVIDIA's PyTorch wheel for this JetPack (not on PyPI)
#   JETSEG_ORT_WHEEL=URL|FILE    an onnxruntime-gpu wheel built for this JetPack (else PyPI's CPU onnxruntime)
#   JETSEG_WITH_TORCH2TRT=1      build torch2trt from source (needs PyTorch)
#   JETSEG_PYCUDA="pycuda==X"    pycuda version to build (default below)
jetpack_major() {
    # R35 -> JetPack 5 (Xavier/Orin, Ubuntu 20.04, Python 3.8), R36 -> JetPack 6 (Orin, Ubuntu 22.04, Python 3.10)
    local rel
    rel="$(sed -n 's/^# R\([0-9]*\) .*/\1/p' /etc/nv_tegra_release | head -n1)"
    case "$rel" in
        35) echo 5 ;;
        36) echo 6 ;;
        *) echo 0 ;;
    esac
}

install_jetson() {
    local jp cuda="/usr/local/cuda" sys_py="/usr/bin/python3"
    jp="$(jetpack_major)"
    say "Jetson detected: $(head -n1 /etc/nv_tegra_release) (JetPack ${jp})"
    if [ "$jp" = 0 ]; then say "warning: unknown L4T release; continuing as JetPack 5/6 (see docs/jetson.md)"; fi
    # Required first: the venv module and the headers/compiler pycuda builds with. A fresh JetPack image may
    # lack python3-venv and python3-dev; without them nothing below can work, so stop here and say so.
    local required=(python3-venv python3-dev python3-pip build-essential)
    apt_install "${required[@]}"
    local pkg
    for pkg in "${required[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || die "$pkg is required on the Jetson and missing: sudo apt-get install ${required[*]}, then ./setup.sh"
    done
    # Optional: GStreamer for capture, ffmpeg for the tests.
    apt_install ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
        gstreamer1.0-plugins-bad gstreamer1.0-libav
    # TensorRT's Python bindings and GStreamer-enabled OpenCV come from JetPack, for the system Python only.
    if ! "$sys_py" -c "import tensorrt" 2>/dev/null; then
        apt_install python3-libnvinfer
    fi
    if ! "$sys_py" -c "import cv2" 2>/dev/null; then
        say "JetPack's OpenCV is missing: sudo apt-get install nvidia-opencv (never pip's opencv-python here)"
    fi
    PY="$sys_py" make_venv --system-site-packages
    local pip="$VENV/bin/python -m pip"
    # pip's OpenCV would shadow JetPack's GStreamer-enabled cv2: remove it if something pulled it in.
    for pkg in opencv-python opencv-python-headless opencv-contrib-python; do
        if $pip show -q "$pkg" >/dev/null 2>&1; then
            say "removing pip's $pkg from the venv (it has no GStreamer; JetPack's cv2 is used)"
            $pip uninstall -y -q "$pkg"
        fi
    done
    $pip install -q --upgrade pip setuptools wheel
    $pip install -q --no-deps -e .
    # JetPack 5: the pinned stack (numpy 1.23.5: TensorRT 8.5.2's nptype breaks on numpy >= 1.24).
    local cons=()
    if [ "$jp" = 5 ]; then cons=(-c "$JP5_CONSTRAINTS"); fi
    # shellcheck disable=SC2086
    $pip install -q ${cons[@]+"${cons[@]}"} $JETSON_PY_PACKAGES ruff vermin mypy
    # ONNX Runtime: a GPU build if given, else PyPI's CPU wheel (calibration and the onnxrt backend need it).
    if [ -n "${JETSEG_ORT_WHEEL:-}" ]; then
        say "pip: onnxruntime-gpu from $JETSEG_ORT_WHEEL"
        $pip install -q "$JETSEG_ORT_WHEEL"
    elif ! "$VENV/bin/python" -c "import onnxruntime" 2>/dev/null; then
        say "pip: onnxruntime (CPU); for the CUDA/TensorRT providers set JETSEG_ORT_WHEEL to a Jetson build"
        $pip install -q ${cons[@]+"${cons[@]}"} onnxruntime || say "no onnxruntime wheel for this Python on PyPI; see docs/jetson.md"
    fi
    # pycuda: built from source against the JetPack CUDA toolkit (device memory for the trt backend).
    if ! "$VENV/bin/python" -c "import pycuda.driver" 2>/dev/null; then
        if [ -x "$cuda/bin/nvcc" ]; then
            say "pip: building ${JETSEG_PYCUDA:-pycuda==2024.1.2} against $cuda (a few minutes)"
            CUDA_ROOT="$cuda" PATH="$cuda/bin:$PATH" CPATH="$cuda/include:${CPATH:-}" \
                LIBRARY_PATH="$cuda/lib64:${LIBRARY_PATH:-}" \
                $pip install -q ${cons[@]+"${cons[@]}"} "${JETSEG_PYCUDA:-pycuda==2024.1.2}" \
                || die "pycuda did not build against $cuda (the trt backend needs it): check python3-dev and nvcc, then re-run ./setup.sh (docs/jetson.md)"
        else
            die "no CUDA toolkit at $cuda (nvcc), needed to build pycuda: sudo apt-get install nvidia-jetpack, then ./setup.sh"
        fi
    fi
    # PyTorch: NVIDIA's wheel for this JetPack (optional: training, the torch backend, torch2trt).
    if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
        if [ -n "${JETSEG_TORCH_WHEEL:-}" ]; then
            say "pip: PyTorch from $JETSEG_TORCH_WHEEL"
            $pip install -q "$JETSEG_TORCH_WHEEL"
        else
            say "PyTorch is optional here (train/export/torch backend). NVIDIA publishes wheels per JetPack:"
            say "  see 'Installing PyTorch for Jetson Platform' (docs.nvidia.com), then:"
            say "  JETSEG_TORCH_WHEEL=<wheel URL or file> ./setup.sh"
        fi
    fi
    if [ "${JETSEG_WITH_TORCH2TRT:-0}" = 1 ]; then
        if "$VENV/bin/python" -c "import torch" 2>/dev/null; then
            say "pip: torch2trt from source (github.com/NVIDIA-AI-IOT/torch2trt)"
            $pip install -q --no-build-isolation "git+https://github.com/NVIDIA-AI-IOT/torch2trt.git" \
                || say "torch2trt did not install; 'jetseg build --via onnx' (the default) does not need it"
        else
            say "torch2trt needs PyTorch: install NVIDIA's wheel first (JETSEG_TORCH_WHEEL)"
        fi
    fi
    if ! command -v tegrastats >/dev/null; then
        say "tegrastats not found (package nvidia-l4t-tools): power telemetry will be missing"
    fi
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
        --exclude-regex '(^|/)(\.venv|build|tests)/' jetseg jetson calibration engines benchmarks models training tools
    say "import-linter (layers: cli > apps > runtime > models > core; pyproject [tool.importlinter])"
    rm -rf "$ROOT/build/tree"
    "$VENV/bin/python" "$ROOT/tools/package_tree.py" "$ROOT/build/tree" >/dev/null
    (cd "$ROOT/build/tree" && PYTHONPATH=. "$VENV/bin/lint-imports" --no-cache "$ROOT/pyproject.toml")
    say "mypy (the whole package as laid out in build/tree; TensorRT/pycuda against typings/)"
    "$VENV/bin/mypy" --config-file "$ROOT/mypy.ini"
}

find_python38() {
    # A Python 3.8 interpreter for the JetPack 5 twin: $JETSEG_PY38, python3.8 on PATH, or pyenv's newest 3.8.
    local cand
    for cand in "${JETSEG_PY38:-}" "$(command -v python3.8 || true)" \
                $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.8.*/bin/python3.8 2>/dev/null | sort -V -r); do
        if [ -n "$cand" ] && [ -x "$cand" ] \
                && "$cand" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 8))' 2>/dev/null; then
            echo "$cand"
            return 0
        fi
    done
    return 1
}

test_jetpack5() {
    # The JetPack 5 twin: the Jetson's Python 3.8 stack (requirements/jetpack5.txt) on this x86 host, whole suite.
    local py38 venv="${JETSEG_JP5_VENV:-$ROOT/.venv-jp5}" stamp
    py38="$(find_python38)" || die "no Python 3.8 interpreter found (tried \$JETSEG_PY38, python3.8 on PATH, pyenv versions/3.8.*); install one, e.g. 'pyenv install 3.8', then ./setup.sh test-jetpack5"
    stamp="$( { echo "$py38"; cat "$JP5_CONSTRAINTS" "$ROOT/pyproject.toml" "$ROOT/setup.py"; } | sha256sum | cut -c1-16)"
    if [ ! -f "$venv/.jetseg-stamp" ] || [ "$(cat "$venv/.jetseg-stamp")" != "$stamp" ]; then
        rm -rf "$venv"
        say "JetPack 5 twin: creating $venv with $py38"
        "$py38" -m venv "$venv"
        # shellcheck disable=SC2086
        "$venv/bin/python" -m pip install -q -c "$JP5_CONSTRAINTS" $JETSON_PY_PACKAGES onnxruntime opencv-python-headless
        "$venv/bin/python" -m pip install -q --no-deps -e .
        echo "$stamp" > "$venv/.jetseg-stamp"
    fi
    say "JetPack 5 twin: $("$venv/bin/python" - <<'PY'
import importlib, platform, sys
names = ("numpy", "onnx", "onnxruntime", "cv2", "yaml", "matplotlib", "pydicom", "nibabel")
versions = []
for name in names:
    try:
        versions.append("%s %s" % (name, importlib.import_module(name).__version__))
    except ImportError:
        versions.append("%s missing" % name)
print("Python %s (%s); %s" % (platform.python_version(), sys.executable, ", ".join(versions)))
PY
)"
    "$venv/bin/python" -m pytest -p no:cacheprovider "$@"
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
    test-jetpack5) test_jetpack5 "$@" ;;
    test-device)
        is_jetson || die "test-device runs on a Jetson (no /etc/nv_tegra_release here); on this machine use ./setup.sh test"
        install
        "$VENV/bin/jetseg" doctor
        # The report to attach to an issue: every check with passed / failed / skipped and why.
        "$VENV/bin/jetseg" selftest --out "${JETSEG_SELFTEST_OUT:-$ROOT/selftest-report}"
        # -rP prints each passing test's output: Dice per engine, the DLA placement report.
        "$VENV/bin/python" -m pytest -m "jetson or trt or gpu" -rP "$@"
        ;;
    *) die "unknown action '$ACTION' (use: install, demo, test, test-jetpack5, test-device)" ;;
esac

#!/usr/bin/env bash
# jetseg installer and entry point for the README's commands.
#
#   ./setup.sh            install into ./.venv (idempotent; re-runs only what changed)
#   ./setup.sh demo       install if needed, then run `jetseg demo`
#   ./setup.sh test       install with the dev tools, then static checks and the whole test suite
#   ./setup.sh test-jetpack5  the JetPack 5 twin: Python 3.8 venv (.venv-jp5) with requirements/jetpack5.txt,
#                           then the whole test suite there (runs on any x86 host; CI runs it)
#   ./setup.sh test-device  on a Jetson: `jetseg doctor`, `jetseg selftest` and the on-device tests (markers
#                           jetson, trt, gpu), each run whatever the others did; one summary; non-zero if any failed
#
# On x86 hosts: CPU PyTorch (torch==2.13.0), ONNX Runtime, OpenVINO (the openvino backend; nncf for its own INT8), OpenCV headless from PyPI, and the apt packages
# the tests use (ffmpeg, GStreamer tools, chromium). On a Jetson (/etc/nv_tegra_release): a venv with
# --system-site-packages so that JetPack's TensorRT bindings and GStreamer-enabled OpenCV are used; never
# OpenCV or TensorRT from pip there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
VENV="${JETSEG_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
# Test hooks (tests/setup/ uses them; a user never sets them):
#   JETSEG_SYSROOT=DIR               read the Jetson's files (etc/nv_tegra_release, usr/bin/python3, usr/local/cuda)
#                                    under DIR instead of /, so a fake L4T root can stand in for a device
#   JETSEG_SETUP_STOP_AFTER=system   stop the Jetson install after its system step (no venv, no pip)
#   JETSEG_SETUP_SKIP_INSTALL=1      test-device: use $VENV as it is (no install step)
SYSROOT="${JETSEG_SYSROOT:-}"
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

is_jetson() { [ -f "$SYSROOT/etc/nv_tegra_release" ]; }

# Steps with their time: `step NAME` ends the running step (printing how long it took) and starts NAME.
STEP_NAME=""
STEP_START=0
step() {
    step_done
    STEP_NAME="$1"
    STEP_START=$SECONDS
    say "step: $1"
}
step_done() {
    if [ -n "$STEP_NAME" ]; then say "step: $STEP_NAME done ($((SECONDS - STEP_START)) s)"; fi
    STEP_NAME=""
}

#: JetPack 5's Python stack: pinned in ONE file, shared by the Jetson install and its twin (test-jetpack5).
JP5_CONSTRAINTS="$ROOT/requirements/jetpack5.txt"
#: What the Jetson install takes from PyPI (versions from $JP5_CONSTRAINTS on JetPack 5).
#: polygraphy: NVIDIA's cross-check of jetseg's engines in the on-device tests (tests/jetson/trt/test_polygraphy.py).
JETSON_PY_PACKAGES="numpy PyYAML packaging onnx pydicom nibabel tqdm prometheus-client matplotlib psutil pytest polygraphy"

APT_PACKAGES="ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-libav chromium dicom3tools"

#: apt-get waits this long (seconds) for the dpkg lock: on a Jetson's first boot unattended-upgrades holds it.
APT_LOCK_TIMEOUT=600

apt_install() {
    # apt_install [--ask] PKG...: installs the missing Debian/Ubuntu packages when it can (root, or sudo).
    # Without root or a password-less sudo: with --ask and stdin a terminal, sudo asks for the password (after
    # saying why); otherwise it prints the exact command to run and returns 1 with --ask (0 without: the
    # packages are optional then). A failing apt-get returns 1.
    local ask=0
    if [ "${1:-}" = --ask ]; then ask=1; shift; fi
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local apt_opts=(-o "DPkg::Lock::Timeout=$APT_LOCK_TIMEOUT")
    local command_line="sudo apt-get install -y ${apt_opts[*]} ${missing[*]}"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
            sudo="sudo"
        elif [ "$ask" = 1 ] && [ -t 0 ] && command -v sudo >/dev/null; then
            say "sudo: installing ${missing[*]} with apt-get needs root; sudo asks for your password once"
            if sudo -v; then sudo="sudo"; else
                say "sudo did not give root; install them yourself, then re-run ./setup.sh:"
                say "  $command_line"
                return 1
            fi
        else
            say "missing system packages: ${missing[*]}"
            say "install them with: $command_line"
            if [ "$ask" = 1 ]; then return 1; fi
            return 0
        fi
    fi
    say "apt: installing ${missing[*]} (waits up to $((APT_LOCK_TIMEOUT / 60)) min for the apt lock if another apt," \
        "e.g. unattended-upgrades on first boot, holds it)"
    $sudo apt-get "${apt_opts[@]}" update -qq \
        || { say "apt-get update failed (above); fix it, then: $command_line"; return 1; }
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null \
        || { say "apt-get install failed (above); fix it, then: $command_line"; return 1; }
}

stamp_of() {
    # What the install depends on: the project files and the optional Jetson steps asked for.
    { cat "$ROOT/pyproject.toml" "$ROOT/setup.py" "$ROOT/setup.sh" "$ROOT/requirements/jetpack5.txt"
      echo "${JETSEG_TORCH_WHEEL:-}|${JETSEG_ORT_WHEEL:-}|${JETSEG_WITH_TORCH2TRT:-}"
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
    $pip install -q -e ".[onnx,openvino,opencv,scans,monai,runtime,bench,train,dev,serve]"
    # jetseg serve: the tritonserver binary of NVIDIA's PyTriton wheel (x86_64 only). Without its dependencies:
    # it pins numpy<2, and jetseg uses only the binary, the Python backend and its stubs (docs/scale.md).
    $pip install -q --no-deps "nvidia-pytriton>=0.5"
    # TensorRT cannot be installed here; its type stubs let mypy check the adapters (10.x API).
    $pip install -q --no-deps tensorrt-stubs
}

# --- install_jetson: JetPack 5/6 devices (docs/jetson.md explains every step) ------------------------------
# Optional steps, switched on by environment variables (on an installed venv, remove .venv/.jetseg-stamp first
# so that ./setup.sh runs the install again):
#   JETSEG_TORCH_WHEEL=URL|FILE  NVIDIA's PyTorch wheel for this JetPack (not on PyPI)
#   JETSEG_ORT_WHEEL=URL|FILE    an onnxruntime-gpu wheel built for this JetPack (else PyPI's CPU onnxruntime)
#   JETSEG_WITH_TORCH2TRT=1      build torch2trt from source (needs PyTorch)
# No C compilation: the trt backend calls JetPack's CUDA runtime (libcudart) through ctypes (jetson/trt/cuda.py).

jetpack_major() {
    # R35 -> JetPack 5 (Xavier/Orin, Ubuntu 20.04, Python 3.8), R36 -> JetPack 6 (Orin, Ubuntu 22.04, Python 3.10)
    local rel
    rel="$(sed -n 's/^# R\([0-9]*\) .*/\1/p' "$SYSROOT/etc/nv_tegra_release" | head -n1)"
    case "$rel" in
        35) echo 5 ;;
        36) echo 6 ;;
        *) echo 0 ;;
    esac
}

# What the Jetson install really needs, checked by trying it (not by package names): each check prints nothing
# and returns 0 when it passes, else prints what failed. NEEDED_PACKAGE maps a check to the apt package that fixes it.
check_venv() {
    # `python3 -m venv` works (python3-venv brings ensurepip): made in a temp dir and removed again.
    local tmp rc=0
    tmp="$(mktemp -d)"
    "$1" -m venv "$tmp/venv" >"$tmp/log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then echo "'$1 -m venv' fails: $(tr -s ' \n' ' ' <"$tmp/log" | cut -c1-200)"; fi
    rm -rf "$tmp"
    return "$rc"
}
check_pip() {
    "$1" -m pip --version >/dev/null 2>&1 || { echo "'$1 -m pip' fails (no pip for the system Python)"; return 1; }
}
declare -A NEEDED_PACKAGE=([venv]=python3-venv [pip]=python3-pip)

cuda_runtime_library() {
    # The libcudart the trt backend loads (the first of jetson/trt/cuda.py's LIBRARIES that exists), or nothing.
    local lib
    for lib in /usr/local/cuda-11.4/lib64/libcudart.so.11.0 /usr/local/cuda/lib64/libcudart.so; do
        if [ -e "$SYSROOT$lib" ]; then echo "$lib"; return 0; fi
    done
    return 1
}

jetson_system_step() {
    # Checks what the install needs, installs the packages that fix what failed (sudo asks for the password
    # when stdin is a terminal), checks again, and stops with the exact command when something is still missing.
    local sys_py="$1" checks=(venv pip) name why
    local failed=() packages=()
    for name in "${checks[@]}"; do
        if why="$("check_$name" "$sys_py")"; then say "  ok: $name"; else
            say "  missing: $name: $why (package ${NEEDED_PACKAGE[$name]})"
            failed+=("$name")
            packages+=("${NEEDED_PACKAGE[$name]}")
        fi
    done
    if [ ${#failed[@]} -gt 0 ]; then
        apt_install --ask "${packages[@]}" \
            || die "the Jetson install needs ${packages[*]}: run the command above, then ./setup.sh"
        for name in "${failed[@]}"; do
            why="$("check_$name" "$sys_py")" \
                || die "$name still fails after installing ${NEEDED_PACKAGE[$name]}: $why (docs/jetson.md, section 1)"
            say "  ok now: $name"
        done
    fi
    if why="$(cuda_runtime_library)"; then say "  ok: CUDA runtime $why (the trt backend calls it through ctypes)"; else
        say "  no CUDA runtime (libcudart) under /usr/local/cuda*/lib64: the trt backend needs JetPack's CUDA (sudo apt-get install nvidia-jetpack)"
    fi
    # Optional: GStreamer for capture, ffmpeg for the tests (a refused sudo here only prints the command).
    apt_install --ask ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
        gstreamer1.0-plugins-bad gstreamer1.0-libav || say "continuing without them (tests that need them skip)"
    # TensorRT's Python bindings and GStreamer-enabled OpenCV come from JetPack, for the system Python only.
    if ! "$sys_py" -c "import tensorrt" 2>/dev/null; then
        apt_install --ask python3-libnvinfer || say "continuing without TensorRT's Python bindings (no trt backend)"
    fi
    if ! "$sys_py" -c "import cv2" 2>/dev/null; then
        say "JetPack's OpenCV is missing: sudo apt-get install nvidia-opencv (never pip's opencv-python here)"
    fi
}

install_jetson() {
    local jp sys_py="$SYSROOT/usr/bin/python3"
    jp="$(jetpack_major)"
    say "Jetson detected: $(head -n1 "$SYSROOT/etc/nv_tegra_release") (JetPack ${jp})"
    if [ "$jp" = 0 ]; then say "warning: unknown L4T release; continuing as JetPack 5/6 (see docs/jetson.md)"; fi
    step "system: check python3 -m venv and pip; apt packages"
    jetson_system_step "$sys_py"
    if [ "${JETSEG_SETUP_STOP_AFTER:-}" = system ]; then
        step_done
        say "stopping after the system step (JETSEG_SETUP_STOP_AFTER=system, a test hook)"
        exit 0
    fi
    step "venv: $VENV from $sys_py with --system-site-packages, then jetseg and its Python stack from PyPI"
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
    step "optional: PyTorch, torch2trt, tools"
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
    step_done
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
    say "mypy (the whole package as laid out in build/tree; TensorRT against typings/)"
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

run_device_check() {
    # run_device_check NAME LOG COMMAND...: runs COMMAND (output to the terminal and LOG), records its exit code
    # in DEVICE_RESULTS ("NAME|CODE|LOG"); never stops the caller, so every check runs whatever the others did.
    local name="$1" log="$2" rc=0
    shift 2
    say "test-device: $name: $*"
    "$@" 2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
    say "test-device: $name: exit code $rc"
    DEVICE_RESULTS+=("$name|$rc|$log")
}

test_device() {
    # The device checks a Jetson owner runs and sends back: doctor, selftest and the on-device tests, all of them
    # whatever fails, then one summary (summary.md next to selftest's report) and a non-zero exit if any failed.
    is_jetson || die "test-device runs on a Jetson (no /etc/nv_tegra_release here); on this machine use ./setup.sh test"
    if [ "${JETSEG_SETUP_SKIP_INSTALL:-}" != 1 ]; then install; fi
    local out="${JETSEG_SELFTEST_OUT:-$ROOT/selftest-report}"
    mkdir -p "$out"
    out="$(cd "$out" && pwd)"
    # A report left from an earlier run must never be sent as this run's.
    rm -f "$out/summary.md" "$out/report.md" "$out/report.json" "$out/pytest-junit.xml"
    DEVICE_RESULTS=()
    run_device_check "jetseg doctor" "$out/doctor.log" "$VENV/bin/jetseg" doctor
    # The report to attach to an issue: every check with passed / failed / skipped and why.
    run_device_check "jetseg selftest" "$out/selftest.log" "$VENV/bin/jetseg" selftest --out "$out"
    # -rP prints each passing test's output: Dice per engine, the DLA placement report.
    run_device_check "on-device pytest" "$out/pytest.log" "$VENV/bin/python" -m pytest -m "jetson or trt or gpu" -rP \
        --junitxml "$out/pytest-junit.xml" "$@"
    # One report: pytest's results (passed, failed with the message, skipped with the reason) join selftest's in
    # report.md/json. Exit 1 only says that some check failed (counted above); anything else is a broken merge.
    local merge_rc=0
    say "test-device: merging the on-device pytest results into $out/report.md"
    "$VENV/bin/jetseg" selftest --out "$out" --merge-junit "$out/pytest-junit.xml" >"$out/merge.log" 2>&1 || merge_rc=$?
    if [ "$merge_rc" -gt 1 ]; then DEVICE_RESULTS+=("report merge|$merge_rc|$out/merge.log"); fi
    local summary="$out/summary.md" entry name rc log nfailed=0
    {
        echo "# jetseg test-device summary"
        echo
        echo "$(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(head -n1 "$SYSROOT/etc/nv_tegra_release")"
        echo
        echo "| check | exit code | result | output |"
        echo "|---|---|---|---|"
        for entry in "${DEVICE_RESULTS[@]}"; do
            IFS='|' read -r name rc log <<<"$entry"
            if [ "$rc" = 0 ]; then echo "| $name | $rc | passed | $log |"; else echo "| $name | $rc | FAILED | $log |"; fi
        done
        echo
        echo "Report: $out/report.md and $out/report.json (every selftest check and every on-device test, with"
        echo "messages and skip reasons, and the machine: L4T, JetPack, TensorRT, CUDA, power mode, clocks); pytest's"
        echo "own file: $out/pytest-junit.xml; engine build logs: $out/build-logs/."
        for log in "$out/report.md" "$out/report.json" "$out/pytest-junit.xml"; do
            if [ ! -f "$log" ]; then echo "Missing: $log (its command failed before writing it; see its log)."; fi
        done
        echo "Send them: open an issue in jetseg's GitHub repository and attach the folder $out (zipped) with this summary."
    } >"$summary"
    for entry in "${DEVICE_RESULTS[@]}"; do
        IFS='|' read -r name rc log <<<"$entry"
        if [ "$rc" != 0 ]; then nfailed=$((nfailed + 1)); fi
    done
    cat "$summary"
    if [ "$nfailed" -gt 0 ]; then die "test-device: $nfailed of ${#DEVICE_RESULTS[@]} checks failed (summary: $summary)"; fi
    say "test-device: all ${#DEVICE_RESULTS[@]} checks passed (summary: $summary)"
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
    test-device) test_device "$@" ;;
    *) die "unknown action '$ACTION' (use: install, demo, test, test-jetpack5, test-device)" ;;
esac

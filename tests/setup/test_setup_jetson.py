"""setup.sh's Jetson branch on a fake L4T root (tests/fixtures/fake_l4t.py): a stock JetPack 5 image without
python3-venv and pip, a sudo that wants a password, the apt lock held by unattended-upgrades on first boot.

The install runs up to the end of its system step (JETSEG_SETUP_STOP_AFTER=system): no venv, no pip install.
"""
from __future__ import annotations

import os
import pty
import subprocess

import pytest

from tests.fixtures.fake_l4t import PASSWORD, STOCK_PACKAGES, fake_l4t
from tests.fixtures.paths import REPO

LOCK = "-o DPkg::Lock::Timeout=600"


def setup_sh(fake, tmp_path, *args, terminal_input=None, **env):
    """``./setup.sh ARGS`` on the fake root: stdin a real pseudo-terminal holding ``terminal_input`` when given,
    else /dev/null (a non-interactive run). Returns (exit code, output)."""
    run_env = fake.env(tmp_path / "venv", **env)
    if terminal_input is None:
        done = subprocess.run([str(REPO / "setup.sh")] + list(args), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=run_env, cwd=str(REPO),
                              timeout=120)
        return done.returncode, done.stdout.decode()
    master, slave = pty.openpty()
    try:
        os.write(master, terminal_input.encode())  # the terminal's line buffer holds it until sudo reads
        done = subprocess.run([str(REPO / "setup.sh")] + list(args), stdin=slave, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, env=run_env, cwd=str(REPO), timeout=120)
    finally:
        os.close(slave)
        os.close(master)
    return done.returncode, done.stdout.decode()


def install(fake, tmp_path, **kwargs):
    return setup_sh(fake, tmp_path, JETSEG_SETUP_STOP_AFTER="system", **kwargs)


def apt_installs(fake):
    return [line for line in fake.calls("apt-get") if " install " in " %s " % line]


def test_stock_image_at_a_terminal_asks_once_for_the_password_waits_for_the_lock_and_finishes(tmp_path):
    fake = fake_l4t(tmp_path / "root")
    fake.hold_apt_lock()
    code, out = install(fake, tmp_path, terminal_input=PASSWORD + "\n")
    assert code == 0, out
    why = out.index("sudo: installing python3-venv python3-pip with apt-get needs root; sudo asks for your password")
    assert why < out.index("[sudo] password for jetson:"), out
    assert "waits up to 10 min for the apt lock if another apt, e.g. unattended-upgrades on first boot" in out
    assert "Waiting for cache lock" in out  # apt itself, given the timeout, waited instead of failing
    assert not fake.apt_lock_held()
    assert apt_installs(fake) == [
        "%s install -y -qq --no-install-recommends python3-venv python3-pip" % LOCK,
        "%s install -y -qq --no-install-recommends ffmpeg" % LOCK,
    ]
    assert all(line.startswith(LOCK) for line in fake.calls("apt-get")), fake.calls("apt-get")
    assert [line for line in fake.calls("sudo") if line == "-v"] == ["-v"]  # the password asked once
    assert "ok now: venv" in out and "ok now: pip" in out
    assert "stopping after the system step" in out
    assert "step: system: check python3 -m venv and pip; apt packages done (" in out


def test_default_install_needs_no_compiler_headers_or_nvcc(tmp_path):
    fake = fake_l4t(tmp_path / "root", nvcc=False)
    code, out = install(fake, tmp_path, terminal_input=PASSWORD + "\n")
    assert code == 0, out
    asked = " ".join(apt_installs(fake))
    assert "python3-dev" not in asked and "build-essential" not in asked
    assert "Python.h" not in out and "compiler" not in out


def test_nothing_missing_asks_for_nothing(tmp_path):
    fake = fake_l4t(tmp_path / "root", installed=STOCK_PACKAGES + ("python3-venv", "python3-pip", "ffmpeg"))
    code, out = install(fake, tmp_path)
    assert code == 0, out
    assert fake.calls("apt-get") == [] and fake.calls("sudo") == []
    assert "ok: venv" in out and "ok: pip" in out
    assert any(line.startswith("-m venv ") for line in fake.calls("python3"))


def test_checks_that_a_venv_works_not_the_package_name(tmp_path):
    fake = fake_l4t(tmp_path / "root", installed=STOCK_PACKAGES + ("python3-venv", "python3-pip", "ffmpeg"))
    fake.break_venv()
    code, out = install(fake, tmp_path)
    assert code != 0, out
    assert "missing: venv: '%s/usr/bin/python3 -m venv' fails: The virtual environment was not created" % fake.root in out
    assert "error: venv still fails after installing python3-venv" in out
    assert fake.calls("apt-get") == []


def test_non_interactive_run_does_not_prompt_and_prints_the_exact_command(tmp_path):
    fake = fake_l4t(tmp_path / "root")
    code, out = install(fake, tmp_path)
    assert code != 0, out
    assert "[sudo] password" not in out
    assert "install them with: sudo apt-get install -y %s python3-venv python3-pip" % LOCK in out
    assert "error: the Jetson install needs python3-venv python3-pip: run the command above, then ./setup.sh" in out
    assert apt_installs(fake) == []
    assert fake.calls("sudo") == ["-n true"]


def test_wrong_password_says_what_to_run(tmp_path):
    fake = fake_l4t(tmp_path / "root")
    code, out = install(fake, tmp_path, terminal_input="not-the-password\n")
    assert code != 0, out
    assert "sudo did not give root" in out
    assert "sudo apt-get install -y %s python3-venv python3-pip" % LOCK in out
    assert apt_installs(fake) == []


def test_no_c_build_is_asked_for_and_the_cuda_runtime_is_reported(tmp_path):
    # The trt backend calls libcudart through ctypes: no python3-dev, build-essential or nvcc, even with the old
    # JETSEG_PYCUDA variable still set in a user's shell.
    fake = fake_l4t(tmp_path / "root", installed=STOCK_PACKAGES + ("python3-venv", "python3-pip", "ffmpeg"), nvcc=False)
    lib = fake.root / "usr/local/cuda-11.4/lib64/libcudart.so.11.0"
    lib.parent.mkdir(parents=True)
    lib.touch()
    code, out = install(fake, tmp_path, JETSEG_PYCUDA="1")
    assert code == 0, out
    assert "ok: CUDA runtime /usr/local/cuda-11.4/lib64/libcudart.so.11.0 (the trt backend calls it through ctypes)" in out
    assert "python3-dev" not in out and "build-essential" not in out and "pycuda" not in out
    assert apt_installs(fake) == []


def test_a_missing_cuda_runtime_is_said_not_fatal(tmp_path):
    fake = fake_l4t(tmp_path / "root", installed=STOCK_PACKAGES + ("python3-venv", "python3-pip", "ffmpeg"))
    code, out = install(fake, tmp_path)
    assert code == 0, out
    assert "no CUDA runtime (libcudart) under /usr/local/cuda*/lib64: the trt backend needs JetPack's CUDA" in out


@pytest.mark.parametrize("held", [False, True])
def test_apt_without_the_lock_timeout_would_fail_on_first_boot(tmp_path, held):
    # the shim's own check: apt-get without the timeout refuses while the lock is held (so the tests above can fail)
    fake = fake_l4t(tmp_path / "root")
    if held:
        fake.hold_apt_lock()
    done = subprocess.run([str(fake.shims / "apt-get"), "update"], env=dict(fake.env(tmp_path / "venv"),
                          FAKE_L4T_ROOT_USER="1"), capture_output=True, text=True, timeout=30)
    assert (done.returncode != 0) == held, done.stderr

"""Parse ``tegrastats`` lines (Xavier and Orin formats, JetPack 4 to 6) into a dict.

A line looks like (AGX Xavier, JetPack 5)::

    RAM 2337/31920MB (lfb 6820x4MB) SWAP 0/15960MB (cached 0MB) CPU [2%@1190,1%@1190,off,off]
    EMC_FREQ 0%@2133 GR3D_FREQ 0%@318 APE 150 AO@34.5C GPU@35C Tdiode@37.75C ...
    GPU 0mW/0mW CPU 311mW/311mW SOC 1243mW/1243mW CV 0mW/0mW VDDRQ 155mW/155mW SYS5V 1461mW/1461mW

Older releases print rails without the unit (``GPU 0/0``); Orin names its rails differently
(``VDD_GPU_SOC 2388mW/2388mW VDD_CPU_CV ... VIN_SYS_5V0 ...``), may prefix a date, and prints
``GR3D_FREQ 0%@[305,305]``. Temperatures of powered-off zones read ``-256C`` and are dropped.

Parsing is tolerant: unknown fields are ignored, a missing field is simply absent from the result.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Tuple

# Rails that already are the board's total input power; when present they are the total instead of a sum.
TOTAL_RAILS = ("VDD_IN", "POM_5V_IN", "VIN")
# Rails that carry nothing.
IGNORED_RAILS = ("NC",)

_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_SWAP = re.compile(r"\bSWAP (\d+)/(\d+)MB")
_CPU = re.compile(r"\bCPU \[([^\]]*)\]")
_CORE = re.compile(r"(\d+)%(?:@(\d+))?")
_GR3D = re.compile(r"\bGR3D_FREQ (\d+)%(?:@\[?(\d+)(?:,\d+)*\]?)?")
_EMC = re.compile(r"\bEMC_FREQ (\d+)%(?:@(\d+))?")
_TEMP = re.compile(r"\b([A-Za-z][\w]*)@(-?\d+(?:\.\d+)?)C\b")
# A rail: NAME cur/avg with optional mW units; the name is upper-case letters, digits and underscores.
_RAIL = re.compile(r"(?<![\w@])([A-Z][A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?![\w%])")
_NOT_RAILS = ("RAM", "SWAP", "IRAM", "LFB")


def parse_line(line: str) -> Dict[str, Any]:
    """One tegrastats line -> a dict.

    Keys (each present only when the line has it):
        ``ram_used_mb``, ``ram_total_mb``, ``swap_used_mb``, ``swap_total_mb``,
        ``cpu_load_pct`` (list per core, None for an offline core), ``cpu_freq_mhz`` (list),
        ``gpu_load_pct``, ``gpu_freq_mhz``, ``emc_load_pct``, ``temps_c`` (name -> degrees),
        ``power_mw`` (rail -> current mW), ``power_avg_mw`` (rail -> average mW), ``power_total_mw``.
    """
    out: Dict[str, Any] = {}
    match = _RAM.search(line)
    if match:
        out["ram_used_mb"], out["ram_total_mb"] = int(match.group(1)), int(match.group(2))
    match = _SWAP.search(line)
    if match:
        out["swap_used_mb"], out["swap_total_mb"] = int(match.group(1)), int(match.group(2))
    match = _CPU.search(line)
    if match:
        loads: List[Optional[int]] = []
        freqs: List[Optional[int]] = []
        for core in match.group(1).split(","):
            found = _CORE.fullmatch(core.strip())
            loads.append(int(found.group(1)) if found else None)
            freqs.append(int(found.group(2)) if found and found.group(2) else None)
        out["cpu_load_pct"], out["cpu_freq_mhz"] = loads, freqs
    match = _GR3D.search(line)
    if match:
        out["gpu_load_pct"] = int(match.group(1))
        if match.group(2):
            out["gpu_freq_mhz"] = int(match.group(2))
    match = _EMC.search(line)
    if match:
        out["emc_load_pct"] = int(match.group(1))
    temps = {}
    for name, value in _TEMP.findall(line):
        degrees = float(value)
        if degrees > -100.0:  # -256C: the zone is powered off
            temps[name] = degrees
    if temps:
        out["temps_c"] = temps
    rails: Dict[str, int] = {}
    averages: Dict[str, int] = {}
    for name, cur, avg in _RAIL.findall(line):
        if name in _NOT_RAILS or name in IGNORED_RAILS:
            continue
        rails[name], averages[name] = int(cur), int(avg)
    if rails:
        out["power_mw"], out["power_avg_mw"] = rails, averages
        out["power_total_mw"] = total_power(rails)
    return out


#: Thermal zones that are not measurements: on AGX Xavier the PMIC zone reports a constant (``PMIC@100C``
#: under any load, ``PMIC@50C`` on some releases), so it must never be shown as the hottest part of the board.
PLACEHOLDER_ZONES = ("PMIC",)


def hottest(temps: Dict[str, float]) -> Optional[Tuple[str, float]]:
    """``(zone, degrees)`` of the hottest real sensor in ``temps_c``; None when there is none."""
    real = [(name, value) for name, value in temps.items() if name.upper() not in PLACEHOLDER_ZONES]
    if not real:
        return None
    return max(real, key=lambda item: item[1])


def total_power(rails: Dict[str, int]) -> int:
    """The board's power: a total-input rail if there is one (Orin Nano ``VDD_IN``), else the sum of rails."""
    for name in TOTAL_RAILS:
        if name in rails:
            return rails[name]
    return sum(rails.values())

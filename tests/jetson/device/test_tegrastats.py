"""tegrastats parsing on sample lines in the Xavier (JetPack 4 and 5) and Orin formats."""
from __future__ import annotations

from jetseg.jetson.device.tegrastats import parse_line, total_power

XAVIER_JP5 = ("RAM 2337/31920MB (lfb 6820x4MB) SWAP 0/15960MB (cached 0MB) CPU [2%@1190,1%@1190,0%@1190,0%@1190,"
              "off,off,off,off] EMC_FREQ 0%@2133 GR3D_FREQ 0%@318 APE 150 MTS fg 0% bg 0% AO@34.5C GPU@35C "
              "Tdiode@37.75C PMIC@50C AUX@34C CPU@35.5C thermal@35.1C Tboard@35C GPU 0mW/0mW CPU 311mW/311mW "
              "SOC 1243mW/1243mW CV 0mW/0mW VDDRQ 155mW/155mW SYS5V 1461mW/1461mW")
XAVIER_JP4 = ("RAM 1712/31927MB (lfb 7030x4MB) SWAP 0/15963MB (cached 0MB) CPU [8%@2265,1%@2265,3%@2265,2%@2265,"
              "0%@2265,0%@2265,0%@2265,0%@2265] EMC_FREQ 4%@2133 GR3D_FREQ 99%@1377 APE 150 MTS fg 0% bg 0% "
              "AO@38C GPU@41.5C Tdiode@41.75C PMIC@100C AUX@38.5C CPU@40.5C thermal@39.9C Tboard@39C "
              "GPU 9112/8702 CPU 1222/1110 SOC 2903/2870 CV 0/0 VDDRQ 1528/1501 SYS5V 2879/2866")
ORIN_AGX = ("08-09-2023 15:06:37 RAM 2546/30593MB (lfb 6367x4MB) SWAP 0/15296MB (cached 0MB) CPU [0%@729,1%@729,"
            "0%@729,0%@729,0%@729,0%@729,0%@729,0%@729,off,off,off,off] EMC_FREQ 0%@2133 GR3D_FREQ 12%@[305,305] "
            "VIC_FREQ 729 APE 174 CV0@-256C CPU@44.187C Tboard@33C SOC2@40.281C Tdiode@34.75C SOC0@41.062C "
            "CV1@-256C GPU@-256C tj@44.187C SOC1@40.593C CV2@-256C VDD_GPU_SOC 2388mW/2388mW VDD_CPU_CV "
            "398mW/398mW VIN_SYS_5V0 2524mW/2524mW NC 0mW/0mW VDDQ_VDD2_1V8AO 305mW/305mW NC 0mW/0mW")
ORIN_NANO = ("RAM 1846/7620MB (lfb 3x4MB) SWAP 0/3810MB (cached 0MB) CPU [1%@1510,0%@1510,0%@1510,0%@1510,"
             "0%@729,0%@729] GR3D_FREQ 0% cpu@47.5C soc2@46.6C soc0@47.25C gpu@46.6C tj@47.5C soc1@47.1C "
             "VDD_IN 4596mW/4596mW VDD_CPU_GPU_CV 480mW/480mW VDD_SOC 1359mW/1359mW")


def test_xavier_jetpack5_with_units():
    s = parse_line(XAVIER_JP5)
    assert (s["ram_used_mb"], s["ram_total_mb"], s["swap_total_mb"]) == (2337, 31920, 15960)
    assert s["cpu_load_pct"] == [2, 1, 0, 0, None, None, None, None]
    assert s["cpu_freq_mhz"][:2] == [1190, 1190]
    assert (s["gpu_load_pct"], s["gpu_freq_mhz"], s["emc_load_pct"]) == (0, 318, 0)
    assert s["power_mw"] == {"GPU": 0, "CPU": 311, "SOC": 1243, "CV": 0, "VDDRQ": 155, "SYS5V": 1461}
    assert s["power_total_mw"] == 311 + 1243 + 155 + 1461
    assert s["temps_c"]["GPU"] == 35.0 and s["temps_c"]["Tdiode"] == 37.75 and len(s["temps_c"]) == 8


def test_xavier_jetpack4_without_units():
    s = parse_line(XAVIER_JP4)
    assert s["power_mw"] == {"GPU": 9112, "CPU": 1222, "SOC": 2903, "CV": 0, "VDDRQ": 1528, "SYS5V": 2879}
    assert s["power_avg_mw"]["GPU"] == 8702
    assert (s["gpu_load_pct"], s["gpu_freq_mhz"]) == (99, 1377)
    assert s["cpu_load_pct"] == [8, 1, 3, 2, 0, 0, 0, 0]


def test_orin_agx_rails_date_prefix_and_off_sensors():
    s = parse_line(ORIN_AGX)
    assert s["power_mw"] == {"VDD_GPU_SOC": 2388, "VDD_CPU_CV": 398, "VIN_SYS_5V0": 2524, "VDDQ_VDD2_1V8AO": 305}
    assert s["power_total_mw"] == 2388 + 398 + 2524 + 305
    assert (s["gpu_load_pct"], s["gpu_freq_mhz"]) == (12, 305)
    assert "CV0" not in s["temps_c"] and "GPU" not in s["temps_c"]  # -256C: powered off
    assert s["temps_c"]["tj"] == 44.187
    assert s["cpu_load_pct"][-4:] == [None] * 4


def test_orin_nano_total_input_rail_is_the_total():
    s = parse_line(ORIN_NANO)
    assert s["power_total_mw"] == 4596
    assert s["gpu_load_pct"] == 0 and "gpu_freq_mhz" not in s
    assert s["temps_c"]["gpu"] == 46.6


def test_garbage_gives_empty_sample():
    assert parse_line("") == {}
    assert parse_line("tegrastats: command not found") == {}
    assert total_power({"POM_5V_IN": 5000, "POM_5V_GPU": 100}) == 5000


def test_hottest_skips_xaviers_constant_pmic_zone():
    from jetseg.cli.doctor import _now
    from jetseg.jetson.device.tegrastats import hottest

    sample = parse_line(XAVIER_JP4)  # PMIC@100C: a constant, not a sensor
    assert sample["temps_c"]["PMIC"] == 100.0
    assert hottest(sample["temps_c"]) == ("Tdiode", 41.75)
    assert _now(sample).endswith("hottest 41.8 C (Tdiode)")
    assert hottest({"PMIC": 100.0}) is None

"""Maps the repository's top-level folders onto the one import package ``jetseg``.

``jetson/`` becomes ``jetseg.jetson``, ``calibration/`` ``jetseg.calibration`` and so on, so that no
top-level ``jetson``, ``models`` or ``calibration`` name is ever installed (JetPack already has a
``jetson`` package).
"""
from setuptools import find_packages, setup

FOLDERS = {"jetseg": "jetseg", "jetson": "jetseg.jetson", "calibration": "jetseg.calibration",
           "benchmarks": "jetseg.benchmarks", "models": "jetseg.models",
           "training": "jetseg.training", "engines": "jetseg.engines"}

package_dir = {}
packages = []
for folder, name in FOLDERS.items():
    package_dir[name] = folder
    packages.append(name)
    packages += [name + "." + sub for sub in find_packages(folder)]

setup(
    package_dir=package_dir,
    packages=packages,
    include_package_data=True,
    package_data={
        "jetseg.models": ["bundles/*/*", "bundles/*/*/*"],
        "jetseg.jetson": ["web/*", "service/*"],
    },
)

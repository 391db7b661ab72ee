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
# Folders of data only (no __init__.py): declared as packages so that setuptools ships their files.
packages += ["jetseg.jetson.service", "jetseg.models.bundles"]

setup(
    license="Apache-2.0",  # here, not in pyproject: the SPDX string there needs setuptools>=77, which Python 3.8 lacks
    package_dir=package_dir,
    packages=packages,
    include_package_data=True,
    package_data={
        "jetseg.models.bundles": ["*/*", "*/*/*"],
        "jetseg.jetson.web": ["*.html", "*.js", "*.css"],
        "jetseg.jetson.service": ["*"],
    },
)

"""The model bundle: the directory that flows through calibration, engine building, the runtime and benchmarks.

::

    ultrasound-unet/
      model.onnx       FP32 (or Q/DQ INT8 after calibration), static input shape, opset <= 17
      spec.yaml        the model's contract (:class:`jetseg.spec.Spec`)
      manifest.json    sha256 of every file, and how the bundle was made
      weights.pt       optional PyTorch state_dict (weights only)

Bundles are written atomically: everything goes into a temporary sibling directory that is renamed into
place at the end, so a failed or interrupted command never leaves a half-written bundle.
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import platform
import secrets
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Union

from jetseg.errors import BundleError, JetsegError
from jetseg.onnxgraph import dims
from jetseg.optional import available
from jetseg.records import CALIBRATION_REPORT_FILE, MANIFEST_FILE, CalibrationRecord, ManifestRecord
from jetseg.spec import Spec

MODEL_FILE = "model.onnx"
SPEC_FILE = "spec.yaml"
WEIGHTS_FILE = "weights.pt"
#: a TorchScript model kept by ``jetseg export MODEL.ts``: the PyTorch reference (torch runner, naive loop)
TORCHSCRIPT_FILE = "model.ts"
ENGINES_DIR = "engines"
#: What ``jetseg calibrate`` adds to an INT8 bundle (calibration/workflow.py writes them): its report, the
#: TensorRT calibration cache, and the float graph the cache refers to (implicit INT8 / DLA builds).
CALIBRATION_CACHE_FILE = "calibration.cache"
FP32_MODEL_FILE = "model.fp32.onnx"

PathLike = Union[str, Path]


def sha256_file(path: PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


class Bundle:
    """A model bundle on disk.

    Args:
        path: the bundle directory.
        verify: check every file listed in manifest.json against its sha256 (engines are keyed
            separately and not listed).
    """

    def __init__(self, path: PathLike, verify: bool = True) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise BundleError("%s is not a model bundle directory (expected a folder with %s and %s)"
                              % (self.path, MODEL_FILE, SPEC_FILE))
        for name in (MODEL_FILE, SPEC_FILE):
            if not (self.path / name).is_file():
                raise BundleError("bundle %s has no %s; make one with 'jetseg export' or 'jetseg train'"
                                  % (self.path, name))
        self.spec = Spec.load(self.path / SPEC_FILE)
        self.manifest = self._read_manifest()
        if verify:
            self.verify()
        self.check_model()

    # ------------------------------------------------------------------ reading
    @property
    def name(self) -> str:
        return self.spec.name or self.path.name

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def weights_path(self) -> Optional[Path]:
        p = self.path / WEIGHTS_FILE
        return p if p.is_file() else None

    @property
    def torchscript_path(self) -> Optional[Path]:
        """The bundle's TorchScript model (``model.ts``), or None."""
        p = self.path / TORCHSCRIPT_FILE
        return p if p.is_file() else None

    @property
    def precision(self) -> str:
        """``fp32`` or ``int8`` (from the manifest; calibration sets it)."""
        return self.manifest.precision

    @property
    def model_sha256(self) -> str:
        return self.manifest.files.get(MODEL_FILE) or sha256_file(self.model_path)

    def file(self, name: str) -> Path:
        return self.path / name

    def calibration(self) -> Optional[CalibrationRecord]:
        """What calibration.json records (None for a bundle that has none: FP32, or INT8 made elsewhere).

        Raises:
            BundleError: calibration.json is unreadable or damaged (the message names the field).
        """
        path = self.path / CALIBRATION_REPORT_FILE
        return CalibrationRecord.read(path) if path.is_file() else None

    def _read_manifest(self) -> ManifestRecord:
        path = self.path / MANIFEST_FILE
        if not path.is_file():
            raise BundleError("bundle %s has no %s; re-create it with 'jetseg export'" % (self.path, MANIFEST_FILE))
        return ManifestRecord.read(path)

    def verify(self) -> None:
        """Raise BundleError if a listed file is missing or its sha256 differs from the manifest, or if the
        manifest does not list model.onnx and spec.yaml."""
        for name, expected in sorted(self.manifest.files.items()):
            path = self.path / name
            if not path.is_file():
                raise BundleError("bundle %s: %s is listed in the manifest but missing" % (self.path, name))
            actual = sha256_file(path)
            if actual != expected:
                raise BundleError("bundle %s: %s has sha256 %s.. but the manifest says %s..; the file was "
                                  "changed after the bundle was made (re-export it)"
                                  % (self.path, name, actual[:12], expected[:12]))
        for name in (MODEL_FILE, SPEC_FILE):
            if name not in self.manifest.files:
                raise BundleError("bundle %s: the manifest does not list %s, so it cannot be verified; "
                                  "re-create the bundle with 'jetseg export'" % (self.path, name))

    def check_model(self) -> None:
        """Raise BundleError if model.onnx's input/output names or static shapes differ from spec.yaml.

        Needs the ``onnx`` package; without it (or for a file onnx cannot parse) the onnxrt runner makes
        the same check at activation.
        """
        if not available("onnx"):
            return
        import onnx

        try:
            graph = onnx.load(str(self.model_path), load_external_data=False).graph
        except Exception:  # protobuf's DecodeError: not an ONNX file; the runner says so when it loads it
            return
        if not graph.node:  # bytes that happen to parse, not a model: likewise left to the runner
            return
        initialisers = {t.name for t in graph.initializer}
        inputs = {i.name: dims(i) for i in graph.input if i.name not in initialisers}
        outputs = {o.name: dims(o) for o in graph.output}
        spec = self.spec
        check_shapes(str(self.path), inputs, outputs, spec.input.name, spec.input_shape,
                     spec.output.name, spec.output_shape)

    def __repr__(self) -> str:
        return "Bundle(%r, precision=%r)" % (str(self.path), self.precision)


def check_shapes(where: str, inputs: Dict[str, Any], outputs: Dict[str, Any], input_name: str,
                 input_shape: Any, output_name: str, output_shape: Any) -> None:
    """Compare a model's input/output names and shapes (ints; a name or None: dynamic) with the spec's; raise
    BundleError.

    The batch dimension is not compared (a model may be exported with a fixed batch or a dynamic one).
    """
    for kind, found, name, expected, fields in (
            ("input", inputs, input_name, input_shape, "input.channels and input.size"),
            ("output", outputs, output_name, output_shape, "output.kind and classes")):
        if name not in found:
            raise BundleError("bundle %s: spec.yaml names %s %r but model.onnx has %ss %s; fix %s.name in "
                              "spec.yaml or re-export the model" % (where, kind, name, kind, sorted(found), kind))
        if found[name] is None:
            continue
        shape, want = list(found[name]), list(expected)
        same = len(shape) == len(want) and all(not isinstance(d, int) or d == w for d, w in zip(shape[1:], want[1:]))
        if not same:
            shown = [d if d is not None else "?" for d in shape]
            raise BundleError("bundle %s: model.onnx %s %r has shape %s but spec.yaml expects %s (from %s); "
                              "re-export the model or fix spec.yaml" % (where, kind, name, shown, want, fields))


#: What runners and the apps accept as a model: a loaded bundle or its directory.
BundleLike = Union[Bundle, str, Path]


def versions() -> Dict[str, str]:
    """Versions of the interpreter and the packages that shape a model (recorded in manifests)."""
    import importlib

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("jetseg", "numpy", "onnx", "onnxruntime", "torch", "cv2", "tensorrt"):
        mod = sys.modules.get(name)
        if mod is None and name in ("jetseg", "numpy"):
            mod = importlib.import_module(name)
        if mod is not None:
            out[name] = str(getattr(mod, "__version__", "?"))
    return out


@contextlib.contextmanager
def writing(out: PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory next to ``out``; on success it replaces ``out``, on failure it is removed.

    ``out`` must not exist unless ``overwrite`` is set.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise JetsegError("%s already exists; choose another --out or remove it first" % out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = _make_dir_like_mkdir(out.parent, "." + out.name + ".")
    except OSError as exc:
        raise JetsegError("cannot write %s (%s); choose another --out" % (out, exc.strerror or exc)) from None
    try:
        yield tmp
        if out.exists():
            old = out.with_name("." + out.name + ".old")
            shutil.rmtree(str(old), ignore_errors=True)
            os.rename(str(out), str(old))
            os.rename(str(tmp), str(out))
            shutil.rmtree(str(old), ignore_errors=True)
        else:
            os.rename(str(tmp), str(out))
    except BaseException:
        shutil.rmtree(str(tmp), ignore_errors=True)
        raise


def _make_dir_like_mkdir(parent: Path, prefix: str) -> Path:
    """A new uniquely named directory with the mode ``mkdir`` gives (0777 minus the umask), unlike
    ``tempfile.mkdtemp``'s 0700: a bundle must be readable by the service user when the umask allows it."""
    for _ in range(100):
        path = parent / (prefix + secrets.token_hex(4))
        try:
            os.mkdir(str(path))
        except FileExistsError:
            continue
        return path
    raise JetsegError("cannot create a temporary folder in %s" % parent)


def write_manifest(directory: PathLike, precision: str = "fp32", provenance: Optional[Dict[str, Any]] = None,
                   exclude: Optional[List[str]] = None) -> ManifestRecord:
    """Hash every file under ``directory`` (except engines/ and the manifest) into manifest.json."""
    directory = Path(directory)
    skip = set(exclude or [])
    files = {}
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if path.is_file() and rel != MANIFEST_FILE and not rel.startswith(ENGINES_DIR + "/") and rel not in skip:
            files[rel] = sha256_file(path)
    manifest = ManifestRecord(
        files=files, precision=precision,
        created=datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        versions=versions(), provenance=provenance or {})
    manifest.write(directory)
    return manifest


def save_bundle(out: PathLike, model: Union[bytes, PathLike], spec: Spec, precision: str = "fp32",
                extra_files: Optional[Dict[str, Union[bytes, PathLike]]] = None,
                provenance: Optional[Dict[str, Any]] = None, overwrite: bool = False) -> Bundle:
    """Write a complete bundle atomically and return it (verified).

    Args:
        out: bundle directory to create.
        model: ONNX model bytes, or the path of an ONNX file to copy.
        spec: the model's spec.
        extra_files: more files, name -> bytes or source path (``weights.pt``, ``calibration.json``, ...).
        provenance: how the bundle was made (command line, data hashes, ...), stored in the manifest.
    """
    with writing(out, overwrite=overwrite) as tmp:
        items: Dict[str, Union[bytes, PathLike]] = {MODEL_FILE: model}
        items.update(extra_files or {})
        for name, content in items.items():
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                shutil.copyfile(str(content), str(target))
        spec.save(tmp / SPEC_FILE)
        write_manifest(tmp, precision=precision, provenance=provenance)
    return Bundle(out)


def command_line() -> str:
    """The command that is running, shell-quoted so that it can be pasted (URIs contain '&'): the one rendering
    for manifests, build records, bench conditions and model cards."""
    return " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).name] + sys.argv[1:])

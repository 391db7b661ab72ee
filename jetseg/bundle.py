"""The model bundle: the directory that flows through calibration, engine building, the runtime and benchmarks.

::

    ultrasound-unet/
      model.onnx       FP32 (or Q/DQ INT8 after calibration), static input shape, opset <= 17
      spec.yaml        the model's contract (:class:`jetseg.spec.Spec`)
      manifest.json    sha256 of every file, and how the bundle was made
      weights.pt       optional PyTorch state_dict (weights only)
      .jetseg-output   the marker of a folder jetseg wrote (``--overwrite`` replaces only such a folder)

Bundles are written atomically: everything goes into a temporary sibling directory that is renamed into
place at the end, so a failed or interrupted command never leaves a half-written bundle.

A bundle is data and never runs code: every file jetseg reads from it is listed in manifest.json with its
sha256 (a file the manifest does not list is refused, an entry that points outside the bundle too), and
nothing the manifest names is imported or called (code comes only from the command line: ``--module``,
``--module-path``).
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import logging
import os
import platform
import secrets
import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Union

from jetseg.errors import BundleError, JetsegError
from jetseg.onnxgraph import dims
from jetseg.optional import available
from jetseg.records import CALIBRATION_REPORT_FILE, MANIFEST_FILE, CalibrationRecord, ManifestRecord
from jetseg.spec import Spec
from jetseg.tasks import extra_io

MODEL_FILE = "model.onnx"
SPEC_FILE = "spec.yaml"
WEIGHTS_FILE = "weights.pt"
#: a TorchScript model kept by ``jetseg export MODEL.ts``: the PyTorch reference (torch runner, naive loop)
TORCHSCRIPT_FILE = "model.ts"
ENGINES_DIR = "engines"
#: What ``jetseg calibrate`` adds to an INT8 bundle (calibration/workflow.py writes them): its report, the
#: TensorRT calibration cache, the float graph the cache refers to (implicit INT8 / DLA builds), and for the cpu
#: target OpenVINO's own INT8 IR (calibration/nncfquant.py; the openvino runner reads it as a model file).
CALIBRATION_CACHE_FILE = "calibration.cache"
FP32_MODEL_FILE = "model.fp32.onnx"
OPENVINO_MODEL_FILE, OPENVINO_WEIGHTS_FILE = "model.openvino.xml", "model.openvino.bin"
#: The marker file of a folder jetseg wrote (bundles, bench reports): ``--overwrite`` replaces only those.
OUTPUT_MARKER = ".jetseg-output"
#: The help of every command's ``--overwrite`` (the rule is :func:`check_out`).
OVERWRITE_HELP = "replace an existing --out that jetseg wrote (never an input, nor a folder jetseg did not write)"
#: Files whose content decides what a bundle does: present but not listed in the manifest, they are refused.
USED_FILES = (MODEL_FILE, SPEC_FILE, WEIGHTS_FILE, TORCHSCRIPT_FILE, CALIBRATION_REPORT_FILE, CALIBRATION_CACHE_FILE,
              FP32_MODEL_FILE, OPENVINO_MODEL_FILE, OPENVINO_WEIGHTS_FILE)

PathLike = Union[str, Path]

log = logging.getLogger("jetseg.bundle")


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
        """The bundle's PyTorch state_dict (``weights.pt``) when the manifest lists it, or None."""
        return self._listed(WEIGHTS_FILE)

    @property
    def torchscript_path(self) -> Optional[Path]:
        """The bundle's TorchScript model (``model.ts``) when the manifest lists it, or None."""
        return self._listed(TORCHSCRIPT_FILE)

    def _listed(self, name: str) -> Optional[Path]:
        p = self.path / name
        return p if name in self.manifest.files and p.is_file() else None

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
        """Raise BundleError if a listed file is missing, outside the bundle or not a regular file, or its
        sha256 differs from the manifest; if the manifest does not list model.onnx and spec.yaml; or if a file
        that decides what the bundle does (:data:`USED_FILES`) is present but not listed."""
        root = self.path.resolve()
        for name, expected in sorted(self.manifest.files.items()):
            path = self.path / name
            if not path.exists() and not path.is_symlink():
                raise BundleError("bundle %s: %s is listed in the manifest but missing" % (self.path, name))
            resolved = path.resolve()
            if root not in resolved.parents:
                raise BundleError("bundle %s: manifest entry %r leads outside the bundle (to %s); a bundle reads "
                                  "only its own files: re-create it with 'jetseg export'" % (self.path, name, resolved))
            if not path.is_file():
                raise BundleError("bundle %s: manifest entry %r is not a regular file; re-create the bundle with "
                                  "'jetseg export'" % (self.path, name))
            actual = sha256_file(path)
            if actual != expected:
                raise BundleError("bundle %s: %s has sha256 %s.. but the manifest says %s..; the file was "
                                  "changed after the bundle was made (re-export it)"
                                  % (self.path, name, actual[:12], expected[:12]))
        for name in (MODEL_FILE, SPEC_FILE):
            if name not in self.manifest.files:
                raise BundleError("bundle %s: the manifest does not list %s, so it cannot be verified; "
                                  "re-create the bundle with 'jetseg export'" % (self.path, name))
        for name in USED_FILES:
            if name not in self.manifest.files and ((self.path / name).exists() or (self.path / name).is_symlink()):
                raise BundleError("bundle %s: %s is not listed in the manifest, so jetseg will not use it; remove "
                                  "it, or re-create the bundle with 'jetseg export'" % (self.path, name))

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
                     spec.output.name, spec.output_shape, extra_io(spec.registration, spec.input_shape))

    def __repr__(self) -> str:
        return "Bundle(%r, precision=%r)" % (str(self.path), self.precision)


def check_shapes(where: str, inputs: Dict[str, Any], outputs: Dict[str, Any], input_name: str,
                 input_shape: Any, output_name: str, output_shape: Any, extra: Sequence[Any] = ()) -> None:
    """Compare a model's input/output names and shapes (ints; a name or None: dynamic; the batch is not compared)
    with the spec's and the task's ``extra`` (:func:`jetseg.tasks.extra_io`); raise BundleError."""
    for kind, name, expected, field, fields in [
            ("input", input_name, input_shape, "input.name", "input.channels and input.size"),
            ("output", output_name, output_shape, "output.name", "output.kind and classes")] + [
            (k, n, s, f, "input.channels and input.size") for k, n, s, f in extra]:
        found = inputs if kind == "input" else outputs
        if name not in found:
            raise BundleError("bundle %s: spec.yaml names %s %r but model.onnx has %ss %s; fix %s in "
                              "spec.yaml or re-export the model" % (where, kind, name, kind, sorted(found), field))
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


#: Folders this process is writing right now (temporary siblings of an --out, an --out's previous content while
#: it is being replaced, staged bundles): what a SIGTERM handler may remove, and nothing else.
_IN_PROGRESS: Set[Path] = set()


def in_progress() -> List[Path]:
    """The temporary folders :func:`writing` and :func:`staged_bundle` have made in this process and not yet
    renamed or removed: the exact
    paths an interrupted command removes (never a name pattern, which could match a user's folder)."""
    return sorted(_IN_PROGRESS)


def uri_path(uri: Optional[str]) -> Optional[Path]:
    """The local file or folder behind a source URI or path (``dicom://x.dcm`` -> ``x.dcm``), if there is one:
    an input that an ``--out`` may not replace."""
    if not uri:
        return None
    rest = uri.split("://", 1)[1].split("?")[0] if "://" in uri else uri
    return Path(rest) if rest and Path(rest).exists() else None


def check_out(out: PathLike, overwrite: bool = False, inputs: Sequence[Optional[PathLike]] = ()) -> Path:
    """The one rule for every command that writes an ``--out`` folder; raises JetsegError (one line).

    ``out`` may not be the working folder or one above it, an input or a folder holding one; if it exists it
    must be replaced (``overwrite``) and may be replaced only if jetseg wrote it (:data:`OUTPUT_MARKER`).
    Returns ``out`` as a Path.
    """
    out = Path(out)
    target = out.resolve()
    here = Path.cwd().resolve()
    if target == here or target in here.parents:
        raise JetsegError("--out %s is the working folder or one above it; give a new folder such as ./%s-out"
                          % (out, target.name or "jetseg"))
    for item in inputs:
        if item is None:
            continue
        source = Path(item).resolve()
        if target == source or target in source.parents:
            raise JetsegError("--out %s is or holds an input (%s); write elsewhere" % (out, item))
    if not out.exists() and not out.is_symlink():
        return out
    if not overwrite:
        raise JetsegError("%s already exists; choose another --out or pass --overwrite (it replaces only a "
                          "folder jetseg wrote)" % out)
    if out.is_symlink() or not out.is_dir() or not (out / OUTPUT_MARKER).is_file():
        what = "a symbolic link" if out.is_symlink() else "a folder" if out.is_dir() else "a file"
        raise JetsegError("--overwrite replaces only a folder jetseg wrote (it holds %s); %s is %s jetseg did not "
                          "write, so it is left alone: choose another --out" % (OUTPUT_MARKER, out, what))
    return out


@contextlib.contextmanager
def writing(out: PathLike, overwrite: bool = False, inputs: Sequence[Optional[PathLike]] = (),
            derived: bool = False) -> Iterator[Path]:
    """Yield a temporary directory next to ``out``; on success it replaces ``out``, on failure it is removed.

    ``out`` is checked first by :func:`check_out` (``inputs``: what the command reads, never replaced). The
    folder written holds :data:`OUTPUT_MARKER`, so a later ``--overwrite`` may replace it.

    Args:
        derived: ``out`` is a path jetseg derives itself inside a folder it owns, not a user's ``--out``
            (``engines/<device-key>/`` of a bundle): replaced when ``overwrite`` is set, without a marker.
    """
    out = Path(out)
    if not derived:
        check_out(out, overwrite, inputs)
    elif out.exists() and not overwrite:
        raise JetsegError("%s already exists" % out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = _make_dir_like_mkdir(out.parent, "." + out.name + ".")
        if not derived:
            (tmp / OUTPUT_MARKER).write_text("written by jetseg; 'jetseg ... --overwrite' may replace this "
                                             "folder\n", encoding="utf-8")
    except OSError as exc:
        raise JetsegError("cannot write %s (%s); choose another --out" % (out, exc.strerror or exc)) from None
    _IN_PROGRESS.add(tmp)
    try:
        yield tmp
        if out.exists():
            _replace(out, tmp)
        else:
            os.rename(str(tmp), str(out))
    except BaseException:
        shutil.rmtree(str(tmp), ignore_errors=True)
        raise
    finally:
        _IN_PROGRESS.discard(tmp)


def _replace(out: Path, tmp: Path) -> None:
    """Rename ``tmp`` to ``out`` (a folder jetseg wrote), keeping the previous ``out`` until that succeeded; the
    previous content goes into a new uniquely named folder, so no other path is touched."""
    old = _make_dir_like_mkdir(out.parent, "." + out.name + ".old-")
    try:
        os.rename(str(out), str(old / out.name))
        try:
            os.rename(str(tmp), str(out))
        except OSError:
            os.rename(str(old / out.name), str(out))
            raise
    except BaseException:
        if not any(old.iterdir()):  # the previous content is back in place
            os.rmdir(str(old))
        raise
    _IN_PROGRESS.add(old)
    try:
        shutil.rmtree(str(old))
    except OSError as exc:
        log.warning("wrote %s, but could not remove its previous content in %s (%s); remove it by hand",
                    out, old, exc.strerror or exc)
    finally:
        _IN_PROGRESS.discard(old)


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
    """Hash every file under ``directory`` (except engines/, the manifest and the output marker) into
    manifest.json."""
    directory = Path(directory)
    skip = set(exclude or [])
    files = {}
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if (path.is_file() and rel not in (MANIFEST_FILE, OUTPUT_MARKER) and not rel.startswith(ENGINES_DIR + "/")
                and rel not in skip):
            files[rel] = sha256_file(path)
    manifest = ManifestRecord(
        files=files, precision=precision,
        created=datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        versions=versions(), provenance=provenance or {})
    manifest.write(directory)
    return manifest


def save_bundle(out: PathLike, model: Union[bytes, PathLike], spec: Spec, precision: str = "fp32",
                extra_files: Optional[Dict[str, Union[bytes, PathLike]]] = None,
                provenance: Optional[Dict[str, Any]] = None, overwrite: bool = False,
                inputs: Sequence[Optional[PathLike]] = ()) -> Bundle:
    """Write a complete bundle atomically and return it (verified).

    Args:
        out: bundle directory to create.
        model: ONNX model bytes, or the path of an ONNX file to copy.
        spec: the model's spec.
        extra_files: more files, name -> bytes or source path (``weights.pt``, ``calibration.json``, ...).
        provenance: how the bundle was made (command line, data hashes, ...), stored in the manifest.
        overwrite, inputs: see :func:`check_out`.
    """
    with writing(out, overwrite=overwrite, inputs=inputs) as tmp:
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
        Bundle(tmp)  # verified before it takes the name: a bundle that does not open is never left at ``out``
    return Bundle(out)


@contextlib.contextmanager
def staged_bundle(model: Union[bytes, PathLike], spec: Spec, precision: str = "fp32",
                  extra_files: Optional[Dict[str, Union[bytes, PathLike]]] = None,
                  provenance: Optional[Dict[str, Any]] = None, parent: Optional[PathLike] = None,
                  prefix: str = "jetseg-stage-") -> Iterator[Bundle]:
    """A throw-away bundle around a candidate model, in a new temporary folder ``prefix*`` (in ``parent``, else
    the system's), removed on any exit (Ctrl-C included): the candidate runs through the runner layer exactly
    as calibrate, run and bench will run it (the calibration gate's candidates, a trained or distilled model's
    held-out score). The one way jetseg stages a bundle."""
    if parent is not None:
        Path(parent).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=prefix, dir=None if parent is None else str(parent)) as tmp:
        _IN_PROGRESS.add(Path(tmp))
        try:
            yield save_bundle(Path(tmp) / "bundle", model, spec, precision=precision, extra_files=extra_files,
                              provenance=provenance)
        finally:
            _IN_PROGRESS.discard(Path(tmp))


def command_line() -> str:
    """The command that is running, shell-quoted so that it can be pasted (URIs contain '&'): the one rendering
    for manifests, build records, bench conditions and model cards."""
    return " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).name] + sys.argv[1:])

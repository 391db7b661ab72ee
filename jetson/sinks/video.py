"""``file://out.mp4``: records the overlay video so that it plays in a browser.

Frames go as raw BGR over a pipe to an ``ffmpeg`` subprocess (H.264 ``libx264``, ``yuv420p``,
``+faststart``) writing a hidden temporary file next to the target; ``close()`` finalises it and renames it
to the target name, so the target never holds a half-written file. Without ffmpeg (or without libx264 in
it) OpenCV's ``VideoWriter`` (``mp4v``) records instead, which players handle but browsers do not.

Options: ``fps=`` (default: the source's rate, else 30), ``roi=1`` records the ROI only (no burned-in
patient text around the image), ``pair=1`` records the input frame and the output side by side, ``crf=`` and ``preset=`` (libx264 quality and speed, default 23 and
``veryfast``), ``encoder=auto|ffmpeg|opencv``. The target may contain ``strftime`` fields
(``file://rec-%Y%m%d-%H%M%S.mp4``), expanded at ``open()``. An existing recording is never replaced: if
the name is taken (an earlier run, or the segment before a config reload reopened the sinks), the sink
records to the next free segment name, ``out.mp4`` -> ``out-001.mp4``, ``out-002.mp4``, ... The target's
folder is checked for writability at ``open()``.
The picture size is fixed by the first frame. When it changes (a folder of files of several sizes, a new
ROI after a reconnection: with ``roi=1`` the picture is the ROI), the sink finishes the segment it was
recording and goes on in the next free segment name (``out.mp4`` -> ``out-001.mp4``) at the new size,
with one INFO line saying so: pictures are never squashed or stretched to another size.

Real time: from a live source (frames dropped when the pipeline is behind, gaps while reconnecting) each
frame is placed by its capture time (``stamps["captured"]``), repeating the previous frame over the gaps,
so that 20 s of stream is 20 s of video. Frames of a file source are all recorded, one after the other, at
the file's rate.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any, List, Optional, Tuple

import numpy as np

from jetseg.errors import SinkError
from jetseg.jetson.sinks.base import Sink, SinkContext
from jetseg.jetson.sinks.recordings import fragment_frames, free_segment, recover_partials
from jetseg.optional import require

log = logging.getLogger("jetseg.sinks.video")

SUFFIXES = {".mp4": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}  # suffix -> OpenCV fourcc
ENCODERS = ("auto", "ffmpeg", "opencv")
DEFAULT_FPS = 30.0
#: How long close() waits for ffmpeg to finish the file (the +faststart pass rewrites it once).
FINISH_TIMEOUT_S = 120.0
#: ffmpeg's -movflags for .mp4/.mov: fragmented MP4 (index first, one fragment per keyframe, 1 s apart).
FRAGMENTED = "+frag_keyframe+empty_moov+default_base_moof"
MAX_GAP_FILL_S = 60.0  # longest stream gap a live recording fills with the last picture
_X264: Optional[bool] = None


def ffmpeg_has_x264(ffmpeg: str) -> bool:
    """True when ``ffmpeg`` lists the libx264 encoder (checked once per process)."""
    global _X264
    if _X264 is None:
        try:
            out = subprocess.run([ffmpeg, "-hide_banner", "-encoders"], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, timeout=30, check=False).stdout
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("cannot run %s (%s); recording with OpenCV instead", ffmpeg, exc)
            out = b""
        _X264 = b"libx264" in out
    return _X264


class VideoFileSink(Sink):
    """Overlay video recorder. ``write()`` blocks while the encoder is busy (the pipeline's queue absorbs it)."""

    blocking_ok = True

    kind = "file"

    def __init__(self, uri: str, **options: Any) -> None:
        super().__init__(uri)
        opts = self.read_options(options)
        self.fps_option = opts.number("fps", None, positive=True)
        self.roi = opts.flag("roi", None)
        self.pair = opts.flag("pair", False)  # input | output side by side
        self.crf = opts.integer("crf", 23, minimum=0, maximum=51)
        self.preset = opts.text("preset", "veryfast")
        self.encoder_choice = opts.choice("encoder", ENCODERS, "auto")
        opts.done()
        if not uri:
            raise SinkError("file:// needs a file name, for example file://out.mp4")
        if Path(uri).suffix.lower() not in SUFFIXES:
            raise SinkError("file://%s: cannot record to a %r file; expected a name ending in %s"
                            % (uri, Path(uri).suffix, ", ".join(sorted(SUFFIXES))))
        self.path = Path(uri)
        self.segments: List[Path] = []  # the files finished so far (one more per picture size change)
        self._base = self.path  # the target name segments are numbered from
        self._segment_written = 0
        self.tmp_path: Optional[Path] = None
        self.encoder = ""
        self.size: Optional[Tuple[int, int]] = None  # (width, height) fixed by the first frame
        self.fps = DEFAULT_FPS
        self.roi_only = False
        self._proc: Optional[subprocess.Popen] = None
        self._errlog: Optional[IO[bytes]] = None
        self._writer: Any = None
        self._cv2: Any = None
        self._lock = threading.Lock()
        self._failed = False
        self._encoder_stopped = False
        self.live = False
        self._t0: Optional[float] = None
        self.video_frames = 0  # frames in the video (repeats over gaps included)
        self._previous: Optional[np.ndarray] = None  # the last picture written (fills gaps of a live stream)

    @property
    def target(self) -> Optional[str]:
        """The file this sink records to, its ``strftime`` fields expanded (``t-%Y.mp4`` and ``t-2026.mp4`` are
        one target)."""
        return str(self._expanded().resolve())

    def _expanded(self) -> Path:
        return Path(time.strftime(str(Path(self.uri).expanduser())))

    # ------------------------------------------------------------------ lifecycle
    def _open(self, context: SinkContext) -> None:
        self.fps = float(self.fps_option or context.fps or DEFAULT_FPS)
        self.roi_only = context.roi_only if self.roi is None else self.roi
        self.live = bool(context.live)
        self._t0, self.video_frames, self._previous = None, 0, None
        self.path = self._expanded()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=str(self.path.parent), prefix=".jetseg-probe-")
            probe.close()
        except OSError as exc:
            raise SinkError("cannot record to %s: %s; choose a writable folder"
                            % (self.path, exc.strerror or exc)) from None
        recover_partials(self.path)
        self._base, self.segments = self.path, []
        self._begin_segment()
        self._cv2 = require("cv2", "recording video")
        ffmpeg = shutil.which("ffmpeg")
        choice = self.encoder_choice
        if choice == "ffmpeg" and ffmpeg is None:
            raise SinkError("file:// encoder=ffmpeg was asked for but ffmpeg is not installed; "
                            "install it (apt-get install ffmpeg) or use encoder=opencv")
        if choice != "opencv" and ffmpeg is not None and ffmpeg_has_x264(ffmpeg):
            self.encoder = "ffmpeg"
        elif choice == "ffmpeg":
            raise SinkError("file:// encoder=ffmpeg was asked for but %s has no libx264 encoder; install an "
                            "ffmpeg with libx264 or use encoder=opencv" % ffmpeg)
        else:
            if choice == "auto":
                log.warning("ffmpeg with libx264 not found: recording %s with OpenCV (mp4v), which browsers "
                            "do not play; install ffmpeg for H.264", self.path)
            self.encoder = "opencv"
        log.info("recording %s (%s, %.3g fps%s)", self.path, self.encoder, self.fps,
                 ", ROI only" if self.roi_only else "")

    def _begin_segment(self) -> None:
        """Name the next file: the target, or its first free segment name; its partial file beside it."""
        self.path = free_segment(self._base)
        self.tmp_path = self.path.with_name(".%s.%d.partial%s" % (self.path.stem, os.getpid(), self.path.suffix))
        self._segment_written = 0

    def _copies(self, result: Any) -> int:
        """How many video frames this result fills: 1 for a file source; for a live one, up to its capture
        time (0 when it arrives faster than the recording's rate)."""
        if not self.live:
            return 1
        stamp = float(result.stamps.get("captured", result.frame.timestamp))
        if self._t0 is None:
            self._t0 = stamp
        slot = int(round((stamp - self._t0) * self.fps))
        return max(0, slot + 1 - self.video_frames)

    def _write(self, result: Any) -> None:
        copies = self._copies(result)
        if copies == 0:
            return
        image = result.overlay(roi_only=self.roi_only, pair=self.pair)
        with self._lock:
            if self._failed or self.tmp_path is None:
                raise SinkError("file://%s is not recording (%s)" % (
                    self.path, "it failed earlier" if self._failed else "it was closed"))
            if self._encoder_stopped:
                return  # ffmpeg was stopped by a signal and has finished the file; close() keeps it
            if self.size is None:
                self.size = (int(image.shape[1]), int(image.shape[0]))
                self._start()
            if (image.shape[1], image.shape[0]) != self.size:
                self._next_segment((int(image.shape[1]), int(image.shape[0])))
                copies = 1
            image = np.ascontiguousarray(image)
            # a gap in a live stream is filled with the previous picture (what the screen showed), for at most
            # MAX_GAP_FILL_S: a longer outage is shortened in the recording rather than stall this thread
            previous = self._previous if self._previous is not None else image
            fill = min(copies - 1, int(MAX_GAP_FILL_S * self.fps))
            if fill < copies - 1:
                log.warning("file://%s: a %.0f s gap in the stream is recorded as %.0f s", self.path,
                            (copies - 1) / self.fps, MAX_GAP_FILL_S)
                self._t0 = (self._t0 or 0.0) + (copies - 1 - fill) / self.fps
            for frame in [previous] * fill + [image]:
                if self.encoder == "ffmpeg":
                    self._pipe(frame)
                    if self._encoder_stopped:
                        return
                else:
                    self._writer.write(frame)
                self.video_frames += 1
            self._previous = image
            self.written += 1
            self._segment_written += 1

    def _next_segment(self, size: Tuple[int, int]) -> None:
        """The picture size changed: finish this file, start the next segment at ``size`` (lock held)."""
        old, finished = self.size, self.path
        try:
            self._finish_segment()
        except BaseException:
            self._failed = True  # later writes say so; close() has nothing left to finish
            raise
        self._begin_segment()
        log.info("file://%s: the picture changed from %dx%d to %dx%d (%s); %s is finished, recording on in %s",
                 self._base, old[0] if old else 0, old[1] if old else 0, size[0], size[1],
                 "the ROI changed" if self.roi_only else "the frame size changed", finished.name, self.path.name,
                 extra={"fields": {"event": "recording_segment", "segment": str(self.path),
                                   "size": list(size)}})
        self.size = size
        self._t0, self.video_frames, self._previous = None, 0, None
        self._start()

    def _finish_segment(self) -> None:
        """Finish the current file and give it its name; on failure remove the partial file and raise
        SinkError."""
        assert self.tmp_path is not None
        try:
            if self.size is None:
                log.warning("no frames reached %s; nothing recorded", self.path)
            elif self.encoder == "ffmpeg":
                self._finish_ffmpeg()
            else:
                self._writer.release()
                self._writer = None
            if self.size is not None:
                if not self.tmp_path.exists() or self.tmp_path.stat().st_size == 0:
                    raise SinkError("the encoder left no video for %s" % self.path)
                os.replace(str(self.tmp_path), str(self.path))
                self.segments.append(self.path)
                # the file holds video_frames pictures: each result once, plus repeats over a live stream's gaps
                log.info("recorded %d video frames to %s (%d results%s)", self.video_frames, self.path,
                         self._segment_written, ", %d repeated over gaps" % (self.video_frames - self._segment_written)
                         if self.video_frames > self._segment_written else "")
        except BaseException:
            self._salvage()
            raise
        finally:
            self.tmp_path = None
            if self._errlog is not None:
                self._errlog.close()
                self._errlog = None

    def _close(self) -> None:
        """Finish the file and give it its name; on failure remove the partial file and raise SinkError."""
        with self._lock:
            if self.tmp_path is None:
                return
            if self._failed:  # write() raised already and removed the partial file
                self.tmp_path = None
                if self._errlog is not None:
                    self._errlog.close()
                    self._errlog = None
                return
            self._finish_segment()

    # ------------------------------------------------------------------ encoders
    def _start(self) -> None:
        assert self.tmp_path is not None
        width, height = self.size or (0, 0)
        if self.encoder == "opencv":
            fourcc = self._cv2.VideoWriter_fourcc(*SUFFIXES[self.path.suffix.lower()])
            self._writer = self._cv2.VideoWriter(str(self.tmp_path), fourcc, self.fps, (width, height))
            if not self._writer.isOpened():
                self._failed = True
                raise SinkError("OpenCV cannot record %s (%dx%d); install ffmpeg" % (self.path, width, height))
            return
        self._errlog = tempfile.TemporaryFile()
        try:
            # A session of its own: Ctrl+C in a terminal must not stop the encoder before close() finishes it.
            self._proc = subprocess.Popen(self._command(width, height), stdin=subprocess.PIPE,
                                          stdout=subprocess.DEVNULL, stderr=self._errlog, start_new_session=True)
        except OSError as exc:
            self._failed = True
            raise SinkError("cannot start ffmpeg to record %s: %s" % (self.path, exc)) from None

    def _command(self, width: int, height: int) -> List[str]:
        cmd = ["ffmpeg", "-hide_banner", "-nostats", "-loglevel", "error",
               "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", "%dx%d" % (width, height), "-r", "%g" % self.fps,
               "-i", "pipe:0", "-an",
               # yuv420p needs even sizes: pad odd ones by one black row/column
               "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
               "-c:v", "libx264", "-preset", self.preset, "-crf", str(self.crf),
               "-pix_fmt", "yuv420p"]
        if self.path.suffix.lower() in (".mp4", ".mov"):
            # fragmented: the index comes first and every second of video is a complete fragment, so a file
            # cut short (full disk, killed encoder, power loss) plays up to its last complete second
            cmd += ["-g", str(max(1, int(round(self.fps)))), "-movflags", FRAGMENTED]
        return cmd + ["-y", str(self.tmp_path)]

    def _pipe(self, image: np.ndarray) -> None:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        try:
            proc.stdin.write(image.tobytes())
        except (BrokenPipeError, OSError):
            code = proc.poll()
            if code is None:
                try:
                    code = proc.wait(timeout=FINISH_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    code = None
            if code == 255:
                # ffmpeg got SIGTERM/SIGINT itself (e.g. systemd signalling the whole service): it has
                # finished the file it had; keep that, drop the rest.
                self._encoder_stopped = True
                log.warning("ffmpeg was stopped by a signal; %s ends at frame %d", self.path, self.written)
                return
            self._failed = True
            message = "ffmpeg stopped while recording %s (exit code %s): %s" % (self.path, code, self._stderr())
            kept = self._salvage()
            raise SinkError(message + ("; kept the frames finished before it in %s" % kept if kept
                                       else "; nothing could be kept")) from None

    def _finish_ffmpeg(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        try:
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            log.debug("ffmpeg's input was already closed")
        try:
            code = proc.wait(timeout=FINISH_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise SinkError("ffmpeg did not finish %s within %.0f s" % (self.path, FINISH_TIMEOUT_S)) from None
        self._proc = None
        if code == 255 and not self._encoder_stopped:
            log.warning("ffmpeg was stopped by a signal before the end of %s; keeping what it finished", self.path)
        elif code not in (0, 255):  # 255: ffmpeg was signalled and finished the file itself
            raise SinkError("ffmpeg failed to finish %s (exit code %s): %s" % (self.path, code, self._stderr()))

    def _stderr(self) -> str:
        if self._errlog is None:
            return "no output"
        self._errlog.seek(0)
        lines = [ln for ln in self._errlog.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        return lines[-1].strip() if lines else "no output"

    def _salvage(self) -> Optional[Path]:
        """After an encoder failure: stop it and keep what it finished under the next free segment name (a
        fragmented MP4 with at least one complete fragment), else remove the partial file; the results written
        to the encoder that are not in a kept frame count as lost. Returns the kept file, or None."""
        tmp = self.tmp_path
        keep = tmp is not None and self.encoder == "ffmpeg" and self.path.suffix.lower() in (".mp4", ".mov")
        self.tmp_path = None  # _abort() leaves the partial file alone
        try:
            self._abort()
        finally:
            self.tmp_path = tmp
        frames = fragment_frames(tmp) if keep and tmp is not None else 0
        # results behind the frames not kept (a live recording repeats frames over gaps: scale by its ratio)
        self.lost = self.written - int(round(min(frames, self.video_frames) * self.written / max(1, self.video_frames)))
        if frames:
            assert tmp is not None
            kept = free_segment(self.path)
            os.replace(str(tmp), str(kept))
            log.warning("the encoder of %s failed; kept the %d frames it finished in %s (%d results lost)",
                        self.path, frames, kept, self.lost)
            return kept
        if tmp is not None and tmp.exists():
            tmp.unlink()
        return None

    def _abort(self) -> None:
        """Stop the encoder and remove the partial file (never leaves a broken file under the target name)."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            if self._proc.stdin is not None:
                try:
                    self._proc.stdin.close()
                except OSError:
                    log.debug("ffmpeg's input was already closed")
            self._proc = None
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self.tmp_path is not None and self.tmp_path.exists():
            self.tmp_path.unlink()

#!/usr/bin/python3
"""A real RTSP server for vigil's tests: GStreamer's GstRtspServer on 127.0.0.1.

    /usr/bin/python3 scripts/testbed/rtsp_server.py --port 0 --mount /cam1=clip.mp4 [--loop]

Prints "ready port=N" on stdout once it listens (port 0 picks a free one). Exits when its stdin
closes, so a test process that dies never leaves a server behind.

Without --loop every client gets the file from its start, once, as its own session (tests then know
which frame comes when). H.264 is sent as it is in the file; other codecs (the shared clips are
MPEG-4 Part 2, which cameras do not send) are decoded and re-encoded to H.264.

With --loop each mount is one live "camera": a producer pipeline decodes the file at real speed and
loops it with segment seeks (no flush, so time keeps running), and every client sees the same
current frame, re-encoded to H.264 (x264, zerolatency). Clients joining late start at a key frame
within a second. Restarting the file in the RTSP pipeline itself (seek on EOS) resets the running
time and RTP timestamps, which clients see as a broken stream; a separate producer avoids that.

Both TCP (interleaved) and UDP transports are offered.
"""

import argparse
import os
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstPbutils", "1.0")
gi.require_version("GstRtsp", "1.0")
from gi.repository import GLib, Gst, GstPbutils, GstRtsp, GstRtspServer  # noqa: E402

DEMUXERS = {".mp4": "qtdemux", ".mov": "qtdemux", ".m4v": "qtdemux",
            ".mkv": "matroskademux", ".webm": "matroskademux", ".ts": "tsdemux"}


def fail(message):
    print(f"rtsp_server: {message}", file=sys.stderr, flush=True)
    # os._exit: sys.exit inside a GLib callback would only print a traceback.
    os._exit(1)


def quote(path):
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def probe(path):
    """The first video stream's caps and frame rate (fps, at least 1)."""
    try:
        info = GstPbutils.Discoverer.new(10 * Gst.SECOND).discover_uri(Gst.filename_to_uri(path))
    except GLib.Error as error:
        fail(f"cannot read {path}: {error.message}")
    streams = info.get_video_streams()
    if not streams:
        fail(f"{path} has no video stream")
    video = streams[0]
    numerator, denominator = video.get_framerate_num(), video.get_framerate_denom()
    fps = round(numerator / denominator) if numerator and denominator else 25
    return video.get_caps(), max(fps, 1)


def demuxed_video(path):
    demuxer = DEMUXERS.get(os.path.splitext(path)[1].lower())
    if demuxer is None:
        fail(f"{path}: unknown container (known: {', '.join(sorted(DEMUXERS))})")
    return f"filesrc location={quote(path)} ! {demuxer} name=demux demux.video_0 ! queue"


def encoder(fps):
    # A key frame every second: a client that joins, or reconnects, decodes within a second.
    # One thread: zerolatency's sliced threads made ffmpeg split frames in two over RTP and report
    # corrupt frames.
    return (f"x264enc tune=zerolatency speed-preset=ultrafast threads=1 key-int-max={fps} "
            "! video/x-h264,profile=constrained-baseline ! h264parse "
            "! rtph264pay name=pay0 pt=96 config-interval=-1")


def once_launch(path):
    caps, fps = probe(path)
    if caps.get_structure(0).get_name() == "video/x-h264":
        return (f"( {demuxed_video(path)} ! h264parse config-interval=-1 "
                "! rtph264pay name=pay0 pt=96 config-interval=-1 )")
    return f"( {demuxed_video(path)} ! decodebin ! videoconvert ! {encoder(fps)} )"


class LoopingCamera:
    """Decodes a file forever at real speed and hands each frame to the clients' appsrcs."""

    def __init__(self, path):
        self.path = path
        _, self.fps = probe(path)
        self.lock = threading.Lock()
        self.sources = []
        self.offsets = {}
        self.caps = None
        self.pipeline = Gst.parse_launch(
            f"{demuxed_video(path)} ! decodebin ! videoconvert ! video/x-raw,format=I420 "
            "! appsink name=sink sync=true max-buffers=2 drop=true emit-signals=true")
        self.pipeline.get_by_name("sink").connect("new-sample", self.on_sample)
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self.on_message)

    def start(self):
        self.pipeline.set_state(Gst.State.PAUSED)
        result, _, _ = self.pipeline.get_state(10 * Gst.SECOND)
        if result == Gst.StateChangeReturn.FAILURE:
            fail(f"cannot decode {self.path}")
        sink_pad = self.pipeline.get_by_name("sink").get_static_pad("sink")
        self.caps = sink_pad.get_current_caps()
        # A flushing segment seek first; later ones (on SEGMENT_DONE) do not flush, so the
        # running time goes on across loops.
        self.pipeline.seek(1.0, Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.SEGMENT,
                           Gst.SeekType.SET, 0, Gst.SeekType.NONE, -1)
        self.pipeline.set_state(Gst.State.PLAYING)

    def on_message(self, _bus, message):
        if message.type == Gst.MessageType.SEGMENT_DONE:
            self.pipeline.seek(1.0, Gst.Format.TIME, Gst.SeekFlags.SEGMENT,
                               Gst.SeekType.SET, 0, Gst.SeekType.NONE, -1)
        elif message.type == Gst.MessageType.ERROR:
            error, _ = message.parse_error()
            fail(f"{self.path}: {error.message}")

    def on_sample(self, sink):
        sample = sink.emit("pull-sample")
        if sample is None:
            return Gst.FlowReturn.OK
        with self.lock:
            sources = list(self.sources)
        original = sample.get_buffer()
        running_time = sample.get_segment().to_running_time(Gst.Format.TIME, original.pts)
        for source in sources:
            buffer = original.copy()
            buffer.dts = Gst.CLOCK_TIME_NONE
            # The producer's running time moved into the client pipeline's: frames keep the
            # file's exact spacing. Before that pipeline has a clock, appsrc's do-timestamp stamps.
            offset = self.offset(source, running_time)
            buffer.pts = Gst.CLOCK_TIME_NONE if offset is None else running_time + offset
            source.emit("push-buffer", buffer)
        return Gst.FlowReturn.OK

    def offset(self, source, running_time):
        with self.lock:
            if source in self.offsets:
                return self.offsets[source]
            clock = source.get_clock()
            if clock is None or running_time == Gst.CLOCK_TIME_NONE:
                return None
            offset = clock.get_time() - source.get_base_time() - running_time
            self.offsets[source] = offset
            return offset

    def launch(self):
        return ("( appsrc name=camera is-live=true format=time do-timestamp=true "
                "leaky-type=downstream max-buffers=3 ! videoconvert ! " + encoder(self.fps) + " )")

    def attach(self, media):
        source = media.get_element().get_by_name("camera")
        source.set_property("caps", self.caps)
        with self.lock:
            self.sources.append(source)

        def detach(_media):
            with self.lock:
                if source in self.sources:
                    self.sources.remove(source)
                self.offsets.pop(source, None)

        media.connect("unprepared", detach)


def parse_mount(text):
    mount, separator, path = text.partition("=")
    if not separator or not mount.startswith("/") or not path:
        raise argparse.ArgumentTypeError(f"expected /name=FILE, got {text!r}")
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise argparse.ArgumentTypeError(f"no such file: {path}")
    return mount, path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--mount", type=parse_mount, action="append", required=True,
                        help="/name=FILE, repeatable")
    parser.add_argument("--loop", action="store_true", help="serve each file as a live looping camera")
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)
    server.set_service(str(args.port))
    cameras = []
    for mount, path in args.mount:
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP | GstRtsp.RTSPLowerTrans.UDP)
        if args.loop:
            camera = LoopingCamera(path)
            cameras.append(camera)
            factory.set_launch(camera.launch())
            factory.set_shared(True)
            factory.connect("media-configure", lambda _f, media, c=camera: c.attach(media))
        else:
            factory.set_launch(once_launch(path))
            factory.set_shared(False)
        server.get_mount_points().add_factory(mount, factory)
    for camera in cameras:
        camera.start()

    loop = GLib.MainLoop()
    # Removes sessions whose clients vanished without TEARDOWN (killed readers).
    GLib.timeout_add_seconds(2, lambda: server.get_session_pool().cleanup() >= 0)
    port = server.get_bound_port() if server.attach(None) else -1
    if port <= 0:
        fail(f"cannot listen on {args.address}:{args.port}")

    def on_stdin(source, _condition):
        if not os.read(source, 4096):
            loop.quit()
            return False
        return True

    GLib.io_add_watch(sys.stdin.fileno(), GLib.IO_IN | GLib.IO_HUP | GLib.IO_ERR, on_stdin)
    print(f"ready port={port}", flush=True)
    loop.run()


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""
An RTSP test camera: GStreamer's RTSP server (Debian gir1.2-gst-rtsp-server-1.0, through its
Python bindings) serving a live test pattern at rtsp://127.0.0.1:<port>/test, encoded like a
camera (H.264 main or H.265, 25 fps, keyframe every second, parameter sets in band).
Usage: /usr/bin/python3 rtsp_server.py <port> [h264|h265] [width] [height]
Prints READY once listening; exits when its parent dies (stdin closes).
"""
import sys
import threading

import gi

gi.require_version('Gst', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
port = sys.argv[1]
codec = sys.argv[2] if len(sys.argv) > 2 else 'h264'
width = sys.argv[3] if len(sys.argv) > 3 else '320'
height = sys.argv[4] if len(sys.argv) > 4 else '240'
raw = f'videotestsrc is-live=true pattern=smpte ! video/x-raw,width={width},height={height},framerate=25/1'
if codec == 'h265':
    enc = 'x265enc tune=zerolatency speed-preset=ultrafast key-int-max=25 bitrate=500 ! rtph265pay name=pay0 pt=96 config-interval=1'
else:
    enc = 'x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 bitrate=500 ! video/x-h264,profile=main ! rtph264pay name=pay0 pt=96 config-interval=1'

server = GstRtspServer.RTSPServer()
server.set_address('127.0.0.1')
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(f'( {raw} ! {enc} )')
factory.set_shared(True)
server.get_mount_points().add_factory('/test', factory)
if server.attach(None) == 0:
    print('FAILED to listen', flush=True)
    sys.exit(1)
loop = GLib.MainLoop()


def watch_parent():
    sys.stdin.read()  # EOF when the test process goes away
    loop.quit()


threading.Thread(target=watch_parent, daemon=True).start()
print('READY', flush=True)
loop.run()

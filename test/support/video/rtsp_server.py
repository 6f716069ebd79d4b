#!/usr/bin/python3
"""
An RTSP test camera: GStreamer's RTSP server (Debian gir1.2-gst-rtsp-server-1.0, through its
Python bindings) serving a live test pattern at rtsp://127.0.0.1:<port>/test, encoded like a
camera (H.264 main or H.265, 25 fps, keyframe every second, parameter sets in band).
Usage: /usr/bin/python3 rtsp_server.py <port> [h264|h265] [width] [height]
Environment (optional):
  RTSP_AUTH=user:password  the camera asks for RTSP digest auth (RFC 2617), as real cameras do;
  RTSP_RECORDING_SECONDS=N also serves a 'recording' of N seconds at /Streaming/tracks/101 and
                           /cam/playback (Hikvision / Dahua NVR playback paths) that ends by itself.
Prints READY once listening, and 'REQUEST <method> <uri>' for each request (tests read the
playback URL's time range from it); exits when its parent dies (stdin closes).
"""
import sys
import threading

import gi

gi.require_version('Gst', '1.0')
gi.require_version('GstRtspServer', '1.0')
import os  # noqa: E402

gi.require_version('GstRtsp', '1.0')
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

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

recording = int(os.environ.get('RTSP_RECORDING_SECONDS', '0'))
if recording > 0:
    # A finite stream, as an NVR's playback of a closed range: N seconds, then end of stream (RTCP BYE).
    frames = recording * 25
    rec_raw = f'videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,width={width},height={height},framerate=25/1'
    for path in ('/Streaming/tracks/101', '/cam/playback'):
        rec = GstRtspServer.RTSPMediaFactory()
        rec.set_launch(f'( {rec_raw} ! {enc} )')
        rec.set_shared(False)
        rec.set_eos_shutdown(True)
        server.get_mount_points().add_factory(path, rec)

credentials = os.environ.get('RTSP_AUTH')
if credentials:
    user, password = credentials.split(':', 1)
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string('media.factory.role', 'user')
    auth.add_digest(user, password, token)
    auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
    server.set_auth(auth)
    permissions = GstRtspServer.RTSPPermissions()
    permissions.add_permission_for_role('user', 'media.factory.access', True)
    permissions.add_permission_for_role('user', 'media.factory.construct', True)
    mounts = server.get_mount_points()
    for path in ['/test'] + (['/Streaming/tracks/101', '/cam/playback'] if recording > 0 else []):
        f, _ = mounts.match(path)
        f.set_permissions(permissions)


def on_request(client, ctx, method):
    print(f'REQUEST {method} {ctx.uri.get_request_uri()}', flush=True)


def on_client(_server, client):
    client.connect('describe-request', on_request, 'DESCRIBE')


server.connect('client-connected', on_client)
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

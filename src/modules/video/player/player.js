/* global WebSocket, MediaSource */
/**
 * A small Media Source Extensions player for Shouhu's live video WebSocket (fMP4 over ws):
 * a text `meta` frame gives the codec, the next binary frame is the init segment, then media
 * fragments (starting at a keyframe). Keeps latency low: it jumps to the live edge when more
 * than `maxLatency` seconds are buffered ahead and trims what has been played. A new `meta`
 * (the server restarted its remuxer) rebuilds the MediaSource. An `error` frame ends play.
 *
 * Usage (an ES module, no dependencies; the Vue console can import it as is):
 *   const p = new MsePlayer(videoElement, { onState: (state, detail) => … });
 *   p.play(new URL(ticket.url, location.href.replace(/^http/, 'ws')).href);
 *   p.stop();
 */
export class MsePlayer {
  constructor(video, { onState = () => {}, maxLatency = 1.5, keepSeconds = 20 } = {}) {
    this.video = video;
    this.onState = onState;
    this.maxLatency = maxLatency;
    this.keepSeconds = keepSeconds;
    this.ws = null;
    this.ms = null;
    this.sb = null;
    this.queue = [];
    this.codec = null;
    this.bytes = 0;
    this.fragments = 0;
  }

  play(url) {
    this.stop();
    this.onState('connecting');
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onmessage = (ev) => {
      if (typeof ev.data === 'string') return this.control(JSON.parse(ev.data));
      this.bytes += ev.data.byteLength;
      this.fragments++;
      this.queue.push(ev.data);
      // Bounded: a tab in the background must not queue the stream without limit.
      if (this.queue.length > 500) this.queue.splice(1, this.queue.length - 1);
      this.pump();
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.onState(ev.code >= 4000 ? 'ended' : 'closed', ev.reason || String(ev.code));
    };
  }

  control(msg) {
    if (msg.type === 'meta') {
      this.codec = msg.codec;
      this.reset();
      this.onState('meta', msg);
    } else if (msg.type === 'error') {
      this.onState('error', msg);
    }
  }

  reset() {
    this.queue = [];
    this.sb = null;
    const ms = new MediaSource();
    this.ms = ms;
    if (this.video.src) URL.revokeObjectURL(this.video.src);
    this.video.src = URL.createObjectURL(ms);
    ms.addEventListener('sourceopen', () => {
      if (this.ms !== ms) return;
      const type = `video/mp4; codecs="${this.codec}"`;
      if (!MediaSource.isTypeSupported(type)) return this.onState('error', { code: 'PLAYER.UNSUPPORTED_CODEC', message: type });
      this.sb = ms.addSourceBuffer(type);
      this.sb.mode = 'segments';
      this.sb.addEventListener('updateend', () => this.pump());
      this.pump();
    });
  }

  pump() {
    const sb = this.sb;
    if (!sb || sb.updating || this.ms?.readyState !== 'open') return;
    const v = this.video;
    const b = v.buffered;
    if (b.length) {
      const start = b.start(0);
      const end = b.end(b.length - 1);
      // A late join starts mid-stream: move to the first buffered picture, then keep near the edge.
      if (v.currentTime < start || end - v.currentTime > this.maxLatency) v.currentTime = Math.max(start, end - 0.2);
      if (v.paused) v.play().catch(() => {});
      if (v.currentTime - start > this.keepSeconds + 5) {
        sb.remove(start, v.currentTime - this.keepSeconds);
        return;
      }
    }
    const next = this.queue.shift();
    if (!next) return;
    try {
      sb.appendBuffer(next);
      if (this.fragments > 1) this.onState('playing');
    } catch (e) {
      // QuotaExceeded: drop what we have, the next keyframe fragment starts clean.
      this.queue = [];
      this.onState('error', { code: 'PLAYER.APPEND_FAILED', message: String(e) });
    }
  }

  stop() {
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close();
    }
    this.queue = [];
    this.sb = null;
    this.ms = null;
  }
}

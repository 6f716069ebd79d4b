/* global URLSearchParams, location, document, window */
/**
 * The stand-alone player page (/console/player/#camera=<id>&token=<access token>): asks the API for
 * a stream ticket (POST /api/v1/cameras/:id/stream) and plays it. The hash never reaches the server.
 */
import { MsePlayer } from './player.js';

const params = new URLSearchParams(location.hash.slice(1));
const video = document.getElementById('video');
const status = document.getElementById('status');
const say = (state, text) => {
  status.dataset.state = state;
  status.textContent = text;
  document.body.dataset.player = state;
};

const MESSAGES = {
  'VIDEO.DEVICE_OFFLINE': '设备离线',
  'VIDEO.DEVICE_BUSY': '设备忙',
  'VIDEO.INVITE_TIMEOUT': '设备无应答',
  'VIDEO.NO_MEDIA': '无视频数据',
  'VIDEO.STALLED': '视频中断',
  'VIDEO.NO_STREAM_ADDRESS': '未配置视频流地址',
};

async function start() {
  const camera = params.get('camera');
  const token = params.get('token');
  if (!camera || !token) return say('error', '缺少 camera / token 参数');
  say('connecting', '正在连接…');
  const res = await fetch(`/api/v1/cameras/${encodeURIComponent(camera)}/stream`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) return say('error', MESSAGES[body.error?.code] ?? body.error?.message ?? `HTTP ${res.status}`);
  const player = new MsePlayer(video, {
    onState: (state, detail) => {
      if (state === 'playing') say('playing', `${body.width}×${body.height} · ${body.codec}`);
      else if (state === 'error') say('error', MESSAGES[detail?.code] ?? detail?.message ?? '播放失败');
      else if (state === 'ended' || state === 'closed') say('ended', '已结束');
    },
  });
  window.__player = player;
  player.play(new URL(body.url, location.href.replace(/^http/, 'ws')).href);
}

start().catch((e) => say('error', String(e)));

'use strict';
/*
 * The operators' web console. Plain JS, no framework: one state object, DOM built with
 * textContent only (never innerHTML with data), re-rendered in one animation frame per burst.
 *
 * Delivery: the server sends every console event with a `seq`; we keep the highest seq seen
 * and send it as `auth.lastSeq` on every (re)connect, so we get what we missed (or a snapshot),
 * and drop anything at or below it (dedupe by seq).
 */
/* global AudioContext, sessionStorage, requestAnimationFrame, Node */
(function () {
  const API = '/api/v1';
  const OPEN = ['raised', 'acknowledged', 'dispatched', 'on_scene'];
  const PRIORITY_RANK = { P1: 1, P2: 2, P3: 3, P4: 4 };
  const PATROL_MAX = 50; // patrol findings kept on screen (newest first)
  const $ = (id) => document.getElementById(id);

  const state = {
    lang: localStorage.getItem('shouhu.lang') || 'zh-CN',
    session: JSON.parse(sessionStorage.getItem('shouhu.session') || 'null'),
    user: null,
    conn: 'offline',
    lastSeq: 0,
    incidents: new Map(), // id -> incident summary (open ones, plus the selected one)
    selected: null,
    detail: null,
    devices: null,
    seqs: [], // seqs applied, in order (the browser test reads it)
    sound: false,
    patrol: [], // patrol findings panel entries, newest first (at most PATROL_MAX)
    patrolTotal: 0, // findings received since login (the badge)
  };
  let socket = null;
  let refreshTimer = null;

  // ---------- i18n and formatting ----------
  const t = (key, vars) => {
    const s = (window.I18N[state.lang] || {})[key] ?? window.I18N['zh-CN'][key] ?? key;
    return vars ? s.replace(/\{(\w+)\}/g, (_, k) => String(vars[k])) : s;
  };
  /** t(key), or `fallback` when no language has the key (check names the dictionary does not know yet). */
  const tOr = (key, fallback) => ((window.I18N[state.lang] || {})[key] ?? window.I18N['zh-CN'][key] ?? fallback);
  let timeFmt;
  const makeFmt = () => {
    timeFmt = new Intl.DateTimeFormat(state.lang === 'en' ? 'en-GB' : 'zh-CN', {
      timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
    });
  };
  makeFmt();
  const fmtTime = (iso) => (iso ? timeFmt.format(new Date(iso)) : '—');

  /** h('div', { class: 'x', dataset: { id } }, 'text', child…): text is always a text node. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return el;
  }

  function applyStaticTexts() {
    document.documentElement.lang = state.lang;
    for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    $('act-note-text')?.setAttribute('placeholder', t('act.notePlaceholder'));
  }

  // ---------- HTTP and tokens ----------
  async function api(method, path, body) {
    const res = await fetch(API + path, {
      method,
      headers: { 'Content-Type': 'application/json', ...(state.session ? { Authorization: 'Bearer ' + state.session.accessToken } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const data = res.status === 204 ? null : await res.json().catch(() => null);
    if (res.status === 401 && path !== '/auth/login' && path !== '/auth/refresh') {
      if (await refresh()) return api(method, path, body);
      logout(t('login.expired'));
    }
    if (!res.ok) throw Object.assign(new Error(data?.error?.message || res.statusText), { status: res.status, code: data?.error?.code });
    return data;
  }

  function saveSession(pair) {
    state.session = { accessToken: pair.accessToken, refreshToken: pair.refreshToken, expiresAt: Date.now() + pair.expiresIn * 1000 };
    sessionStorage.setItem('shouhu.session', JSON.stringify(state.session));
    scheduleRefresh();
  }

  /** Refresh at 80% of the access token's life; the socket gets the new token by `reauth`. */
  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    if (!state.session) return;
    const ms = Math.max(5000, (state.session.expiresAt - Date.now()) * 0.8);
    refreshTimer = setTimeout(() => void refresh(), ms);
  }

  let refreshing = null;
  function refresh() {
    if (!state.session) return Promise.resolve(false);
    refreshing ??= (async () => {
      try {
        const res = await fetch(API + '/auth/refresh', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ refreshToken: state.session.refreshToken }) });
        if (!res.ok) return false;
        saveSession(await res.json());
        if (socket?.connected) socket.emit('reauth', { token: state.session.accessToken }, () => undefined);
        return true;
      } catch {
        return false;
      } finally {
        setTimeout(() => (refreshing = null), 0);
      }
    })();
    return refreshing;
  }

  async function login(ev) {
    ev.preventDefault();
    enableSound(); // a user gesture: the browser lets us start audio now
    $('login-error').textContent = '';
    try {
      const pair = await api('POST', '/auth/login', { username: $('username').value, password: $('password').value });
      saveSession(pair);
      await start();
    } catch (e) {
      $('login-error').textContent = e.status === 429 ? t('login.locked') : t('login.failed');
    }
  }

  function logout(message) {
    if (state.session) void fetch(API + '/auth/logout', { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + state.session.accessToken }, body: JSON.stringify({ refreshToken: state.session.refreshToken }) }).catch(() => undefined);
    state.session = null;
    sessionStorage.removeItem('shouhu.session');
    clearTimeout(refreshTimer);
    socket?.close();
    socket = null;
    state.incidents.clear();
    state.selected = state.detail = null;
    state.lastSeq = 0;
    state.patrol = [];
    state.patrolTotal = 0;
    document.body.dataset.view = 'login';
    $('login-error').textContent = message || '';
    render();
  }

  // ---------- live connection ----------
  async function start() {
    const me = await api('GET', '/auth/me');
    state.user = me;
    $('who').textContent = `${me.displayName || me.username}（${me.role}）`;
    document.body.dataset.view = 'console';
    connect();
    void loadDevices();
    setInterval(() => void loadDevices(), 30000);
  }

  function setConn(c) {
    state.conn = c;
    document.body.dataset.conn = c;
    $('conn').textContent = t('conn.' + c);
  }

  function connect() {
    setConn('connecting');
    socket = window.io('/console', {
      transports: ['websocket', 'polling'],
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
      // Called on every (re)connect: the current token and the last seq we hold.
      auth: (cb) => cb({ token: state.session?.accessToken, lastSeq: state.lastSeq }),
    });
    socket.on('connect', () => setConn('connecting')); // caught up at `live`
    socket.on('live', () => setConn('online'));
    socket.on('disconnect', (reason) => {
      setConn('offline');
      // The server closed us (token expired): refresh, then reconnect ourselves.
      if (reason === 'io server disconnect') void refresh().then((ok) => (ok ? socket.connect() : logout(t('login.expired'))));
    });
    socket.on('connect_error', (err) => {
      setConn('offline');
      if (err?.message === 'AUTH.TOKEN_EXPIRED' || err?.message === 'AUTH.TOKEN_REVOKED') void refresh().then((ok) => (ok ? socket.connect() : logout(t('login.expired'))));
      else if (!socket.active) setTimeout(() => socket.connect(), 2000);
    });
    socket.on('snapshot', onSnapshot);
    socket.on('event', onEvent);
  }

  function onSnapshot(snap) {
    state.incidents.clear();
    for (const inc of snap.incidents) state.incidents.set(inc.id, { ...inc, incidentId: inc.id });
    if (snap.devices) state.devices = snap.devices;
    state.lastSeq = snap.seq;
    state.seqs.push({ snapshot: snap.seq });
    schedule();
  }

  function onEvent(e) {
    if (e.seq <= state.lastSeq) return; // seen already (replays overlap live delivery)
    state.lastSeq = e.seq;
    state.seqs.push(e.seq);
    const p = e.payload || {};
    if (e.type.startsWith('incident.') && p.incidentId) {
      const prev = state.incidents.get(p.incidentId);
      const inc = { ...(prev || {}), ...p, id: p.incidentId };
      if (OPEN.includes(inc.status) || state.selected === inc.id) state.incidents.set(inc.id, inc);
      else state.incidents.delete(inc.id);
      if (state.selected === inc.id) void loadDetail(inc.id);
    } else if (e.type.startsWith('device.')) {
      devicesSoon();
    } else if (e.type === 'patrol.finding' || e.type === 'patrol.school_findings') {
      onPatrol(e, p);
    }
    schedule();
  }

  // ---------- patrol findings ----------
  /**
   * District audit runs arrive as summaries (schoolId null, `schools` per school, maybe in
   * chunks): one panel entry per run, chunks merged. Per-school events (rounds, post checks,
   * a school's own audit findings) become one entry per finding listed, plus "N more".
   */
  function onPatrol(e, p) {
    const findings = Array.isArray(p.findings) ? p.findings : [];
    const total = Number.isFinite(p.total) ? p.total : findings.length;
    const base = { seq: e.seq, at: e.at, source: p.source };
    state.patrolTotal += total;
    let items;
    if (!p.schoolId && Array.isArray(p.schools)) {
      const prev = p.runId ? state.patrol.find((x) => x.kind === 'summary' && x.runId === p.runId) : null;
      const schools = new Set(prev ? prev.schools : []);
      for (const s of p.schools) if ((s.total ?? 1) > 0) schools.add(s.schoolId);
      items = [{
        ...base,
        kind: 'summary',
        key: 'run-' + (p.runId || e.seq),
        runId: p.runId,
        total: (prev ? prev.total : 0) + total,
        schools: [...schools],
        parts: (prev ? prev.parts : 0) + 1,
        of: p.chunk?.of ?? 1,
        sample: [...(prev ? prev.sample : []), ...findings.map((f) => f.message)].slice(0, 3),
      }];
      if (prev) state.patrol = state.patrol.filter((x) => x !== prev);
    } else {
      items = findings.map((f) => ({ ...base, kind: 'finding', key: 'f-' + f.findingId, findingId: f.findingId, check: f.check, message: f.message, subjectLabel: f.subjectLabel }));
      if (total > findings.length) items.push({ ...base, kind: 'more', key: 'more-' + e.seq, more: total - findings.length });
    }
    state.patrol = [...items, ...state.patrol].slice(0, PATROL_MAX);
  }

  function renderPatrol() {
    const src = (x) => tOr('patrol.source.' + x.source, x.source || '—');
    $('patrol-list').replaceChildren(
      ...state.patrol.map((x) => {
        if (x.kind === 'summary') {
          const text = t('patrol.summary', { n: x.total, m: x.schools.length }) + (x.parts < x.of ? t('patrol.part', { i: x.parts, of: x.of }) : '');
          const sample = x.sample.length ? t('patrol.sample') + x.sample.join('；') : null;
          return h('li', { class: 'finding kind-summary', dataset: { runId: x.runId || '' } },
            h('span', { class: 'src' }, src(x)), h('strong', { class: 'msg', title: text }, text), h('time', {}, fmtTime(x.at)),
            sample ? h('span', { class: 'sub', title: sample }, sample) : null);
        }
        if (x.kind === 'more') {
          return h('li', { class: 'finding kind-more' }, h('span', { class: 'src' }, src(x)), h('span', { class: 'msg' }, t('patrol.more', { n: x.more })), h('time', {}, fmtTime(x.at)));
        }
        const sub = [x.subjectLabel, tOr('check.' + x.check, x.check)].filter(Boolean).join(' · ');
        return h('li', { class: 'finding kind-finding', dataset: { findingId: x.findingId } },
          h('span', { class: 'src' }, src(x)), h('span', { class: 'msg', title: x.message || '' }, x.message || '—'), h('time', {}, fmtTime(x.at)),
          sub ? h('span', { class: 'sub', title: sub }, sub) : null);
      }),
    );
    const badge = $('patrol-count');
    badge.textContent = String(state.patrolTotal);
    badge.classList.toggle('has', state.patrolTotal > 0);
    badge.title = t('patrol.badgeTitle');
    $('patrol-empty').hidden = state.patrol.length > 0;
  }

  // ---------- district view ----------
  let devTimer = null;
  function devicesSoon() {
    devTimer ??= setTimeout(() => {
      devTimer = null;
      void loadDevices();
    }, 2000);
  }
  async function loadDevices() {
    try {
      state.devices = await api('GET', '/device-health/summary?limit=200');
      schedule();
    } catch {
      /* shown as stale; the next period retries */
    }
  }

  // ---------- alert: sound and title ----------
  let audio = null;
  function enableSound() {
    try {
      audio ??= new AudioContext();
      void audio.resume();
      state.sound = true;
    } catch {
      state.sound = false;
    }
    renderSound();
  }
  function beep() {
    if (!audio || audio.state !== 'running') return;
    const now = audio.currentTime;
    for (const [i, f] of [880, 660].entries()) {
      const o = audio.createOscillator();
      const g = audio.createGain();
      o.frequency.value = f;
      o.type = 'square';
      g.gain.setValueAtTime(0.08, now + i * 0.25);
      g.gain.setValueAtTime(0, now + i * 0.25 + 0.2);
      o.connect(g).connect(audio.destination);
      o.start(now + i * 0.25);
      o.stop(now + i * 0.25 + 0.22);
    }
  }
  const baseTitle = () => t('app.title');
  let alertTimer = null;
  let flash = false;
  function updateAlert(unacked) {
    document.body.dataset.alert = unacked > 0 ? 'on' : 'off';
    document.body.dataset.unacked = String(unacked);
    $('alert-banner').textContent = unacked > 0 ? t('alert.banner', { n: unacked }) : '';
    if (unacked > 0 && !alertTimer) {
      const tick = () => {
        flash = !flash;
        document.title = flash ? `${t('alert.title')}(${countUnacked()}) ${baseTitle()}` : baseTitle();
        if (flash && state.sound) beep();
      };
      tick();
      alertTimer = setInterval(tick, 1000);
    } else if (unacked === 0 && alertTimer) {
      clearInterval(alertTimer);
      alertTimer = null;
      flash = false;
      document.title = baseTitle();
    }
  }
  const countUnacked = () => [...state.incidents.values()].filter((i) => i.status === 'raised').length;
  function renderSound() {
    $('sound-btn').textContent = state.sound && audio?.state === 'running' ? t('sound.on') : t('sound.off');
  }

  // ---------- rendering ----------
  let frame = 0;
  function schedule() {
    frame ||= requestAnimationFrame(() => {
      frame = 0;
      render();
    });
  }

  function sorted() {
    // Most severe first, then newest.
    return [...state.incidents.values()]
      .filter((i) => OPEN.includes(i.status))
      .sort((a, b) => PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority] || Date.parse(b.firstPressAt) - Date.parse(a.firstPressAt));
  }

  function render() {
    const list = sorted();
    const ol = $('incidents');
    ol.replaceChildren(
      ...list.map((i) =>
        h(
          'li',
          { class: `incident prio-${i.priority} status-${i.status}${state.selected === i.id ? ' selected' : ''}`, dataset: { incidentId: i.id, status: i.status, priority: i.priority }, tabindex: 0, onclick: () => select(i.id) },
          h('span', { class: 'prio' }, i.priority),
          h('span', { class: 'what' }, h('strong', {}, i.schoolName), ' · ', i.location, ' · ', t('type.' + i.type), i.drill ? ` (${t('detail.drill')})` : ''),
          h('span', { class: 'status' }, t('status.' + i.status)),
          h('time', {}, fmtTime(i.firstPressAt)),
        ),
      ),
    );
    $('list-count').textContent = `(${list.length})`;
    $('list-empty').hidden = list.length > 0;
    const unacked = countUnacked();
    $('stat-open').textContent = String(list.length);
    $('stat-unacked').textContent = String(unacked);
    renderDistrict(list);
    renderDetail();
    renderPatrol();
    updateAlert(unacked);
    renderSound();
    exposeState(list, unacked);
  }

  function renderDistrict(list) {
    const d = state.devices;
    if (d) {
      const rate = d.totals?.onlineRate;
      $('stat-online').textContent = rate === null || rate === undefined ? '—' : `${(rate * 100).toFixed(1)}%`;
      $('stat-devices').textContent = `${d.totals?.online ?? 0} / ${d.totals?.total ?? 0}`;
      $('stat-outages').textContent = String(d.openOutages ?? 0);
      const bad = (d.schools?.items || []).filter((s) => (s.offline ?? 0) + (s.fault ?? 0) > 0).slice(0, 10);
      $('outage-schools').replaceChildren(...(bad.length ? bad.map((s) => h('li', {}, s.name, ' ', h('span', { class: 'bad' }, `${(s.offline ?? 0) + (s.fault ?? 0)}/${s.total}`))) : [h('li', { class: 'muted' }, t('district.none'))]));
    }
    const per = new Map();
    for (const i of list) per.set(i.schoolName, (per.get(i.schoolName) || 0) + 1);
    const rows = [...per.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10);
    $('open-schools').replaceChildren(...(rows.length ? rows.map(([name, n]) => h('li', {}, name, ' ', h('strong', {}, String(n)))) : [h('li', { class: 'muted' }, t('district.none'))]));
  }

  function select(id) {
    state.selected = id;
    state.detail = null;
    schedule();
    void loadDetail(id);
  }

  async function loadDetail(id) {
    try {
      const d = await api('GET', `/incidents/${id}`);
      if (state.selected === id) {
        state.detail = d;
        schedule();
      }
    } catch {
      /* keep the summary view */
    }
  }

  let actionMessage = null;
  function renderDetail() {
    const box = $('detail');
    const id = state.selected;
    const inc = id && (state.detail?.id === id ? { ...state.incidents.get(id), ...state.detail } : state.incidents.get(id));
    if (!inc) {
      box.replaceChildren(h('p', { class: 'muted' }, t('detail.none')));
      return;
    }
    // Keep what the operator is typing across re-renders.
    const typed = $('act-note-text')?.value || '';
    const outcome = $('act-outcome')?.value;
    const row = (k, v) => h('div', { class: 'row' }, h('dt', {}, t(k)), h('dd', {}, v));
    const relay = inc.relay?.required ? (inc.relay.deliveredAt ? t('detail.relayDelivered') : inc.relay.late ? t('detail.relayLate') : t('detail.relayPending')) : null;
    const can = (a) => ({ acknowledge: ['raised'], dispatch: ['acknowledged'], on_scene: ['acknowledged', 'dispatched'], resolve: ['acknowledged', 'dispatched', 'on_scene'] })[a].includes(inc.status);
    const btn = (a) => h('button', { type: 'button', id: `act-${a}`, class: `act act-${a}`, disabled: !can(a) || state.conn !== 'online', onclick: () => act(a) }, t('act.' + a));
    const parts = [
      h('h2', { class: `prio-${inc.priority}` }, h('span', { class: 'prio' }, inc.priority), ' ', inc.schoolName, ' · ', inc.location),
      h(
        'dl',
        {},
        row('detail.status', t('status.' + inc.status)),
        row('detail.type', t('type.' + inc.type) + (inc.drill ? ` (${t('detail.drill')})` : '')),
        row('detail.source', t('source.' + inc.source)),
        row('detail.raisedAt', fmtTime(inc.firstPressAt)),
        row('detail.raisedBy', inc.raisedBy || '—'),
        row('detail.ackBy', inc.acknowledgedBy ? `${inc.acknowledgedBy.name} · ${fmtTime(inc.acknowledgedBy.at)}` : '—'),
        row('detail.presses', String(inc.pressCount ?? 1)),
        relay ? row('detail.relay', relay) : null,
        inc.note ? row('detail.note', inc.note) : null,
      ),
      h('h3', {}, t('detail.cameras')),
      inc.cameras?.length
        ? h('ul', { class: 'cameras' }, ...inc.cameras.map((c) => h('li', {}, h('strong', {}, c.name), ' · ', c.location || '—', ' · ', h('code', {}, c.streamUrl || '—'))))
        : h('p', { class: 'muted' }, t('detail.noCameras')),
      h('div', { class: 'actions' }, btn('acknowledge'), btn('dispatch'), btn('on_scene'),
        h('select', { id: 'act-outcome' }, ...['genuine', 'false_alarm', 'drill', 'test'].map((o) => h('option', { value: o, selected: o === outcome }, t('outcome.' + o)))),
        btn('resolve')),
      h('div', { class: 'note-box' },
        h('textarea', { id: 'act-note-text', rows: 2, maxlength: 2000, placeholder: t('act.notePlaceholder') }),
        h('button', { type: 'button', id: 'act-note', disabled: state.conn !== 'online' || !OPEN.includes(inc.status), onclick: () => act('note') }, t('act.note'))),
      actionMessage && actionMessage.id === id ? h('p', { class: actionMessage.ok ? 'ok' : 'error', id: 'act-message', role: 'status' }, actionMessage.text) : null,
      h('h3', {}, t('detail.timeline')),
      h('ol', { class: 'timeline' }, ...(state.detail?.id === id ? state.detail.timeline : []).map((e) =>
        h('li', {}, h('time', {}, fmtTime(e.at)), ' ', h('strong', {}, t('action.' + e.action)), ' · ', e.actorName || '—', e.note ? ` — ${e.note}` : ''))),
    ];
    box.replaceChildren(...parts.filter(Boolean));
    $('act-note-text').value = typed;
  }

  /** Operator actions go over the socket (same rules as REST); the answer comes in the ack. */
  function act(a) {
    const id = state.selected;
    if (!socket?.connected) {
      actionMessage = { id, ok: false, text: t('act.offline') };
      return schedule();
    }
    const payload = { id };
    const note = $('act-note-text')?.value.trim();
    if (a === 'resolve') payload.outcome = $('act-outcome').value;
    if (note) payload.note = note;
    if (a === 'note' && !note) return;
    socket.timeout(10000).emit(`incident:${a}`, payload, (err, answer) => {
      if (err) actionMessage = { id, ok: false, text: t('act.failed') };
      else if (answer.ok) {
        actionMessage = { id, ok: true, text: t('act.done') };
        if (note) $('act-note-text').value = '';
        state.incidents.set(answer.incident.id, { ...answer.incident, incidentId: answer.incident.id });
        void loadDetail(id);
      } else actionMessage = { id, ok: false, text: `${t('act.failed')}：${answer.error.message}` };
      schedule();
    });
  }

  /** Simulates a network drop (the client reconnects by itself, as after a real one). For tests and drills. */
  window.__consoleTest = { dropConnection: () => socket?.io.engine?.close() };

  /** For tests and diagnostics (read-only copies). */
  function exposeState(list, unacked) {
    window.__consoleState = {
      conn: state.conn,
      lastSeq: state.lastSeq,
      seqs: state.seqs.slice(),
      incidents: list.map((i) => ({ id: i.id, status: i.status, priority: i.priority, location: i.location })),
      unacked,
      alerting: unacked > 0,
      title: document.title,
      patrol: { total: state.patrolTotal, entries: state.patrol.map((x) => ({ kind: x.kind, source: x.source, message: x.message, findingId: x.findingId })) },
    };
  }

  // ---------- boot ----------
  function switchLang() {
    state.lang = state.lang === 'en' ? 'zh-CN' : 'en';
    localStorage.setItem('shouhu.lang', state.lang);
    makeFmt();
    applyStaticTexts();
    if (state.conn) setConn(state.conn);
    render();
  }

  document.addEventListener('DOMContentLoaded', () => {
    applyStaticTexts();
    setConn('offline');
    $('login-form').addEventListener('submit', login);
    $('logout-btn').addEventListener('click', () => logout());
    $('sound-btn').addEventListener('click', enableSound);
    for (const b of document.querySelectorAll('.lang-switch')) b.addEventListener('click', switchLang);
    // Any click re-enables audio the browser suspended.
    document.addEventListener('click', () => audio && audio.state !== 'running' && void audio.resume().then(renderSound), { capture: true });
    render();
    if (state.session) {
      scheduleRefresh();
      start().catch(() => logout());
    }
  });
})();

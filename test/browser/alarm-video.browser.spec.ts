import type { Browser, Page } from 'playwright-core';
import { ConsolePage, launchChromium, openConsole, PHONE, rawKeysOnPage } from '../support/browser';
import { auth, PASSWORD, TestApp } from '../support/harness';
import { GbCamera } from '../support/video/gb-camera';
import { GbVideoSite, startGbVideoSite } from '../support/video/gb-video-site';
import { testJpeg } from '../support/video/snapshot-camera';

/**
 * Alarm detail plays the incident's cameras (issue 15 phase 2) in real headless Chromium against
 * the built console: an alarm at the main gate links the school's three gate cameras; the first
 * two — simulated GB/T 28181 cameras (ffmpeg test pattern as real-camera PS over RTP) — play at
 * once side by side (currentTime advances, a frame is not blank), one INVITE each; the third is
 * offered on demand and, its device never registered, says "设备离线" when asked. The evidence
 * strip shows the pictures taken at the raise and 1 s later (and the offline camera's reason), each
 * saying when it was taken (school time) and where it came from (a frame of the stream; a phone's
 * photo: uploaded), in Chinese and English.
 * Closing the detail (another incident selected) closes the players' sockets. A guard's check-in
 * at a post with a gate camera shows that camera's picture of the moment on the phone. From a
 * camera of the detail the operator opens its GB/T 28181 device panel: status, recordings, and one
 * played back. Leaves test/artifacts/alarm-video.png, guard-gate-picture.png and gb-device-panel.png.
 */
const PASSWORD_CAM = 'cam-pass-alarm-video';
type VideoEl = { currentTime: number; videoWidth: number; videoHeight: number };
type Doc = {
  querySelector: (s: string) => VideoEl | null;
  createElement: (t: string) => {
    width: number;
    height: number;
    getContext: (k: string) => {
      drawImage: (v: unknown, x: number, y: number) => void;
      getImageData: (x: number, y: number, w: number, h: number) => { data: Uint8ClampedArray };
    };
  };
};

/** currentTime of the camera's <video>. */
const currentTime = (page: Page, cameraId: string) =>
  page.evaluate((id) => (globalThis as unknown as { document: Doc }).document.querySelector(`[data-camera="${id}"] video`)?.currentTime ?? -1, cameraId);

/** How much of a frame drawn from the camera's <video> is picture: distinct colours and lit samples. */
const frameOf = (page: Page, cameraId: string) =>
  page.evaluate((id) => {
    const doc = (globalThis as unknown as { document: Doc }).document;
    const v = doc.querySelector(`[data-camera="${id}"] video`)!;
    const c = doc.createElement('canvas');
    c.width = v.videoWidth;
    c.height = v.videoHeight;
    const ctx = c.getContext('2d');
    ctx.drawImage(v, 0, 0);
    const { data } = ctx.getImageData(0, 0, c.width, c.height);
    const colours = new Set<number>();
    let lit = 0;
    let samples = 0;
    for (let i = 0; i < data.length; i += 4 * 97) {
      samples++;
      colours.add((data[i] >> 4) * 256 + (data[i + 1] >> 4) * 16 + (data[i + 2] >> 4));
      if (data[i] + data[i + 1] + data[i + 2] > 60) lit++;
    }
    return { width: c.width, height: c.height, colours: colours.size, litShare: samples ? lit / samples : 0 };
  }, cameraId);

describe('alarm detail plays the linked cameras (Chromium)', () => {
  let site: GbVideoSite;
  let t: TestApp;
  let browser: Browser;
  let cp: ConsolePage;
  const cams: GbCamera[] = [];
  const cameraIds: string[] = [];
  let offlineId: string;
  let raiser: string;
  let seed: GbVideoSite['seed'];

  beforeAll(async () => {
    site = await startGbVideoSite({
      password: PASSWORD_CAM,
      clip: { width: 640, height: 360, bitrateKbps: 600 },
      rtpPorts: 50,
      video: { lingerMs: 500 },
      // Verdicts spacing (patrols.roundVerdictMinSeconds) off: the wall's test judges as fast as the pictures arrive (the rule has its own e2e case).
      overrides: { alarms: { evidenceSnapshotSeconds: [0, 1] }, patrols: { roundVerdictMinSeconds: 0 } },
    });
    ({ t, seed } = site);
    raiser = (await t.userToken('operator', undefined, 'raiser')).token;
    await t.userToken('operator', undefined, 'duty_op');
    for (const n of [1, 2]) {
      // Answering DeviceStatus and RecordInfo as a working camera does: the device panel's case.
      const c = await site.camera({ name: `南门${n}`, device: { answerQueries: true } });
      cameraIds.push(c.id);
      cams.push(c.cam!);
    }
    offlineId = (await site.camera({ name: '南门3' })).id; // never registers
    browser = await launchChromium();
  });

  afterAll(async () => {
    await cp?.close();
    await browser?.close();
    await site?.close();
  });

  it('plays the first two cameras at once, the third on demand with the reason it cannot', async () => {
    const inc = (
      await t
        .http()
        .post('/api/v1/incidents')
        .set(auth(raiser))
        .send({ schoolId: seed.schoolA.id, type: 'other', location: '南大门', areaKind: 'main_gate' })
        .expect(201)
    ).body as { id: string; cameras: { id: string }[] };
    expect(inc.cameras.map((c) => c.id).sort()).toEqual([...cameraIds, offlineId].sort());
    const autoplayed = inc.cameras.slice(0, 2).map((c) => c.id);
    const onDemand = inc.cameras[2].id;
    // A photo from someone on site (a phone upload), shown beside the cameras' pictures.
    await t
      .http()
      .post(`/api/v1/incidents/${inc.id}/photos`)
      .set(auth(raiser))
      .attach('file', testJpeg(160, 120), { filename: 'photo.jpg', contentType: 'image/jpeg' })
      .expect(201);

    cp = await openConsole(browser, t.baseUrl);
    await cp.login('duty_op', PASSWORD);
    const { page } = cp;
    await page.waitForSelector('body[data-conn="online"]');
    await page.click(`#incidents [data-incident-id="${inc.id}"]`);
    await page.waitForSelector('#incident-cameras');

    for (const id of autoplayed) {
      if (id === offlineId) {
        await page.waitForSelector(`[data-camera="${id}"][data-state="error"]`, { timeout: 15000 });
        continue;
      }
      await page.waitForSelector(`[data-camera="${id}"][data-state="playing"]`, { timeout: 20000 });
      const t0 = await currentTime(page, id);
      await page.waitForFunction(
        ([cam, start]) =>
          ((globalThis as unknown as { document: Doc }).document.querySelector(`[data-camera="${cam}"] video`)?.currentTime ?? -1) > (start as number) + 1,
        [id, t0] as const,
        { timeout: 15000 },
      );
      const frame = await frameOf(page, id);
      expect(frame).toMatchObject({ width: 640, height: 360 });
      expect(frame.colours).toBeGreaterThan(8); // testsrc2: colour bars and a moving pattern
      expect(frame.litShare).toBeGreaterThan(0.3);
    }
    // The third waits for the operator: no INVITE for it until asked.
    expect(await page.getAttribute(`[data-camera="${onDemand}"]`, 'data-state')).toBe('idle');
    await page.click(`[data-camera="${onDemand}"] .video-play`);
    if (onDemand === offlineId) {
      await page.waitForSelector(`[data-camera="${onDemand}"][data-state="error"]`, { timeout: 15000 });
      expect(await page.textContent(`[data-camera="${onDemand}"] figcaption .error`)).toBe('设备离线');
    } else {
      await page.waitForSelector(`[data-camera="${onDemand}"][data-state="playing"]`, { timeout: 20000 });
    }
    // One upstream (INVITE dialog) per camera, however many look at it (the evidence job's snapshots may have played it before).
    for (const c of cams) expect(c.plays.size).toBe(1);

    // The evidence strip: pictures of the two cameras at the raise and 1 s later, and the offline one's reason.
    await page.waitForFunction(
      () =>
        (globalThis as unknown as { document: { querySelectorAll: (s: string) => { length: number } } }).document.querySelectorAll(
          '#evidence-strip figure[data-state="shown"] img',
        ).length === 4,
      undefined,
      { timeout: 20000 },
    );
    await page.waitForSelector('#evidence-strip figure[data-state="failed"]');
    const widths = await page.$$eval('#evidence-strip figure[data-state="shown"] img', (imgs) =>
      imgs.map((i) => (i as unknown as { naturalWidth: number }).naturalWidth),
    );
    expect(widths).toEqual([640, 640, 640, 640]);
    expect(await page.textContent('#evidence-strip figure[data-state="failed"] .missing')).toBe('设备离线');
    await page.waitForSelector('#detail .timeline li[data-action="evidence_failed"]');
    // Each picture says where it came from: the cameras' are frames of their GB/T 28181 streams, the photo a phone upload.
    const sources = () =>
      page.$$eval('#evidence-strip figure[data-state="shown"] .evidence-source, #detail-photos .evidence-picture[data-state="shown"] .evidence-source', (els) =>
        els.map((e) => [e.getAttribute('data-source'), e.textContent?.trim()]),
      );
    await page.waitForSelector('#detail-photos .evidence-picture[data-state="shown"] .evidence-source');
    expect(await sources()).toEqual([['upload', '手机上传'], ...Array(4).fill(['stream', '视频流截帧'])]); // the photos stand above the strip
    expect(await page.$$eval('#evidence-strip figure[data-state="failed"] .evidence-source', (els) => els.length)).toBe(0); // no picture, no source
    // And when it was taken, in school time (Asia/Shanghai): its entry's capturedAt, not when the round's entry was written.
    const timeline = (await t.http().get(`/api/v1/incidents/${inc.id}`).set(auth(raiser)).expect(200)).body.timeline as {
      action: string;
      data: { capturedAt?: string } | null;
    }[];
    const shanghai = new Intl.DateTimeFormat('zh-CN', {
      timeZone: 'Asia/Shanghai',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hour12: false,
    });
    const taken = timeline.filter((e) => e.action === 'evidence' || e.action === 'photo').map((e) => e.data!.capturedAt!);
    expect(taken).toHaveLength(5);
    const times = await page.$$eval('#evidence-strip figure[data-state="shown"] .evidence-time, #detail-photos .evidence-time', (els) =>
      els.map((e) => [e.getAttribute('datetime'), e.textContent?.trim()]),
    );
    expect(times.sort()).toEqual(taken.map((at) => [at, shanghai.format(new Date(at))]).sort());
    expect(await rawKeysOnPage(page, ['duty_op'])).toEqual([]);
    await page.click('.bar .lang-switch');
    await page.waitForSelector('#evidence-strip .evidence-source:has-text("frame from the stream")');
    expect(await sources()).toEqual([['upload', 'phone upload'], ...Array(4).fill(['stream', 'frame from the stream'])]);
    expect(await rawKeysOnPage(page, ['duty_op'])).toEqual([]);
    await page.click('.bar .lang-switch');
    await page.waitForSelector('#evidence-strip .evidence-source:has-text("视频流截帧")');
    expect(await cp.problems()).toEqual([]);
    expect((await cp.state()).missingKeys).toEqual([]);
    await cp.screenshot('alarm-video');

    // What happened before anyone pressed: the first cameras switch to their recordings around the raise (GB/T 28181 playback), then back to live.
    const playable = autoplayed.filter((id) => id !== offlineId);
    await page.click('#incident-cameras .video-playback-toggle');
    for (const id of playable) await page.waitForSelector(`[data-camera="${id}"][data-mode="playback"][data-state="playing"]`, { timeout: 20000 });
    expect(await page.textContent(`[data-camera="${playable[0]}"] figcaption .playback`)).toMatch(/^回放 /);
    const playbackOffers = cams.flatMap((c) => c.log.filter((l) => l.method === 'INVITE' && /^s=Playback\r$/m.test(l.body)));
    expect(playbackOffers.length).toBe(playable.length);
    await page.click('#incident-cameras .video-playback-toggle');
    for (const id of playable) await page.waitForSelector(`[data-camera="${id}"][data-mode="live"][data-state="playing"]`, { timeout: 20000 });
    expect(await rawKeysOnPage(page, ['duty_op'])).toEqual([]);

    // Another incident selected: the detail goes, its players' sockets close, the streams linger out (BYE).
    const other = (await t.http().post('/api/v1/incidents').set(auth(raiser)).send({ schoolId: seed.schoolB.id, type: 'other', location: '操场' }).expect(201))
      .body as { id: string };
    await page.click(`#incidents [data-incident-id="${other.id}"]`);
    await page.waitForSelector('#detail:not(:has(#incident-cameras))');
    const deadline = Date.now() + 15000;
    while (cams.some((c) => c.plays.size > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    for (const c of cams) {
      expect(c.plays.size).toBe(0);
      expect(c.dialogs('BYE')).toBe(c.dialogs('INVITE'));
    }
  });

  it("a guard's post check-in shows the gate camera's picture of the moment on the phone", async () => {
    const admin = (await t.userToken('admin')).token;
    const guard = await t.userToken('school_security', seed.schoolA.id, 'guard_gate');
    const post = (
      await t
        .http()
        .post('/api/v1/protection-posts')
        .set(auth(admin))
        .send({ code: 'SA-GATE-1', schoolId: seed.schoolA.id, gate: '南大门', windows: [{ kind: 'arrival' }], gateCameraId: cameraIds[0] })
        .expect(201)
    ).body as { id: string };
    // What the post's printed QR code says (the bureau prints it; the post's own token is never sent).
    const { payload } = (await t.http().get(`/api/v1/protection-posts/${post.id}/qr`).set(auth(admin)).expect(200)).body as { payload: string };
    const checkin = (await t.http().post('/api/v1/post-checkins').set(auth(guard.token)).send({ qrToken: payload }).expect(201)).body as {
      id: string;
      evidenceStatus: string;
    };
    expect(checkin.evidenceStatus).toBe('pending');
    const phone = await openConsole(browser, t.baseUrl, { viewport: PHONE, isMobile: true });
    try {
      await phone.login('guard_gate', PASSWORD);
      await phone.page.click('#tab-checkin');
      const img = `#checkin-list li[data-checkin-id="${checkin.id}"] .evidence-picture[data-state="shown"] img`;
      await phone.page.waitForSelector(img, { timeout: 20000 });
      await phone.page.waitForFunction(
        (sel) =>
          ((globalThis as unknown as { document: { querySelector: (s: string) => { naturalWidth: number } | null } }).document.querySelector(sel)
            ?.naturalWidth ?? 0) > 0,
        img,
      );
      expect(await phone.page.$eval(img, (i) => (i as unknown as { naturalWidth: number }).naturalWidth)).toBe(640);
      const source = `#checkin-list li[data-checkin-id="${checkin.id}"] .evidence-picture .evidence-source`;
      expect([await phone.page.getAttribute(source, 'data-source'), await phone.page.textContent(source)]).toEqual(['stream', '视频流截帧']);
      expect(await phone.problems()).toEqual([]);
      expect(await rawKeysOnPage(phone.page, ['guard_gate'])).toEqual([]);
      await phone.screenshot('guard-gate-picture');
    } finally {
      await phone.close();
    }
  });

  it('a video patrol round plays its cameras on a wall and keeps the picture each verdict was made on (issue 15)', async () => {
    const desk = await openConsole(browser, t.baseUrl);
    try {
      await desk.login('duty_op', PASSWORD);
      const { page } = desk;
      await page.click('#nav-rounds');
      await page.click('#round-start');
      await page.waitForSelector('#video-wall');
      const tiles = (await page.$$eval('#video-wall [data-round-camera]', (els) => els.map((e) => e.getAttribute('data-round-camera')))) as string[];
      expect([...tiles].sort()).toEqual([...cameraIds, offlineId].sort());
      // Every camera is asked for at once: the live ones play, the offline one says so.
      for (const id of cameraIds) await page.waitForSelector(`[data-round-camera="${id}"] [data-camera="${id}"][data-state="playing"]`, { timeout: 20000 });
      await page.waitForSelector(`[data-round-camera="${offlineId}"] [data-camera="${offlineId}"][data-state="error"]`, { timeout: 15000 });
      await desk.screenshot('video-wall');

      // A verdict keeps the picture it was made on; the offline camera is judged without one, and the tile says so.
      await page.click(`[data-round-camera="${cameraIds[0]}"] .verdict-normal`);
      await page.waitForSelector(`[data-round-camera="${cameraIds[0]}"][data-verdict="normal"] .evidence-picture[data-state="shown"] img`, { timeout: 20000 });
      expect(await page.textContent(`[data-round-camera="${cameraIds[0]}"] .evidence-picture .evidence-source`)).toBe('视频流截帧');
      await page.click(`[data-round-camera="${offlineId}"] .verdict-offline`);
      await page.waitForSelector(`[data-round-camera="${offlineId}"][data-verdict="offline"] .no-picture`, { timeout: 20000 });
      await page.click(`[data-round-camera="${cameraIds[1]}"] .verdict-gate_open`);
      await page.waitForSelector('#round-finished', { timeout: 20000 });

      const items = (
        await t.db.query(
          `SELECT i.camera_id AS "cameraId", i.verdict, e.camera_id AS "pictureOf", e.purpose, e.width, i.finding_id IS NOT NULL AS "finding"
           FROM patrol_round_items i LEFT JOIN video_evidence e ON e.id::text = i.snapshot_ref ORDER BY i.verdict_at`,
        )
      ).rows;
      expect(items).toEqual([
        { cameraId: cameraIds[0], verdict: 'normal', pictureOf: cameraIds[0], purpose: 'round.verdict', width: 640, finding: false },
        { cameraId: offlineId, verdict: 'offline', pictureOf: null, purpose: null, width: null, finding: true },
        { cameraId: cameraIds[1], verdict: 'gate_open', pictureOf: cameraIds[1], purpose: 'round.verdict', width: 640, finding: true },
      ]);
      expect(await rawKeysOnPage(page, ['duty_op'])).toEqual([]);
      expect((await desk.state()).missingKeys).toEqual([]);
      await desk.screenshot('video-wall-judged');
    } finally {
      await desk.close();
    }
  });

  it("opens a camera's GB/T 28181 device panel from the alarm detail: queries its status, lists its recordings, plays one back; arms it, reboots it only once confirmed", async () => {
    const inc = (
      await t
        .http()
        .post('/api/v1/incidents')
        .set(auth(raiser))
        .send({ schoolId: seed.schoolA.id, type: 'other', location: '南大门', areaKind: 'main_gate' })
        .expect(201)
    ).body as { id: string };
    const cam = cams[0];
    const desk = await openConsole(browser, t.baseUrl);
    try {
      await desk.login('duty_op', PASSWORD);
      const { page } = desk;
      await page.click(`#incidents [data-incident-id="${inc.id}"]`);
      await page.click(`#incident-cameras .gb-device-open[data-camera-id="${cameraIds[0]}"]`);
      await page.waitForSelector(`#gb-device-panel[data-device-id="${cam.o.deviceId}"][data-registered="true"]`);
      // Operators have the commands; DeviceStatus answered by the device, shown.
      await page.waitForSelector('#gb-device-panel .gb-reboot');
      await page.click('#gb-device-panel .gb-status-query');
      await page.waitForSelector('#gb-status [data-field="online"]');
      expect(await page.textContent('#gb-status [data-field="online"]')).toBe('在线');
      expect(await page.textContent('#gb-status [data-field="record"]')).toBe('开启');
      expect(cam.log.some((l) => l.method === 'MESSAGE' && l.body.includes('<CmdType>DeviceStatus</CmdType>'))).toBe(true);
      // The channel's recordings over the last hour (RecordInfo), one played back in the panel's player.
      await page.click('#gb-device-panel .gb-records-query');
      await page.waitForSelector('#gb-records tr[data-record="0"]');
      const invites = cam.log.filter((l) => l.method === 'INVITE' && /^s=Playback\r$/m.test(l.body)).length;
      await page.click('#gb-records tr[data-record="0"] .gb-playback');
      await page.waitForSelector(`#gb-device-panel [data-camera="${cameraIds[0]}"][data-mode="playback"][data-state="playing"]`, { timeout: 20000 });
      expect(cam.log.filter((l) => l.method === 'INVITE' && /^s=Playback\r$/m.test(l.body)).length).toBe(invites + 1);
      // Commands: arm answered OK by the device; a reboot only after its confirmation (cancelled: nothing sent).
      await page.click('#gb-device-panel .gb-arm');
      await page.waitForSelector('#gb-device-panel .gb-notice');
      expect(await page.textContent('#gb-device-panel .gb-notice')).toBe('设备已执行：布防');
      const teleboots = () => cam.log.filter((l) => l.method === 'MESSAGE' && l.body.includes('<TeleBoot>Boot</TeleBoot>')).length;
      await page.click('#gb-device-panel .gb-reboot');
      await page.click('.gb-reboot-dialog .gb-reboot-cancel');
      await page.waitForSelector('.gb-reboot-dialog', { state: 'hidden' });
      expect(teleboots()).toBe(0);
      await page.click('#gb-device-panel .gb-reboot');
      await page.click('.gb-reboot-dialog .gb-reboot-ok');
      await page.waitForFunction(() => {
        const el = (globalThis as unknown as { document: { querySelector: (s: string) => { textContent: string } | null } }).document.querySelector(
          '#gb-device-panel .gb-notice',
        );
        return el?.textContent === '重启命令已发送，设备将重新注册';
      });
      expect(teleboots()).toBe(1);
      expect(await rawKeysOnPage(page, ['duty_op'])).toEqual([]);
      expect(await desk.problems()).toEqual([]);
      expect((await desk.state()).missingKeys).toEqual([]);
      await desk.screenshot('gb-device-panel');
    } finally {
      await desk.close();
    }
  });
});

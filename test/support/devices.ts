import { auth, TestApp } from './harness';

/** An alarm button (一键报警) of the registry with its device credential, ready to press. */
export interface TestButton {
  id: string;
  code: string;
  /** The Authorization header a press sends (`Device <keyId>:<secret>`). */
  authorization: string;
}

/** Creates a button at a school and its credential (admin token). */
export async function createButton(
  t: TestApp,
  adminToken: string,
  o: { schoolId: string; code: string; location?: string; areaKind?: string; policeLinked?: boolean; linkedCameraIds?: string[] },
): Promise<TestButton> {
  const dev = (
    await t
      .http()
      .post('/api/v1/alarm-devices')
      .set(auth(adminToken))
      .send({
        code: o.code,
        schoolId: o.schoolId,
        location: o.location ?? '东门',
        areaKind: o.areaKind ?? 'main_gate',
        policeLinked: o.policeLinked ?? false,
        ...(o.linkedCameraIds ? { linkedCameraIds: o.linkedCameraIds } : {}),
      })
      .expect(201)
  ).body;
  const cred = (await t.http().post('/api/v1/device-credentials').set(auth(adminToken)).send({ kind: 'alarm_device', subjectId: dev.id }).expect(201)).body;
  return { id: dev.id, code: o.code, authorization: cred.authorization };
}

/** Creates a camera of the registry at a school (admin token); GB/T 28181 device and channel ids of 20 digits. */
export async function createCamera(
  t: TestApp,
  adminToken: string,
  o: { schoolId: string; deviceId: string; channelId: string; name: string; areaKind?: string; streamUrl?: string },
): Promise<{ id: string }> {
  const body = { areaKind: 'main_gate', ...o };
  return (await t.http().post('/api/v1/cameras').set(auth(adminToken)).send(body).expect(201)).body as { id: string };
}

/** `n` buttons at a school, one after another: codes `<code>-1` … `<code>-n`, at posts "1 号岗" … . */
export async function createButtons(t: TestApp, adminToken: string, schoolId: string, n: number, code = 'BTN'): Promise<TestButton[]> {
  const out: TestButton[] = [];
  for (let i = 1; i <= n; i++) out.push(await createButton(t, adminToken, { schoolId, code: `${code}-${i}`, location: `${i} 号岗` }));
  return out;
}

/** One press over real HTTP (fetch, not supertest: a timeout aborts it as a device would give up). */
export function press(baseUrl: string, button: Pick<TestButton, 'authorization'>, eventId: string, timeoutMs = 10_000): Promise<Response> {
  return fetch(`${baseUrl}/api/v1/incidents/press`, {
    method: 'POST',
    headers: { Authorization: button.authorization, 'Content-Type': 'application/json' },
    body: JSON.stringify({ eventId }),
    signal: AbortSignal.timeout(timeoutMs),
  });
}

import * as iconv from 'iconv-lite';
import { DataSource } from 'typeorm';
import { inJobsPool } from '../../infra/database/pools';
import type { RegistryService } from '../registry';

/**
 * What we report upward (issue 16 §7): our district as a GB/T 28181 Catalog (GB/T 28181-2016
 * §A.2.6.4, Annex D ids) — a civil-code node (GB/T 2260), one business group (type 215) for the
 * district's schools, a virtual organisation (type 216) per zone and per school, then the cameras
 * (their 20-digit channel ids) with ParentID = their school's organisation and Status ON/OFF from
 * device health. Organisation ids are `<first 10 digits of our id><type><0><6-digit serial>`; the
 * serial of a zone or school is given once (gb_cascade_nodes) and never reused, so the superior's
 * tree keeps its ids when schools are added.
 */

export interface CascadeItem {
  kind: 'civil' | 'group' | 'org' | 'camera';
  deviceId: string;
  name: string;
  parentId?: string;
  businessGroupId?: string;
  civilCode?: string;
  manufacturer?: string;
  model?: string;
  address?: string;
  status?: 'ON' | 'OFF';
}

export interface CascadeTree {
  items: CascadeItem[];
  /** Cameras not reported because another camera already has their channel id (counted). */
  duplicates: number;
  /** Channel id → status, for DeviceStatus queries about one camera. */
  cameraStatus: Map<string, 'ON' | 'OFF'>;
  cameras: number;
}

/** A 20-digit organisation id under our id: centre code and industry of `localId`, then type, network 0 and serial. */
export function orgId(localId: string, type: 215 | 216, serial: number): string {
  return `${localId.slice(0, 10)}${type}0${String(serial).padStart(6, '0')}`;
}

/** The civil code our tree hangs from: configured, else the first 6 digits of our id (the county of a district platform). */
export function civilCodeOf(localId: string, configured: string): string {
  return configured || localId.slice(0, 6);
}

/**
 * Loads the tree: the district from the registry (RegistryService.cascadeInventory), the serials of
 * zones and schools from gb_cascade_nodes (given on first sight, in code order). Runs on the jobs pool.
 */
export function loadCascadeTree(db: DataSource, registry: RegistryService, o: { localId: string; civilCode: string; name: string }): Promise<CascadeTree> {
  return inJobsPool(async () => {
    const inv = await registry.cascadeInventory();
    const ids = [...inv.zones.map((z) => z.id), ...inv.schools.map((s) => s.id)];
    const kinds = [...inv.zones.map(() => 'zone'), ...inv.schools.map(() => 'school')];
    await db.query(
      `INSERT INTO gb_cascade_nodes (ref_id, kind) SELECT t.ref_id, t.kind FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS t(ref_id, kind, n)
       WHERE NOT EXISTS (SELECT 1 FROM gb_cascade_nodes g WHERE g.ref_id = t.ref_id) ORDER BY n ON CONFLICT DO NOTHING`,
      [ids, kinds],
    );
    const serials = new Map(
      (
        (await db.query(`SELECT ref_id AS "refId", serial FROM gb_cascade_nodes WHERE ref_id = ANY($1::uuid[])`, [ids])) as { refId: string; serial: number }[]
      ).map((r) => [r.refId, r.serial]),
    );
    const withSerial = <T extends { id: string }>(rows: T[]) =>
      rows
        .filter((r) => serials.has(r.id))
        .map((r) => ({ ...r, serial: serials.get(r.id)! }))
        .sort((a, b) => a.serial - b.serial);
    return buildCascadeTree({ ...o, districtName: inv.districtName }, withSerial(inv.zones), withSerial(inv.schools), inv.cameras);
  });
}

/** The tree from rows (pure: tested through the spec's Catalog). */
export function buildCascadeTree(
  o: { localId: string; civilCode: string; name: string; districtName: string },
  zones: { id: string; name: string; serial: number }[],
  schools: { id: string; name: string; zoneId: string | null; serial: number }[],
  cameras: { schoolId: string; channelId: string; name: string; location: string; status: string; vendor: string; model: string }[],
): CascadeTree {
  const civil = civilCodeOf(o.localId, o.civilCode);
  const name = o.name || o.districtName || civil;
  const group = orgId(o.localId, 215, 1);
  const items: CascadeItem[] = [
    { kind: 'civil', deviceId: civil, name },
    { kind: 'group', deviceId: group, name, civilCode: civil },
  ];
  const zoneIds = new Map<string, string>();
  for (const z of zones) {
    const id = orgId(o.localId, 216, z.serial);
    zoneIds.set(z.id, id);
    items.push({ kind: 'org', deviceId: id, name: z.name, parentId: group, businessGroupId: group });
  }
  const schoolIds = new Map<string, { id: string; name: string }>();
  for (const s of schools) {
    const id = orgId(o.localId, 216, s.serial);
    schoolIds.set(s.id, { id, name: s.name });
    items.push({ kind: 'org', deviceId: id, name: s.name, parentId: (s.zoneId && zoneIds.get(s.zoneId)) || group, businessGroupId: group });
  }
  const seen = new Set<string>(items.map((i) => i.deviceId));
  const cameraStatus = new Map<string, 'ON' | 'OFF'>();
  let duplicates = 0;
  for (const c of cameras) {
    const school = schoolIds.get(c.schoolId);
    if (!school) continue;
    if (seen.has(c.channelId)) {
      duplicates++;
      continue;
    }
    seen.add(c.channelId);
    const status = c.status === 'online' ? 'ON' : 'OFF';
    cameraStatus.set(c.channelId, status);
    items.push({
      kind: 'camera',
      deviceId: c.channelId,
      name: c.name,
      parentId: school.id,
      businessGroupId: group,
      civilCode: civil,
      manufacturer: c.vendor,
      model: c.model,
      address: c.location ? `${school.name} ${c.location}` : school.name,
      status,
    });
  }
  return { items, duplicates, cameraStatus, cameras: cameraStatus.size };
}

const escapeXml = (s: string) => s.replace(/[<>&"']/g, (c) => `&${{ '<': 'lt', '>': 'gt', '&': 'amp', '"': 'quot', "'": 'apos' }[c]};`);

function itemXml(i: CascadeItem): string {
  const f = (k: string, v: string | number | undefined) => (v === undefined ? '' : `<${k}>${escapeXml(String(v))}</${k}>\r\n`);
  if (i.kind === 'civil') return `<Item>\r\n${f('DeviceID', i.deviceId)}${f('Name', i.name)}</Item>\r\n`;
  if (i.kind === 'group') return `<Item>\r\n${f('DeviceID', i.deviceId)}${f('Name', i.name)}${f('CivilCode', i.civilCode)}</Item>\r\n`;
  if (i.kind === 'org')
    return `<Item>\r\n${f('DeviceID', i.deviceId)}${f('Name', i.name)}${f('ParentID', i.parentId)}${f('BusinessGroupID', i.businessGroupId)}</Item>\r\n`;
  return (
    `<Item>\r\n${f('DeviceID', i.deviceId)}${f('Name', i.name)}${f('Manufacturer', i.manufacturer)}${f('Model', i.model)}${f('Owner', 'Owner')}` +
    `${f('CivilCode', i.civilCode)}${f('Address', i.address)}${f('Parental', 0)}${f('ParentID', i.parentId)}${f('BusinessGroupID', i.businessGroupId)}` +
    `${f('SafetyWay', 0)}${f('RegisterWay', 1)}${f('Secrecy', 0)}${f('Status', i.status)}</Item>\r\n`
  );
}

/** A MANSCDP document in the configured charset (GB18030 declared GB2312, GB/T 28181-2016 §A.1; or UTF-8). */
export function encodeDoc(root: 'Response' | 'Notify', inner: string, charset: 'GB18030' | 'UTF-8'): Buffer {
  const xml = `<?xml version="1.0" encoding="${charset === 'UTF-8' ? 'UTF-8' : 'GB2312'}"?>\r\n<${root}>\r\n${inner}</${root}>\r\n`;
  return charset === 'UTF-8' ? Buffer.from(xml, 'utf8') : iconv.encode(xml, 'gb18030');
}

/** Simple fields as MANSCDP elements (text escaped). */
export function fieldsXml(fields: [string, string | number][]): string {
  return fields.map(([k, v]) => `<${k}>${escapeXml(String(v))}</${k}>\r\n`).join('');
}

/** The Catalog Response MESSAGE bodies: every part carries SumNum (the whole count) and its DeviceList Num. */
export function catalogParts(o: { sn: string; localId: string; items: CascadeItem[]; perMessage: number; charset: 'GB18030' | 'UTF-8' }): Buffer[] {
  const out: Buffer[] = [];
  const head = fieldsXml([
    ['CmdType', 'Catalog'],
    ['SN', o.sn],
    ['DeviceID', o.localId],
    ['SumNum', o.items.length],
  ]);
  for (let i = 0; i < o.items.length || (i === 0 && out.length === 0); i += o.perMessage) {
    const part = o.items.slice(i, i + o.perMessage);
    out.push(encodeDoc('Response', `${head}<DeviceList Num="${part.length}">\r\n${part.map(itemXml).join('')}</DeviceList>\r\n`, o.charset));
    if (o.items.length === 0) break;
  }
  return out;
}

/** What a superior is told of one camera's status (§A.2.5.3 Event): up, down, or down as faulty. */
export type CascadeEvent = 'ON' | 'OFF' | 'DEFECT';

/** A camera's health status as its Catalog Notify Event: online ON, fault DEFECT, anything else (offline, unknown) OFF. */
export function cascadeEventOf(status: string): CascadeEvent {
  return status === 'online' ? 'ON' : status === 'fault' ? 'DEFECT' : 'OFF';
}

/**
 * A Catalog Notify of camera status changes (GB/T 28181-2016 §9.11 / §A.2.5.3, the form
 * wvp-GB28181-pro sends and reads): our id, then an Item per camera with its DeviceID and Event.
 * Each message stands alone: SumNum is its own item count.
 */
export function statusNotifyBody(o: {
  sn: number;
  localId: string;
  changes: { channelId: string; event: CascadeEvent }[];
  charset: 'GB18030' | 'UTF-8';
}): Buffer {
  const items = o.changes
    .map(
      (c) =>
        `<Item>\r\n${fieldsXml([
          ['DeviceID', c.channelId],
          ['Event', c.event],
        ])}</Item>\r\n`,
    )
    .join('');
  const head = fieldsXml([
    ['CmdType', 'Catalog'],
    ['SN', o.sn],
    ['DeviceID', o.localId],
    ['SumNum', o.changes.length],
  ]);
  return encodeDoc('Notify', `${head}<DeviceList Num="${o.changes.length}">\r\n${items}</DeviceList>\r\n`, o.charset);
}

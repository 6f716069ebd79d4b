/**
 * The demo district, as plain data: a deterministic model of Banan district, Chongqing (巴南区).
 * Pure functions, no I/O: `buildDistrict()` returns the same rows on every call, so the seed
 * is reproducible and can be checked without a database.
 *
 * Facts taken from the bureau's report (/work/shared/seed): 4534 networked cameras, 4 middle-
 * school and 10 primary-school zones (学区) covering the compulsory-education schools, education
 * groups (鱼洞二小、鱼洞四小、清华小学…) from which 大城小学 and 融汇小学 became independent,
 * 渝汇小学 as a branch of the 清华小学 group, and the schools the report names.
 */
import type { AreaKind, SchoolType, ZoneLevel } from '../../modules/registry';
import { type PostWindow, requiredGuards as staffingRequiredGuards, type TermCalendar, type Timetable } from '../../modules/school-day';

export const DISTRICT = { code: 'CQ-BANAN', name: '重庆市巴南区', timezone: 'Asia/Shanghai' };
/** GB/T 2260 administrative code of 巴南区: the first six digits of every GB/T 28181 id. */
export const DISTRICT_ADMIN_CODE = '500113';
export const TOTAL_CAMERAS = 4534;

// GB/T 28181-2016 Annex D, rule with network id: centre(8) + industry(2) + type(3) + network(1) + serial(6).
const CENTRE = `${DISTRICT_ADMIN_CODE}00`;
const INDUSTRY_EDUCATION = '11'; // 教育部门接入
export const GB_TYPE_NVR = '118';
export const GB_TYPE_IPC = '132';
const NETWORK = '0'; // 监控报警专网
const CHANNELS_PER_NVR = 64;

export function gbId(type: string, serial: number): string {
  if (!Number.isInteger(serial) || serial < 0 || serial > 999_999) throw new Error(`GB/T 28181 serial out of range: ${serial}`);
  return `${CENTRE}${INDUSTRY_EDUCATION}${type}${NETWORK}${String(serial).padStart(6, '0')}`;
}

/** Required full-time guards: the rule lives in the school-day kernel (src/modules/school-day/staffing.ts); the seed uses its default. */
export function requiredGuards(people: number): number {
  return staffingRequiredGuards(people);
}

/** mulberry32: small, fast, good enough for demo data; fixed seed ⇒ same district every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------
// Geography: streets and towns (街道/镇) of 巴南区 with approximate centres.

interface Town {
  name: string;
  kind: '街道' | '镇';
  lat: number;
  lng: number;
  urban: boolean;
  middleZone: string;
  primaryZone: string;
  roads: string[];
}

const TOWNS: Town[] = [
  {
    name: '鱼洞',
    kind: '街道',
    lat: 29.383,
    lng: 106.521,
    urban: true,
    middleZone: 'BN-ZM1',
    primaryZone: 'BN-ZP01',
    roads: ['鱼洞新市街', '箭河路', '巴滨路', '渝南大道', '新华书店街', '龙海大道'],
  },
  {
    name: '龙洲湾',
    kind: '街道',
    lat: 29.356,
    lng: 106.531,
    urban: true,
    middleZone: 'BN-ZM1',
    primaryZone: 'BN-ZP02',
    roads: ['龙洲大道', '龙泽路', '龙湖路', '巴县大道', '典雅路', '龙德路'],
  },
  {
    name: '李家沱',
    kind: '街道',
    lat: 29.469,
    lng: 106.528,
    urban: true,
    middleZone: 'BN-ZM2',
    primaryZone: 'BN-ZP03',
    roads: ['渝南大道', '李九路', '融汇大道', '马王坪正街', '鱼胡路'],
  },
  {
    name: '花溪',
    kind: '街道',
    lat: 29.449,
    lng: 106.559,
    urban: true,
    middleZone: 'BN-ZM2',
    primaryZone: 'BN-ZP04',
    roads: ['红光大道', '花溪正街', '大江路', '工业园路', '民主新街'],
  },
  {
    name: '南泉',
    kind: '街道',
    lat: 29.432,
    lng: 106.626,
    urban: false,
    middleZone: 'BN-ZM2',
    primaryZone: 'BN-ZP05',
    roads: ['南泉路', '虎啸路', '迎宾路', '温泉路'],
  },
  {
    name: '一品',
    kind: '街道',
    lat: 29.368,
    lng: 106.651,
    urban: false,
    middleZone: 'BN-ZM3',
    primaryZone: 'BN-ZP06',
    roads: ['一品正街', '兴隆路', '彭家湾路'],
  },
  {
    name: '南彭',
    kind: '街道',
    lat: 29.302,
    lng: 106.622,
    urban: false,
    middleZone: 'BN-ZM1',
    primaryZone: 'BN-ZP06',
    roads: ['南彭大道', '华南城路', '公路物流基地大道'],
  },
  { name: '惠民', kind: '街道', lat: 29.327, lng: 106.568, urban: false, middleZone: 'BN-ZM1', primaryZone: 'BN-ZP02', roads: ['惠民正街', '惠鱼路'] },
  {
    name: '界石',
    kind: '镇',
    lat: 29.402,
    lng: 106.681,
    urban: false,
    middleZone: 'BN-ZM3',
    primaryZone: 'BN-ZP07',
    roads: ['界石正街', '桂花大道', '石岗路', '界石大道'],
  },
  { name: '安澜', kind: '镇', lat: 29.271, lng: 106.683, urban: false, middleZone: 'BN-ZM3', primaryZone: 'BN-ZP10', roads: ['安澜正街', '新安路'] },
  { name: '跳石', kind: '镇', lat: 29.252, lng: 106.553, urban: false, middleZone: 'BN-ZM1', primaryZone: 'BN-ZP10', roads: ['跳石正街', '金竹路'] },
  { name: '木洞', kind: '镇', lat: 29.561, lng: 106.843, urban: false, middleZone: 'BN-ZM4', primaryZone: 'BN-ZP08', roads: ['木洞正街', '滨江路', '中坝路'] },
  { name: '双河口', kind: '镇', lat: 29.503, lng: 106.801, urban: false, middleZone: 'BN-ZM4', primaryZone: 'BN-ZP08', roads: ['双河口正街', '清溪路'] },
  { name: '麻柳嘴', kind: '镇', lat: 29.583, lng: 106.882, urban: false, middleZone: 'BN-ZM4', primaryZone: 'BN-ZP08', roads: ['麻柳正街', '江滨路'] },
  { name: '丰盛', kind: '镇', lat: 29.471, lng: 106.932, urban: false, middleZone: 'BN-ZM4', primaryZone: 'BN-ZP09', roads: ['丰盛古镇路', '丰盛正街'] },
  { name: '二圣', kind: '镇', lat: 29.352, lng: 106.801, urban: false, middleZone: 'BN-ZM4', primaryZone: 'BN-ZP09', roads: ['二圣正街', '天坪路'] },
  { name: '东泉', kind: '镇', lat: 29.452, lng: 106.881, urban: false, middleZone: 'BN-ZM4', primaryZone: 'BN-ZP09', roads: ['东泉正街', '温泉大道'] },
  { name: '姜家', kind: '镇', lat: 29.262, lng: 106.802, urban: false, middleZone: 'BN-ZM4', primaryZone: 'BN-ZP09', roads: ['姜家正街', '文石路'] },
  { name: '天星寺', kind: '镇', lat: 29.221, lng: 106.671, urban: false, middleZone: 'BN-ZM3', primaryZone: 'BN-ZP10', roads: ['天星正街', '芦溪路'] },
  { name: '接龙', kind: '镇', lat: 29.142, lng: 106.722, urban: false, middleZone: 'BN-ZM3', primaryZone: 'BN-ZP10', roads: ['接龙正街', '小观路'] },
  { name: '石滩', kind: '镇', lat: 29.101, lng: 106.631, urban: false, middleZone: 'BN-ZM3', primaryZone: 'BN-ZP10', roads: ['石滩正街', '清和路'] },
  { name: '石龙', kind: '镇', lat: 29.202, lng: 106.781, urban: false, middleZone: 'BN-ZM3', primaryZone: 'BN-ZP10', roads: ['石龙正街', '马义路'] },
  { name: '圣灯山', kind: '镇', lat: 29.331, lng: 106.733, urban: false, middleZone: 'BN-ZM3', primaryZone: 'BN-ZP07', roads: ['圣灯山正街', '堡堂路'] },
];
const townByName = new Map(TOWNS.map((t) => [t.name, t]));

export interface ZoneRow {
  code: string;
  name: string;
  level: ZoneLevel;
}

export const ZONES: ZoneRow[] = [
  { code: 'BN-ZM1', name: '鱼洞初中学区', level: 'middle' },
  { code: 'BN-ZM2', name: '李家沱初中学区', level: 'middle' },
  { code: 'BN-ZM3', name: '界石初中学区', level: 'middle' },
  { code: 'BN-ZM4', name: '木洞初中学区', level: 'middle' },
  { code: 'BN-ZP01', name: '鱼洞小学学区', level: 'primary' },
  { code: 'BN-ZP02', name: '龙洲湾小学学区', level: 'primary' },
  { code: 'BN-ZP03', name: '李家沱小学学区', level: 'primary' },
  { code: 'BN-ZP04', name: '花溪小学学区', level: 'primary' },
  { code: 'BN-ZP05', name: '南泉小学学区', level: 'primary' },
  { code: 'BN-ZP06', name: '一品南彭小学学区', level: 'primary' },
  { code: 'BN-ZP07', name: '界石小学学区', level: 'primary' },
  { code: 'BN-ZP08', name: '木洞小学学区', level: 'primary' },
  { code: 'BN-ZP09', name: '丰盛二圣小学学区', level: 'primary' },
  { code: 'BN-ZP10', name: '接龙安澜小学学区', level: 'primary' },
];

export interface GroupRow {
  code: string;
  name: string;
}

/** 教育集团 ("名校+新校"): a core school with its branches and incubated schools. */
export const GROUPS: GroupRow[] = [
  { code: 'BN-G01', name: '鱼洞二小教育集团' },
  { code: 'BN-G02', name: '鱼洞四小教育集团' },
  { code: 'BN-G03', name: '清华小学教育集团' },
  { code: 'BN-G04', name: '李家沱小学教育集团' },
  { code: 'BN-G05', name: '花溪小学教育集团' },
  { code: 'BN-G06', name: '界石小学教育集团' },
  { code: 'BN-G07', name: '巴南中学教育集团' },
  { code: 'BN-G08', name: '清华中学教育集团' },
  { code: 'BN-G09', name: '田家炳中学教育集团' },
  { code: 'BN-G10', name: '实验中学教育集团' },
  { code: 'BN-G11', name: '巴南区机关幼儿园教育集团' },
  { code: 'BN-G12', name: '云水苑幼儿园教育集团' },
];

// ---------------------------------------------------------------------------------------------
// Schools.

export interface SchoolSpec {
  code: string;
  name: string;
  type: SchoolType;
  town: string;
  group?: string;
  /** Login of the demo school_security user, for the schools the report names. */
  securityUser?: string;
  students?: number;
  boarding?: boolean;
}

/** The schools the report names (and a few well-known ones they stand beside). */
export const NAMED_SCHOOLS: SchoolSpec[] = [
  { code: 'BNP001', name: '箭滩河小学', type: 'primary', town: '龙洲湾', securityUser: 'jth.security', students: 1850 },
  { code: 'BNP002', name: '鱼洞二小', type: 'primary', town: '鱼洞', group: 'BN-G01', students: 2650 },
  { code: 'BNP003', name: '鱼洞二小（龙泽路校区）', type: 'primary', town: '龙洲湾', group: 'BN-G01', securityUser: 'ydez-lzl.security', students: 1620 },
  { code: 'BNP004', name: '鱼洞四小', type: 'primary', town: '鱼洞', group: 'BN-G02', securityUser: 'ydsx.security', students: 2480 },
  { code: 'BNP005', name: '典雅小学', type: 'primary', town: '龙洲湾', group: 'BN-G01', securityUser: 'dy.security', students: 1960 },
  { code: 'BNP006', name: '渝汇小学', type: 'primary', town: '李家沱', group: 'BN-G03', securityUser: 'yh.security', students: 1280 },
  { code: 'BNP007', name: '南温泉小学', type: 'primary', town: '南泉', securityUser: 'nwq.security', students: 720 },
  { code: 'BNP008', name: '清华小学', type: 'primary', town: '鱼洞', group: 'BN-G03', securityUser: 'qh.security', students: 2890 },
  { code: 'BNP009', name: '大城小学', type: 'primary', town: '龙洲湾', securityUser: 'dc.security', students: 1540 },
  { code: 'BNP010', name: '融汇小学', type: 'primary', town: '李家沱', securityUser: 'rh.security', students: 1710 },
  { code: 'BNM001', name: '华南城中学', type: 'middle', town: '南彭', securityUser: 'hnc.security', students: 1380, boarding: true },
  { code: 'BNM002', name: '田家炳中学', type: 'middle', town: '鱼洞', group: 'BN-G09', securityUser: 'tjb.security', students: 2240 },
  { code: 'BNK001', name: '云水苑幼儿园', type: 'kindergarten', town: '鱼洞', group: 'BN-G12', securityUser: 'ysy.security', students: 420 },
  { code: 'BNP011', name: '李家沱小学', type: 'primary', town: '李家沱', group: 'BN-G04', students: 2360 },
  { code: 'BNP012', name: '花溪小学', type: 'primary', town: '花溪', group: 'BN-G05', students: 2120 },
  { code: 'BNP013', name: '界石小学', type: 'primary', town: '界石', group: 'BN-G06', students: 1480 },
  { code: 'BNH001', name: '巴南中学', type: 'high', town: '鱼洞', group: 'BN-G07', students: 4200, boarding: true },
  { code: 'BNH002', name: '清华中学', type: 'high', town: '李家沱', group: 'BN-G08', students: 3900, boarding: true },
  { code: 'BNH003', name: '实验中学', type: 'high', town: '龙洲湾', group: 'BN-G10', students: 3300, boarding: true },
  { code: 'BNK002', name: '巴南区机关幼儿园', type: 'kindergarten', town: '鱼洞', group: 'BN-G11', students: 460 },
  { code: 'BNV001', name: '巴南区职业教育中心', type: 'vocational', town: '鱼洞', students: 4600, boarding: true },
  { code: 'BNV002', name: '重庆市机械高级技工学校', type: 'vocational', town: '界石', students: 3800, boarding: true },
  { code: 'BNV003', name: '重庆五一高级技工学校', type: 'vocational', town: '花溪', students: 3500, boarding: true },
  { code: 'BNV004', name: '巴南区龙洲湾职业技术学校', type: 'vocational', town: '龙洲湾', students: 2100, boarding: true },
];

/** How many schools of each type the district has in all (named + generated). */
const TYPE_COUNTS: Record<SchoolType, number> = { kindergarten: 62, primary: 84, nine_year: 10, middle: 30, high: 10, vocational: 4 };
const TYPE_LETTER: Record<SchoolType, string> = { kindergarten: 'K', primary: 'P', nine_year: 'N', middle: 'M', high: 'H', vocational: 'V' };

/** Local place names (小区、片区、山水) that schools in town are named after. */
const PLACES = [
  '巴滨路',
  '龙海',
  '箭河',
  '鱼轿',
  '新华',
  '渝南',
  '龙湖',
  '龙德',
  '云篆山水',
  '滨江',
  '红光',
  '马王坪',
  '鱼胡',
  '春晖',
  '民主',
  '大江',
  '白鹤',
  '仙女',
  '龙凤',
  '彩云湖',
  '金竹',
  '清溪',
  '虎啸',
  '桂花',
  '石岗',
  '莲花',
  '观音岩',
  '长生',
  '天坪',
  '文石',
  '芦溪',
  '小观',
  '清和',
  '马义',
  '堡堂',
  '中坝',
  '江滨',
  '兴隆',
  '彭家湾',
  '惠鱼',
  '新安',
  '五布',
  '百节',
  '双新',
  '丰岩',
  '鹿角',
  '梓潼',
  '南湖',
  '明月',
  '寨子',
];

export interface SchoolRow {
  code: string;
  name: string;
  type: SchoolType;
  zoneCode: string | null;
  groupCode: string | null;
  address: string;
  lat: number;
  lng: number;
  studentCount: number;
  staffCount: number;
  boarding: boolean;
  /** The school card (issue 13). Demo values: names by role, fictitious numbers derived from the index (no random draw, so the rest of the seed is unchanged). */
  securityChiefName: string;
  securityChiefPhone: string;
  principalName: string;
  principalPhone: string;
  policeStationName: string;
  policeStationPhone: string;
  timetable: Timetable;
  calendar: TermCalendar;
  /** Index 1…n in code order: the school's block of GB/T 28181 serials. */
  index: number;
  securityUser?: string;
}

const TIMETABLES: Record<SchoolType, { arrival: [string, string]; dismissal: [string, string]; hours: [string, string] }> = {
  kindergarten: { arrival: ['07:50', '08:40'], dismissal: ['16:30', '17:30'], hours: ['07:50', '17:30'] },
  primary: { arrival: ['07:40', '08:20'], dismissal: ['16:10', '17:00'], hours: ['07:40', '17:00'] },
  nine_year: { arrival: ['07:30', '08:10'], dismissal: ['16:40', '17:40'], hours: ['07:30', '17:40'] },
  middle: { arrival: ['07:10', '07:50'], dismissal: ['17:20', '18:00'], hours: ['07:10', '18:00'] },
  high: { arrival: ['06:50', '07:30'], dismissal: ['17:50', '18:30'], hours: ['06:50', '18:30'] },
  vocational: { arrival: ['07:50', '08:30'], dismissal: ['17:00', '17:40'], hours: ['07:50', '17:40'] },
};

const shift = (hhmm: string, minutes: number): string => {
  const [h, m] = hhmm.split(':').map(Number);
  const t = h * 60 + m + minutes;
  return `${String(Math.floor(t / 60)).padStart(2, '0')}:${String(t % 60).padStart(2, '0')}`;
};

function timetableFor(type: SchoolType, offsetMinutes: number): Timetable {
  const t = TIMETABLES[type];
  const w = (pair: [string, string]) => ({ start: shift(pair[0], offsetMinutes), end: shift(pair[1], offsetMinutes) });
  return { weekdays: [1, 2, 3, 4, 5], arrival: w(t.arrival), dismissal: w(t.dismissal), schoolHours: w(t.hours) };
}

const dayRange = (from: string, to: string): string[] => {
  const out: string[] = [];
  for (let d = new Date(`${from}T00:00:00Z`); d <= new Date(`${to}T00:00:00Z`); d.setUTCDate(d.getUTCDate() + 1)) out.push(d.toISOString().slice(0, 10));
  return out;
};

/**
 * 2026–27 school year (重庆 calendar): autumn term 1 Sep – 22 Jan, winter break over the Spring
 * Festival (6 Feb 2027), spring term 22 Feb – 2 Jul. Public holidays inside the terms per the
 * State Council pattern; make-up working days (调休) are not modelled by the calendar.
 */
export const CALENDAR_2026_27: TermCalendar = {
  terms: [
    { start: '2026-09-01', end: '2027-01-22' },
    { start: '2027-02-22', end: '2027-07-02' },
  ],
  holidays: [
    ...dayRange('2026-09-25', '2026-09-27'), // 中秋节
    ...dayRange('2026-10-01', '2026-10-07'), // 国庆节
    ...dayRange('2027-01-01', '2027-01-03'), // 元旦
    ...dayRange('2027-04-03', '2027-04-05'), // 清明节
    ...dayRange('2027-05-01', '2027-05-05'), // 劳动节
    ...dayRange('2027-06-09', '2027-06-11'), // 端午节
  ],
};

const STUDENT_RANGE: Record<SchoolType, [number, number, number]> = {
  // [rural min, urban min, max]
  kindergarten: [90, 220, 480],
  primary: [120, 900, 2800],
  nine_year: [300, 700, 1800],
  middle: [400, 900, 2400],
  high: [1500, 2500, 4300],
  vocational: [1500, 2000, 5000],
};
const PUPILS_PER_STAFF: Record<SchoolType, number> = { kindergarten: 8, primary: 17, nine_year: 14, middle: 12, high: 11, vocational: 14 };

function generatedName(type: SchoolType, town: Town, n: number, place: string): string {
  const t = town.name;
  switch (type) {
    case 'kindergarten':
      return n === 0 ? `${t}中心幼儿园` : `${place}幼儿园`;
    case 'primary':
      return n === 0 ? `${t}中心小学` : town.urban && n <= 3 ? `${t}${['', '一', '三', '五'][n]}小` : `${place}小学`;
    case 'nine_year':
      return `${t}${place}九年制学校`;
    case 'middle':
      return n === 0 ? `${t}中学` : `${place}中学`;
    case 'high':
      return `${t}${place}高级中学`;
    case 'vocational':
      return `${t}职业技术学校`;
  }
}

/** Every school of the district, in code order. */
export function buildSchools(): SchoolRow[] {
  const rand = prng(0x5c11);
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
  const specs: SchoolSpec[] = [...NAMED_SCHOOLS];
  const names = new Set(specs.map((s) => s.name));
  const perTypeTown = new Map<string, number>();
  for (const s of specs) perTypeTown.set(`${s.type}|${s.town}`, (perTypeTown.get(`${s.type}|${s.town}`) ?? 0) + 1);
  const usedPlaces = new Set<string>();

  // Urban streets get more schools than rural towns: weight the town draw.
  const weighted = TOWNS.flatMap((t) => Array(t.urban ? 5 : 1).fill(t) as Town[]);
  for (const type of Object.keys(TYPE_COUNTS) as SchoolType[]) {
    let serial = specs.filter((s) => s.type === type).length;
    const groupsOfType =
      type === 'kindergarten'
        ? ['BN-G11', 'BN-G12']
        : type === 'primary'
          ? ['BN-G01', 'BN-G02', 'BN-G03', 'BN-G04', 'BN-G05', 'BN-G06']
          : type === 'middle' || type === 'nine_year'
            ? ['BN-G07', 'BN-G08', 'BN-G09', 'BN-G10']
            : [];
    while (serial < TYPE_COUNTS[type]) {
      // Every town gets its centre kindergarten, primary and middle school before any town gets a second.
      const town = serial < TOWNS.length + 3 && ['kindergarten', 'primary', 'middle'].includes(type) ? TOWNS[serial % TOWNS.length] : pick(weighted);
      const key = `${type}|${town.name}`;
      const n = perTypeTown.get(key) ?? 0;
      let place = pick(PLACES);
      for (let i = 0; usedPlaces.has(`${type}|${place}`) && i < PLACES.length; i++) place = PLACES[(PLACES.indexOf(place) + 1) % PLACES.length];
      if (usedPlaces.has(`${type}|${place}`)) place = `${town.name}${place}`; // every place taken: qualify by town
      const name = generatedName(type, town, n, place);
      if (names.has(name)) {
        perTypeTown.set(key, n + 1);
        continue;
      }
      names.add(name);
      usedPlaces.add(`${type}|${place}`);
      perTypeTown.set(key, n + 1);
      serial++;
      specs.push({
        code: `BN${TYPE_LETTER[type]}${String(serial).padStart(3, '0')}`,
        name,
        type,
        town: town.name,
        group: groupsOfType.length && rand() < 0.3 ? pick(groupsOfType) : undefined,
      });
    }
  }

  specs.sort((a, b) => a.code.localeCompare(b.code));
  return specs.map((s, i) => {
    const town = townByName.get(s.town)!;
    const [ruralMin, urbanMin, max] = STUDENT_RANGE[s.type];
    const min = town.urban ? urbanMin : ruralMin;
    const students = s.students ?? Math.round((min + rand() * rand() * (max - min)) / 10) * 10;
    const staff = Math.max(8, Math.round(students / PUPILS_PER_STAFF[s.type] + rand() * 8));
    // Rural middle and nine-year schools board; high and vocational schools mostly do.
    const boarding =
      s.boarding ?? (s.type === 'high' || s.type === 'vocational' || ((s.type === 'middle' || s.type === 'nine_year') && !town.urban && rand() < 0.7));
    const road = pick(town.roads);
    const zoneCode = s.type === 'vocational' ? null : s.type === 'middle' || s.type === 'high' || s.type === 'nine_year' ? town.middleZone : town.primaryZone;
    return {
      code: s.code,
      name: s.name,
      type: s.type,
      zoneCode,
      groupCode: s.group ?? null,
      address: `重庆市巴南区${town.name}${town.kind}${road}${1 + Math.floor(rand() * 399)}号`,
      lat: round6(town.lat + (rand() - 0.5) * 0.03),
      lng: round6(town.lng + (rand() - 0.5) * 0.03),
      studentCount: students,
      staffCount: staff,
      boarding,
      securityChiefName: `${s.name}保卫干部`,
      securityChiefPhone: `1380230${String(i + 1).padStart(4, '0')}`,
      principalName: `${s.name}校长`,
      principalPhone: `023-6629${String(i + 1).padStart(4, '0')}`,
      policeStationName: `巴南区公安分局${town.name}派出所`,
      policeStationPhone: `023-6630${String(TOWNS.indexOf(town) + 1).padStart(4, '0')}`,
      timetable: timetableFor(s.type, [0, 0, 5, 10, -5][Math.floor(rand() * 5)]),
      calendar: CALENDAR_2026_27,
      index: i + 1,
      securityUser: s.securityUser,
    };
  });
}

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;

// ---------------------------------------------------------------------------------------------
// Cameras, alarm buttons, guards and posts.

export interface CameraRow {
  schoolCode: string;
  deviceId: string;
  channelId: string;
  name: string;
  location: string;
  areaKind: AreaKind;
  vendor: string;
  model: string;
}

const VENDORS: { vendor: string; models: string[] }[] = [
  { vendor: '海康威视', models: ['DS-2CD3T46WDV3-I3', 'DS-2CD3326WDV3-I', 'DS-2CD2T47G2-LSU/SL', 'DS-2DE4425IW-DE'] },
  { vendor: '大华', models: ['DH-IPC-HFW2433M-I1', 'DH-IPC-HDW2431T-AS', 'DH-IPC-HFW3441DG-AS', 'DH-SD49425XB-HNR'] },
  { vendor: '宇视', models: ['IPC2124LB-SF28KM-G', 'IPC3234SB-ADZK-I0', 'IPC6424SR-X33U'] },
];

/** Labels per area kind; a school's n-th camera of a kind takes the n-th label (then numbers). */
const LABELS: Record<AreaKind, string[]> = {
  main_gate: ['校门口（外）', '校门口（内）', '校门口人行通道', '校门口车行通道'],
  side_gate: ['侧门', '后门', '侧门通道'],
  gatehouse: ['门卫室', '门卫室访客登记处'],
  perimeter: ['东侧围墙', '西侧围墙', '南侧围墙', '北侧围墙', '围墙转角', '后山围墙'],
  stairwell: ['教学楼一号楼梯', '教学楼二号楼梯', '综合楼楼梯', '实验楼楼梯'],
  dormitory: ['学生宿舍大门', '宿舍一楼走廊', '宿舍二楼走廊', '宿舍三楼走廊', '宿管室'],
  canteen: ['食堂就餐区', '食堂后厨', '食堂入口'],
  playground: ['操场主席台', '操场跑道', '篮球场', '运动场北侧'],
  classroom_corridor: ['一楼走廊', '二楼走廊', '三楼走廊', '四楼走廊', '五楼走廊'],
  teaching_building: ['教学楼大厅', '综合楼大厅', '图书室', '功能室走廊'],
  parking: ['停车场', '地下车库入口'],
  other: ['配电房', '心理咨询室外', '校医室外'],
};

/** Share of a school's cameras beyond the fixed minimum, per area kind. */
const AREA_WEIGHTS: [AreaKind, number][] = [
  ['classroom_corridor', 22],
  ['perimeter', 16],
  ['stairwell', 14],
  ['playground', 9],
  ['teaching_building', 9],
  ['main_gate', 6],
  ['canteen', 7],
  ['dormitory', 12], // boarding schools only
  ['side_gate', 3],
  ['parking', 3],
  ['other', 2],
];

/** Splits `total` across schools in proportion to their size (largest remainder), at least 8 each. */
export function cameraCounts(schools: SchoolRow[], total = TOTAL_CAMERAS): number[] {
  const min = 8;
  const weights = schools.map((s) => Math.sqrt(s.studentCount + s.staffCount) * (s.boarding ? 1.3 : 1));
  const spare = total - min * schools.length;
  const sum = weights.reduce((a, b) => a + b, 0);
  const raw = weights.map((w) => (w / sum) * spare);
  const counts = raw.map((r) => min + Math.floor(r));
  let left = total - counts.reduce((a, b) => a + b, 0);
  const order = raw.map((r, i) => [r - Math.floor(r), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let k = 0; left > 0; k++, left--) counts[order[k % order.length][1]]++;
  return counts;
}

function areaPlan(school: SchoolRow, count: number, rand: () => number): AreaKind[] {
  // Every school: two at the main gate, one in the gatehouse, one on the perimeter, one on the playground.
  const kinds: AreaKind[] = ['main_gate', 'main_gate', 'gatehouse', 'perimeter', 'playground'];
  if (count >= 12) kinds.push('side_gate', 'canteen', 'stairwell');
  if (school.boarding) kinds.push('dormitory', 'dormitory');
  const weights = AREA_WEIGHTS.filter(([k]) => k !== 'dormitory' || school.boarding);
  const totalWeight = weights.reduce((a, [, w]) => a + w, 0);
  while (kinds.length < count) {
    let x = rand() * totalWeight;
    const hit = weights.find(([, w]) => (x -= w) < 0) ?? weights[0];
    kinds.push(hit[0]);
  }
  return kinds.slice(0, count);
}

export interface AlarmRow {
  schoolCode: string;
  code: string;
  location: string;
  areaKind: AreaKind;
  policeLinked: boolean;
  /** Cameras covering the button, by (deviceId, channelId). */
  linkedCameras: { deviceId: string; channelId: string }[];
}

export interface GuardRow {
  schoolCode: string;
  name: string;
  licenceNo: string;
  fullTime: boolean;
  phone: string;
}

export interface PostRow {
  schoolCode: string;
  code: string;
  gate: string;
  windows: PostWindow[];
  requiredHeadcount: number;
}

const SURNAMES = '王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程魏苏吕丁任沈姚卢钟谭廖'.split('');
const GIVEN = '建国军华明强伟勇平刚磊洪涛斌超波辉鹏杰峰亮林兵红英秀兰芳霞燕玉梅丽萍春德福文武成志永祥'.split('');

export interface District {
  schools: SchoolRow[];
  cameras: CameraRow[];
  alarms: AlarmRow[];
  guards: GuardRow[];
  posts: PostRow[];
}

/** The whole demo district. Same output on every call. */
export function buildDistrict(): District {
  const schools = buildSchools();
  const counts = cameraCounts(schools);
  const rand = prng(0x4534);
  const cameras: CameraRow[] = [];
  const alarms: AlarmRow[] = [];
  const guards: GuardRow[] = [];
  const posts: PostRow[] = [];
  let guardSerial = 0;

  schools.forEach((school, si) => {
    // One brand per school (they buy in one tender), NVRs of 64 channels.
    const brand = VENDORS[Math.floor(rand() * VENDORS.length)];
    const kinds = areaPlan(school, counts[si], rand);
    const seen = new Map<AreaKind, number>();
    const mine: CameraRow[] = kinds.map((kind, ci) => {
      const nth = seen.get(kind) ?? 0;
      seen.set(kind, nth + 1);
      const labels = LABELS[kind];
      const label = nth < labels.length ? labels[nth] : `${labels[nth % labels.length]}${Math.floor(nth / labels.length) + 1}`;
      const nvr = Math.floor(ci / CHANNELS_PER_NVR);
      return {
        schoolCode: school.code,
        deviceId: gbId(GB_TYPE_NVR, school.index * 10 + nvr),
        channelId: gbId(GB_TYPE_IPC, school.index * 1000 + ci + 1),
        name: `${school.name}${label}`,
        location: label,
        areaKind: kind,
        vendor: brand.vendor,
        model: brand.models[Math.floor(rand() * brand.models.length)],
      };
    });
    cameras.push(...mine);
    const at = (k: AreaKind) => mine.filter((c) => c.areaKind === k).map((c) => ({ deviceId: c.deviceId, channelId: c.channelId }));

    // 一键报警: mandatory at the gatehouse, linked to police and to the gate cameras.
    alarms.push({
      schoolCode: school.code,
      code: `${school.code}-AB01`,
      location: '门卫室',
      areaKind: 'gatehouse',
      policeLinked: true,
      linkedCameras: [...at('gatehouse'), ...at('main_gate')],
    });
    const people = school.studentCount + school.staffCount;
    if (people > 1500 || school.boarding) {
      const kind: AreaKind = school.boarding && at('dormitory').length ? 'dormitory' : at('side_gate').length ? 'side_gate' : 'teaching_building';
      alarms.push({
        schoolCode: school.code,
        code: `${school.code}-AB02`,
        location: kind === 'dormitory' ? '宿管室' : kind === 'side_gate' ? '侧门' : '教学楼大厅',
        areaKind: kind,
        policeLinked: true,
        linkedCameras: at(kind),
      });
    }
    if (people > 3000)
      alarms.push({ schoolCode: school.code, code: `${school.code}-AB03`, location: '校长办公室', areaKind: 'other', policeLinked: false, linkedCameras: [] });

    // Guards: most schools meet the rule, about one in twelve is deliberately one or two short.
    const required = requiredGuards(people);
    const short = rand() < 0.085 ? Math.min(required - 1, 1 + Math.floor(rand() * 2)) : 0;
    const fullTime = required - short + (short === 0 && rand() < 0.3 ? 1 : 0);
    const partTime = rand() < 0.25 ? 1 : 0;
    for (let g = 0; g < fullTime + partTime; g++) {
      guardSerial++;
      guards.push({
        schoolCode: school.code,
        name:
          SURNAMES[Math.floor(rand() * SURNAMES.length)] +
          GIVEN[Math.floor(rand() * GIVEN.length)] +
          (rand() < 0.6 ? GIVEN[Math.floor(rand() * GIVEN.length)] : ''),
        licenceNo: `CQBN-2026-${String(guardSerial).padStart(5, '0')}`,
        fullTime: g < fullTime,
        // 1990000xxxx: obviously fake numbers, never a real subscriber.
        phone: `1990000${String(guardSerial).padStart(4, '0')}`,
      });
    }

    // 护学岗 at the main gate in both windows; big schools also at the side gate.
    const windows: PostWindow[] = [{ kind: 'arrival' }, { kind: 'dismissal' }];
    posts.push({ schoolCode: school.code, code: `${school.code}-HXG1`, gate: '校门口', windows, requiredHeadcount: people > 2000 ? 3 : 2 });
    if (people > 2000 && at('side_gate').length)
      posts.push({ schoolCode: school.code, code: `${school.code}-HXG2`, gate: '侧门', windows, requiredHeadcount: 2 });
  });

  return { schools, cameras, alarms, guards, posts };
}

/** A school's state on the map, worst first: an open alarm, devices offline, an open rectification task, or none of these. */
export type SchoolState = 'alarm' | 'offline' | 'finding' | 'ok';

export interface MapAlarm {
  incidentId: string;
  type: string;
  priority: string;
  firstPressAt: string;
}

export interface MapSchool {
  id: string;
  name: string;
  lat: number | null;
  lng: number | null;
  state: SchoolState;
  openAlarms: MapAlarm[];
  offline: number;
  openTasks: number;
}

/** The parts of the api's answers the map reads (GET /schools, /device-health/summary, /incidents, /rectification-tasks). */
interface SchoolIn {
  id: string;
  name: string;
  lat?: number | string | null;
  lng?: number | string | null;
}
interface HealthIn {
  schoolId: string;
  offline: number;
}
interface IncidentIn extends MapAlarm {
  schoolId: string | null;
}
interface TaskIn {
  schoolId: string;
}

const num = (v: number | string | null | undefined): number | null => {
  if (v === null || v === undefined || v === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
};

export function buildMapSchools(schools: SchoolIn[], health: HealthIn[], incidents: IncidentIn[], tasks: TaskIn[]): MapSchool[] {
  const offline = new Map(health.map((h) => [h.schoolId, h.offline]));
  const alarms = new Map<string, MapAlarm[]>();
  for (const i of incidents) {
    if (!i.schoolId) continue;
    const list = alarms.get(i.schoolId) ?? [];
    list.push({ incidentId: i.incidentId, type: i.type, priority: i.priority, firstPressAt: i.firstPressAt });
    alarms.set(i.schoolId, list);
  }
  const openTasks = new Map<string, number>();
  for (const task of tasks) openTasks.set(task.schoolId, (openTasks.get(task.schoolId) ?? 0) + 1);
  return schools.map((s) => {
    const a = alarms.get(s.id) ?? [];
    const off = offline.get(s.id) ?? 0;
    const tk = openTasks.get(s.id) ?? 0;
    const state: SchoolState = a.length ? 'alarm' : off ? 'offline' : tk ? 'finding' : 'ok';
    return { id: s.id, name: s.name, lat: num(s.lat), lng: num(s.lng), state, openAlarms: a, offline: off, openTasks: tk };
  });
}

export interface Projected {
  points: { school: MapSchool; x: number; y: number }[];
  /** The plane's extent, padded to the drawing's 4:3 box so that a kilometre is as long both ways. */
  box: { x0: number; x1: number; y0: number; y1: number };
}

/**
 * Equirectangular projection around the schools' mean latitude (x = longitude × cos φ₀, y = latitude):
 * over a district (tens of km) the distortion is far below a point's size, and it needs no map data.
 */
export function projectSchools(schools: MapSchool[], aspect = 4 / 3): Projected {
  const located = schools.filter((s) => s.lat !== null && s.lng !== null) as (MapSchool & { lat: number; lng: number })[];
  if (!located.length) return { points: [], box: { x0: 0, x1: 1, y0: 0, y1: 1 } };
  const k = Math.cos((located.reduce((n, s) => n + s.lat, 0) / located.length) * (Math.PI / 180));
  const points = located.map((school) => ({ school, x: school.lng * k, y: school.lat }));
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  // A margin of a tenth (at least ~1 km) around the schools, then widen one side to the box's aspect.
  const pad = Math.max((x1 - x0) * 0.1, (y1 - y0) * 0.1, 0.01);
  [x0, x1, y0, y1] = [x0 - pad, x1 + pad, y0 - pad, y1 + pad];
  const w = x1 - x0;
  const h = y1 - y0;
  if (w / h < aspect) {
    const extra = (h * aspect - w) / 2;
    [x0, x1] = [x0 - extra, x1 + extra];
  } else {
    const extra = (w / aspect - h) / 2;
    [y0, y1] = [y0 - extra, y1 + extra];
  }
  return { points, box: { x0, x1, y0, y1 } };
}

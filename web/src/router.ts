import { createRouter, createWebHistory, type RouteLocationRaw, type RouteRecordRaw } from 'vue-router';
import type { Role } from '@/domain';
import ConsoleLayout from '@/layout/ConsoleLayout.vue';
import { useSession } from '@/stores/session';
import LoginView from '@/views/LoginView.vue';

declare module 'vue-router' {
  interface RouteMeta {
    /** Reachable without a session (the login page). */
    public?: boolean;
    /** Roles the route serves (absent: any logged-in role). */
    roles?: readonly Role[];
  }
}

export interface Surface {
  name: string;
  path: string;
  /** Roles it serves; a role's home is the first surface listing it. */
  roles: readonly Role[];
  component: () => Promise<unknown>;
}

/**
 * The app's surfaces, each a lazily loaded chunk for the roles it serves: the operator surface
 * (auditors get it with no actions) and the school guard's phone app (school_security's home;
 * they may still open the operator page, with only their actions). The supervisor/auditor
 * surfaces and the video wall add entries here.
 */
export const SURFACES: Surface[] = [
  // School security's home: their phone app (the operator page stays reachable at /operator for a desktop).
  {
    name: 'guard',
    path: '/guard',
    roles: ['school_security'],
    component: () => import('@/surfaces/guard/GuardSurface.vue'),
  },
  {
    name: 'operator',
    path: '/operator',
    roles: ['operator', 'supervisor', 'admin', 'auditor', 'school_security'],
    component: () => import('@/surfaces/operator/OperatorSurface.vue'),
  },
  // Alarm history (search, filters, export): nobody's home, reached from the header.
  {
    name: 'history',
    path: '/history',
    roles: ['operator', 'supervisor', 'admin', 'auditor', 'school_security'],
    component: () => import('@/surfaces/history/HistorySurface.vue'),
  },
  // Statistics, trends, audit log and exports (ECharts lives in this chunk only); read-only, auditors included.
  {
    name: 'supervisor',
    path: '/supervisor',
    roles: ['supervisor', 'admin', 'auditor', 'operator'],
    component: () => import('@/surfaces/supervisor/SupervisorSurface.vue'),
  },
  // Video patrol rounds (视频巡查): a wall of live cameras and a verdict per camera; nobody's home, reached from the header.
  {
    name: 'rounds',
    path: '/rounds',
    roles: ['operator', 'supervisor', 'admin'],
    component: () => import('@/surfaces/rounds/RoundsSurface.vue'),
  },
  // The district's schools drawn by their coordinates, coloured by their state (ECharts, in this chunk only); nobody's home, reached from the header.
  {
    name: 'map',
    path: '/map',
    roles: ['operator', 'supervisor', 'admin', 'auditor'],
    component: () => import('@/surfaces/map/MapSurface.vue'),
  },
  // The duty roster and notification channels (issue 14): supervisors and admins edit, operators and auditors read; reached from the header and the duty strip.
  {
    name: 'duty',
    path: '/duty',
    roles: ['operator', 'supervisor', 'admin', 'auditor'],
    component: () => import('@/surfaces/duty/DutySurface.vue'),
  },
  // Protection-post QR codes to print (the bureau's; school security never see a code, attack F8b): nobody's home, reached from the header.
  {
    name: 'postQr',
    path: '/post-qr',
    roles: ['operator', 'supervisor', 'admin'],
    component: () => import('@/surfaces/post-qr/PostQrSurface.vue'),
  },
];

export function homeFor(role: Role | null): RouteLocationRaw {
  const s = role ? SURFACES.find((x) => x.roles.includes(role)) : undefined;
  return s ? { name: s.name } : { name: 'login' };
}

const routes: RouteRecordRaw[] = [
  { path: '/login', name: 'login', component: LoginView, meta: { public: true } },
  {
    path: '/',
    component: ConsoleLayout,
    children: [
      { path: '', name: 'home', component: { render: () => null }, beforeEnter: () => homeFor(useSession().role) },
      // The link in an escalation message (login first; then it opens the incident).
      { path: 'ack/:token', name: 'ack', component: () => import('@/views/AckView.vue') },
      ...SURFACES.map((s): RouteRecordRaw => ({ path: s.path.slice(1), name: s.name, component: s.component, meta: { roles: s.roles } })),
    ],
  },
  { path: '/:pathMatch(.*)*', redirect: '/' },
];

export const router = createRouter({ history: createWebHistory('/console/'), routes });

router.beforeEach(async (to) => {
  const session = useSession();
  if (!session.authenticated && session.tokens) await session.restore();
  if (to.meta.public) return session.authenticated ? homeFor(session.role) : true;
  if (!session.authenticated) return { name: 'login', query: to.name === 'home' ? {} : { redirect: to.fullPath } };
  const roles = to.matched.flatMap((r) => r.meta.roles ?? []);
  if (roles.length && !roles.includes(session.role!)) return homeFor(session.role);
  return true;
});

/**
 * A console left open across a deploy asks for a lazy chunk the new build no longer has: load the
 * new build (once; a second failure in a row is left to the error display).
 */
router.onError((e: Error) => {
  if (!/dynamically imported module|Importing a module script failed|error loading dynamically/i.test(e.message)) return;
  if (sessionStorage.getItem('shouhu.chunkReload')) return;
  sessionStorage.setItem('shouhu.chunkReload', '1');
  location.reload();
});
router.afterEach(() => sessionStorage.removeItem('shouhu.chunkReload'));

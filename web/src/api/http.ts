import type { paths } from '@/shared/api-schema';
import { ApiError } from './errors';
import type { DrillWindowItem } from '@/shared/server';
import type {
  AlarmButton,
  AuditEntryItem,
  CameraItem,
  ComplianceTrend,
  ButtonTest,
  DeviceStatusItem,
  MaintenanceWindow,
  PatrolPlan,
  RegistryUnit,
  DeviceSummary,
  DutyNow,
  FindingItem,
  GbControlResult,
  GbDeviceStatus,
  GbDeviceView,
  GbRecordInfo,
  GuardItem,
  GuardPatrol,
  HandoverView,
  IncidentDetail,
  IncidentStats,
  IncidentView,
  Me,
  NotificationChannel,
  NotificationDelivery,
  OutageItem,
  Page,
  PlayTicket,
  PostCheckin,
  PostQr,
  PatrolRound,
  EvidenceItem,
  ProtectionPostItem,
  RaisedIncident,
  RectificationTask,
  SchoolItem,
  SchoolCompliance,
  TestModeAnswer,
  TokenPair,
} from './responses';

/**
 * The typed REST client. Paths, path parameters, query strings and JSON bodies are checked
 * against the api's OpenAPI document (web/src/shared/api-schema.d.ts, generated); response bodies
 * against `ResponseTypes` below until the document declares them. Errors become `ApiError` with
 * the server's stable code; a request never waits longer than `timeoutMs`.
 */
type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
type Op<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;
/** The paths that have an operation for method M. */
export type PathFor<M extends Method> = { [P in keyof paths]: [Op<P, M>] extends [never] ? never : P }[keyof paths];
type Params<O> = O extends { parameters: infer X } ? X : never;
type QueryOf<O> = Params<O> extends { query?: infer Q } ? Q : never;
type PathParamsOf<O> = Params<O> extends { path: infer X } ? X : never;
type BodyOf<O> = O extends { requestBody: { content: { 'application/json': infer B } } }
  ? B
  : O extends { requestBody?: { content: { 'application/json': infer B } } }
    ? B
    : never;

export interface RequestOptions<O> {
  path?: PathParamsOf<O>;
  query?: QueryOf<O>;
  body?: BodyOf<O>;
  /** A multipart body instead of JSON (the routes that take a file: alarm photos); the browser sets its Content-Type. */
  form?: FormData;
  /** No Authorization header, no refresh on 401 (login, refresh). */
  anonymous?: boolean;
  /** Extra request headers (e.g. `Idempotency-Key`). */
  headers?: Record<string, string>;
  /** This request's own time limit (default: the client's). */
  timeoutMs?: number;
}

/** Response bodies by `method path` (hand-written: see api/responses.ts). */
export interface ResponseTypes {
  'post /api/v1/auth/login': TokenPair;
  'post /api/v1/auth/refresh': TokenPair;
  'post /api/v1/auth/logout': void;
  'get /api/v1/auth/me': Me;
  'get /api/v1/incidents': Page<IncidentView>;
  'get /api/v1/incidents/{id}': IncidentDetail;
  'get /api/v1/schools': Page<SchoolItem>;
  'get /api/v1/schools/{id}': SchoolItem;
  'get /api/v1/guards': Page<GuardItem>;
  'get /api/v1/device-health/devices': Page<DeviceStatusItem>;
  'get /api/v1/device-health/outages': Page<OutageItem>;
  'get /api/v1/incidents/stats': IncidentStats;
  'get /api/v1/handovers': { items: HandoverView[] };
  'post /api/v1/handovers': HandoverView;
  'post /api/v1/handovers/{id}/acknowledge': HandoverView;
  'get /api/v1/compliance/trend': ComplianceTrend;
  'get /api/v1/audit-log': { items: AuditEntryItem[]; nextBeforeId: string | null };
  'get /api/v1/device-health/summary': DeviceSummary;
  'get /api/v1/duty/now': DutyNow;
  'get /api/v1/notifications/channels': NotificationChannel[];
  'get /api/v1/incidents/{id}/notifications': { items: NotificationDelivery[] };
  'get /api/v1/notifications/links/{token}': { incidentId: string; expiresAt: string };
  'post /api/v1/cameras/{id}/stream': PlayTicket;
  'post /api/v1/cameras/{id}/playback': PlayTicket & { playbackId: string; start: string; end: string };
  'post /api/v1/cameras/{id}/evidence': EvidenceItem;
  'post /api/v1/patrol-rounds': PatrolRound;
  'get /api/v1/patrol-rounds': Page<Omit<PatrolRound, 'items'>>;
  'get /api/v1/patrol-rounds/{id}': PatrolRound;
  'get /api/v1/incidents/drill-windows': DrillWindowItem[];
  'post /api/v1/incidents/drill-windows/{id}/approve': DrillWindowItem;
  'post /api/v1/incidents/drill-windows/{id}/end': DrillWindowItem;
  'post /api/v1/incidents/{id}/make-real': IncidentView;
  'post /api/v1/incidents': RaisedIncident;
  'post /api/v1/incidents/{id}/cancel': IncidentView;
  'post /api/v1/post-checkins': PostCheckin;
  'get /api/v1/protection-posts': Page<ProtectionPostItem>;
  'get /api/v1/protection-posts/{id}/qr': PostQr;
  'get /api/v1/post-checkins': Page<PostCheckin>;
  'post /api/v1/post-checkins/{id}/checkout': PostCheckin;
  'post /api/v1/guard-patrols': GuardPatrol;
  'get /api/v1/rectification-tasks': Page<RectificationTask>;
  'get /api/v1/patrol-findings': Page<FindingItem>;
  'post /api/v1/rectification-tasks/{id}/close': RectificationTask;
  'get /api/v1/compliance/schools': Page<SchoolCompliance>;
  'get /api/v1/alarm-devices': Page<AlarmButton>;
  'post /api/v1/alarm-buttons/{id}/test-mode': TestModeAnswer;
  'delete /api/v1/alarm-buttons/{id}/test-mode': TestModeAnswer;
  'get /api/v1/alarm-buttons/{id}/tests': ButtonTest[];
  'get /api/v1/device-health/maintenance-windows': Page<MaintenanceWindow>;
  'post /api/v1/device-health/maintenance-windows': MaintenanceWindow;
  'patch /api/v1/device-health/maintenance-windows/{id}': MaintenanceWindow;
  'post /api/v1/device-health/maintenance-windows/{id}/end': MaintenanceWindow;
  'post /api/v1/ops/queue-board/session': { url: string; expiresAt: string };
  'get /api/v1/patrol-plans': Page<PatrolPlan>;
  'post /api/v1/patrol-plans': PatrolPlan;
  'patch /api/v1/patrol-plans/{id}': PatrolPlan;
  'get /api/v1/zones': Page<RegistryUnit>;
  'get /api/v1/groups': Page<RegistryUnit>;
  'get /api/v1/cameras/{id}': CameraItem;
  'get /api/v1/cameras': Page<CameraItem>;
  'get /api/v1/gb28181/devices/{deviceId}': GbDeviceView;
  'get /api/v1/gb28181/devices/{deviceId}/status': GbDeviceStatus;
  'get /api/v1/gb28181/devices/{deviceId}/channels/{channelId}/records': GbRecordInfo;
  'post /api/v1/gb28181/devices/{deviceId}/reboot': GbControlResult;
  'post /api/v1/gb28181/devices/{deviceId}/guard': GbControlResult;
  'post /api/v1/gb28181/devices/{deviceId}/alarm-reset': GbControlResult;
  'post /api/v1/gb28181/devices/{deviceId}/record': GbControlResult;
}
type ResponseOf<M extends Method, P> = `${M} ${P & string}` extends keyof ResponseTypes ? ResponseTypes[`${M} ${P & string}`] : unknown;

/** 'invalid': the server refused to renew the session; 'unavailable': it could not answer now (network, 5xx). */
export type RefreshResult = 'ok' | 'invalid' | 'unavailable';

export interface AuthProvider {
  /** The access token to send, or null (then the request is not made: 401 locally). */
  token(): string | null;
  /** After a 401: get a new access token ('ok': the request is retried once). */
  refresh(): Promise<RefreshResult>;
}

export class ApiClient {
  private auth: AuthProvider | null = null;

  constructor(
    private readonly baseUrl = '',
    private readonly timeoutMs = 15000,
  ) {}

  setAuth(auth: AuthProvider): void {
    this.auth = auth;
  }

  get<P extends PathFor<'get'>>(path: P, opts: RequestOptions<Op<P, 'get'>> = {}): Promise<ResponseOf<'get', P>> {
    return this.request('get', path, opts);
  }

  post<P extends PathFor<'post'>>(path: P, opts: RequestOptions<Op<P, 'post'>> = {}): Promise<ResponseOf<'post', P>> {
    return this.request('post', path, opts);
  }

  patch<P extends PathFor<'patch'>>(path: P, opts: RequestOptions<Op<P, 'patch'>> = {}): Promise<ResponseOf<'patch', P>> {
    return this.request('patch', path, opts);
  }

  delete<P extends PathFor<'delete'>>(path: P, opts: RequestOptions<Op<P, 'delete'>> = {}): Promise<ResponseOf<'delete', P>> {
    return this.request('delete', path, opts);
  }

  async request<M extends Method, P extends PathFor<M>>(method: M, path: P, opts: RequestOptions<Op<P, M>>, retried = false): Promise<ResponseOf<M, P>> {
    const res = await this.send(method, path, opts, 'application/json');
    const text = res.status === 204 ? '' : await res.text().catch(() => '');
    let data: unknown = undefined;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch {
      data = undefined;
    }
    if (res.status === 401 && !opts.anonymous && !retried && this.auth) {
      const r = await this.auth.refresh();
      if (r === 'ok') return this.request(method, path, opts, true);
      if (r === 'unavailable') throw new ApiError(503, 'UNAVAILABLE', 'session renewal unavailable');
    }
    if (!res.ok) throw this.failure(res, data);
    return data as ResponseOf<M, P>;
  }

  /** A binary answer (evidence pictures: `<img>` cannot send the session token) as a Blob; errors as for `request`. */
  async blob<P extends PathFor<'get'>>(path: P, opts: RequestOptions<Op<P, 'get'>> = {}, retried = false): Promise<Blob> {
    const res = await this.send('get', path, opts, '*/*');
    if (res.status === 401 && !opts.anonymous && !retried && this.auth) {
      const r = await this.auth.refresh();
      if (r === 'ok') return this.blob(path, opts, true);
      if (r === 'unavailable') throw new ApiError(503, 'UNAVAILABLE', 'session renewal unavailable');
    }
    if (!res.ok) {
      const text = await res.text().catch(() => '');
      let data: unknown = undefined;
      try {
        data = text ? JSON.parse(text) : undefined;
      } catch {
        data = undefined;
      }
      throw this.failure(res, data);
    }
    try {
      return await res.blob();
    } catch (e) {
      throw new ApiError(0, 'NETWORK', (e as Error)?.message ?? 'network error');
    }
  }

  private failure(res: Response, data: unknown): ApiError {
    const err = (data as { error?: { code?: string; message?: string; details?: Record<string, unknown>; requestId?: string } } | undefined)?.error;
    return new ApiError(res.status, err?.code ?? `HTTP_${res.status}`, err?.message ?? res.statusText, err?.details, err?.requestId);
  }

  /** Builds the URL and headers and sends; a request never waits longer than `timeoutMs` (TIMEOUT), a network failure is NETWORK. */
  private async send<M extends Method, P extends PathFor<M>>(method: M, path: P, opts: RequestOptions<Op<P, M>>, accept: string): Promise<Response> {
    const pathParams = (opts.path ?? {}) as Record<string, unknown>;
    let url = this.baseUrl + String(path).replace(/\{(\w+)\}/g, (_, k: string) => encodeURIComponent(String(pathParams[k])));
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries((opts.query ?? {}) as Record<string, unknown>)) {
      if (v === undefined || v === null) continue;
      query.set(k, Array.isArray(v) ? v.join(',') : String(v));
    }
    if ([...query.keys()].length) url += `?${query}`;
    const headers: Record<string, string> = { ...opts.headers, Accept: accept };
    if (opts.body !== undefined && !opts.form) headers['Content-Type'] = 'application/json';
    if (!opts.anonymous) {
      const token = this.auth?.token();
      if (!token) throw new ApiError(401, 'AUTH.UNAUTHENTICATED', 'no session');
      headers.Authorization = `Bearer ${token}`;
    }
    try {
      return await fetch(url, {
        method: method.toUpperCase(),
        headers,
        body: opts.form ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body)),
        signal: AbortSignal.timeout(opts.timeoutMs ?? this.timeoutMs),
      });
    } catch (e) {
      const timedOut = (e as Error)?.name === 'TimeoutError';
      throw new ApiError(0, timedOut ? 'TIMEOUT' : 'NETWORK', (e as Error)?.message ?? 'network error');
    }
  }
}

/** The one client of the app (same origin; Vite's dev server proxies /api). */
export const api = new ApiClient();

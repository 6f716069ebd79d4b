import type { paths } from '@/shared/api-schema';
import { ApiError } from './errors';

/**
 * The typed REST client. Paths, path parameters, query strings and JSON bodies are checked
 * against the api's OpenAPI document (web/src/shared/api-schema.d.ts, generated); response bodies
 * too (the document declares every route's answer; api/responses.ts names the ones the console
 * passes around). Errors become `ApiError` with the server's stable code; a request never waits longer than `timeoutMs`.
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

/** The JSON body of an operation's 2xx answer as the OpenAPI document declares it (never: none declared). */
type JsonOf<R> = R extends { content: { 'application/json': infer B } } ? B : never;
type Documented<O> = O extends { responses: infer R } ? { [K in keyof R]: K extends 200 | 201 | 202 ? JsonOf<R[K]> : never }[keyof R] : never;
/** The JSON body of `method path`'s 2xx answer as the document declares it (api/responses.ts names the console's); unknown for an answer with no JSON body. */
export type Answer<M extends Method, P> = P extends PathFor<M> ? ([Documented<Op<P, M>>] extends [never] ? unknown : Documented<Op<P, M>>) : unknown;

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

  get<P extends PathFor<'get'>>(path: P, opts: RequestOptions<Op<P, 'get'>> = {}): Promise<Answer<'get', P>> {
    return this.request('get', path, opts);
  }

  post<P extends PathFor<'post'>>(path: P, opts: RequestOptions<Op<P, 'post'>> = {}): Promise<Answer<'post', P>> {
    return this.request('post', path, opts);
  }

  put<P extends PathFor<'put'>>(path: P, opts: RequestOptions<Op<P, 'put'>> = {}): Promise<Answer<'put', P>> {
    return this.request('put', path, opts);
  }

  patch<P extends PathFor<'patch'>>(path: P, opts: RequestOptions<Op<P, 'patch'>> = {}): Promise<Answer<'patch', P>> {
    return this.request('patch', path, opts);
  }

  delete<P extends PathFor<'delete'>>(path: P, opts: RequestOptions<Op<P, 'delete'>> = {}): Promise<Answer<'delete', P>> {
    return this.request('delete', path, opts);
  }

  async request<M extends Method, P extends PathFor<M>>(method: M, path: P, opts: RequestOptions<Op<P, M>>, retried = false): Promise<Answer<M, P>> {
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
    return data as Answer<M, P>;
  }

  /** A binary answer (evidence pictures: `<img>` cannot send the session token) as a Blob; errors as for `request`. */
  async blob<P extends PathFor<'get'>>(path: P, opts: RequestOptions<Op<P, 'get'>> = {}): Promise<Blob> {
    return (await this.binary(path, opts)).blob;
  }

  /** A binary answer with its headers (a snapshot's X-Snapshot-Taken-At); errors as for `request`. */
  async binary<P extends PathFor<'get'>>(path: P, opts: RequestOptions<Op<P, 'get'>> = {}, retried = false): Promise<{ blob: Blob; headers: Headers }> {
    const res = await this.send('get', path, opts, '*/*');
    if (res.status === 401 && !opts.anonymous && !retried && this.auth) {
      const r = await this.auth.refresh();
      if (r === 'ok') return this.binary(path, opts, true);
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
      return { blob: await res.blob(), headers: res.headers };
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

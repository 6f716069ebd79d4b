import { Type } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { IsUUID, validate } from 'class-validator';
import { boundDetails, DomainError, ErrorCode, Errors, excerpt } from '../../infra/http/errors';
import { fromPostgres } from '../../infra/http/pg-errors';
import { fromUnavailable } from '../../infra/http/unavailable';
import { flattenValidationErrors } from '../../infra/http/validation';
import { ILL_FORMED_TEXT, illFormedText } from '../../infra/http/input-guards';
import { CancelDto, IncidentLifecycleService, type IncidentView, NoteDto, OptionalNoteDto, ResolveDto } from '../alarms';
import type { AuthUser } from '../../infra/access/roles';

/** The alarms DTOs of the REST routes, plus the incident id the URL carries there. */
class IdNote extends OptionalNoteDto {
  @IsUUID() id: string;
}
class IdRequiredNote extends NoteDto {
  @IsUUID() id: string;
}
class IdResolve extends ResolveDto {
  @IsUUID() id: string;
}
class IdCancel extends CancelDto {
  @IsUUID() id: string;
}

interface Action<D> {
  dto: Type<D>;
  run: (lifecycle: IncidentLifecycleService, user: AuthUser, dto: D) => Promise<IncidentView>;
}
const action = <D>(dto: Type<D>, run: Action<D>['run']): Action<unknown> => ({ dto, run }) as Action<unknown>;

/**
 * Operator actions over the socket: the same IncidentLifecycleService methods (with their own role, scope
 * and state-machine checks) as the REST routes under /api/v1/incidents, validated with the same DTOs.
 */
export const CONSOLE_ACTIONS: Record<string, Action<unknown>> = {
  'incident:acknowledge': action(IdNote, (a, u, d) => a.acknowledge(u, d.id, d.note)),
  'incident:dispatch': action(IdNote, (a, u, d) => a.dispatch(u, d.id, d.note)),
  'incident:on_scene': action(IdNote, (a, u, d) => a.onScene(u, d.id, d.note)),
  'incident:resolve': action(IdResolve, (a, u, d) => a.resolve(u, d.id, d.outcome, d.note)),
  'incident:note': action(IdRequiredNote, (a, u, d) => a.addNote(u, d.id, d.note)),
  'incident:cancel': action(IdCancel, (a, u, d) => a.cancel(u, d.id, d.reason)),
};

export interface ActionError {
  status: number;
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}
export type ActionAnswer = { ok: true; incident: IncidentView } | { ok: false; error: ActionError };

/**
 * Validates like the REST edge and the global ValidationPipe: storable text only (no NUL, no lone
 * surrogates: infra/http/input-guards.ts), whitelist, no unknown fields, no implicit conversion.
 */
export async function validatePayload<D extends object>(dto: Type<D>, payload: unknown): Promise<D> {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    throw Errors.validation([{ field: '(payload)', reason: 'must be an object' }]);
  }
  const badText = illFormedText(payload, '');
  if (badText.length) throw Errors.validation(badText, ILL_FORMED_TEXT);
  const obj = plainToInstance(dto, payload, { enableImplicitConversion: false }) as D;
  const errors = await validate(obj, { whitelist: true, forbidNonWhitelisted: true });
  if (errors.length) throw Errors.validation(flattenValidationErrors(errors));
  return obj;
}

/**
 * The error shape of REST answers (`{ code, message, details }` plus the HTTP status it stands
 * for), with the same Postgres mapping as the REST filter (infra/http/pg-errors.ts).
 */
export function toActionError(e: unknown): ActionError {
  const d = e instanceof DomainError ? e : (fromPostgres(e) ?? fromUnavailable(e));
  // Bounded like every HTTP answer (errors.ts boundDetails, excerpt): an action must not echo unbounded input back over the socket.
  if (d) return { status: d.status, code: d.code, message: excerpt(d.message, 1000), details: d.details && (boundDetails(d.details) as typeof d.details) };
  return { status: 500, code: ErrorCode.INTERNAL, message: 'Internal error' };
}

import { AsyncLocalStorage } from 'node:async_hooks';

export type ActorType = 'user' | 'device' | 'system';

export interface Actor {
  type: ActorType;
  id: string | null;
  name: string;
}

export interface RequestContext {
  requestId: string;
  ip: string | null;
  actor?: Actor;
  /**
   * When the request arrived (its headers were read; set by the first middleware): the time of an
   * alarm it raises. A device that trickles its body must not have its press dated when the last byte came.
   */
  receivedAt?: Date;
}

/** Per-request context (request id, caller, address) for logs and the audit trail. */
export const requestContext = new AsyncLocalStorage<RequestContext>();

export function currentContext(): RequestContext | undefined {
  return requestContext.getStore();
}

export const SYSTEM_ACTOR: Actor = { type: 'system', id: null, name: 'system' };

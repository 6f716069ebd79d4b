/** The public surface of the gb28181 module: other modules and the app import only from here (checked by npm run lint). */
export { Gb28181Module } from './gb28181.module';
export { SipServer } from './sip-server';
export { InviteError } from './invite-client';
export type { MediaTransport, PlayAnswer, PlayRequest } from './invite-client';

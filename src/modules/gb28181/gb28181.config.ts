import type { Gb28181Config } from '../../config/sections';

/** The SIP domain (digest realm): the first 10 digits of the platform id (the 10-digit centre code). */
export const sipDomain = (c: Gb28181Config): string => c.platformId.slice(0, 10);

import type { AppConfig } from '../../config/config';

/** The `gb28181` config section (validated in src/config/config.ts SCHEMA). */
export interface Gb28181Config {
  /** Start the SIP server (in the api and all roles). Off by default so test and dev processes never fight over the port. */
  enabled: boolean;
  host: string;
  port: number;
  /** The address put in Via/From of the platform's own requests; '' = host (127.0.0.1 when host is a wildcard). */
  advertisedHost: string;
  /** The platform's 20-digit SIP id; the SIP domain (digest realm) is its first 10 digits. */
  platformId: string;
  /** District default device password, used for devices without their own; '' = none (such devices are refused). */
  defaultPassword: string;
  nonceTtlSeconds: number;
  maxMessageBytes: number;
  /** Messages per second per source address:port (0 = no limit) and the burst allowed. */
  rateLimitPerSecond: number;
  rateLimitBurst: number;
  udpReceiveBufferBytes: number;
  tcpIdleSeconds: number;
  maxTcpConnections: number;
  /** How long a platform query (Catalog, DeviceInfo) waits for the device's 200. */
  queryTimeoutMs: number;
  /** How long the parts of a Catalog response (SumNum) are awaited before what arrived is kept. */
  catalogTimeoutMs: number;
  /** How long an answer is kept to answer a retransmitted request identically. */
  transactionTtlMs: number;
  /** Longest registration granted (a device asking for more gets this). */
  maxExpiresSeconds: number;
  /** Period of expiry checks, nonce pruning and registration write-behind. */
  housekeepingMs: number;
}

export const gbConfig = (c: AppConfig): Gb28181Config => c.gb28181 as Gb28181Config;
export const sipDomain = (c: Gb28181Config): string => c.platformId.slice(0, 10);

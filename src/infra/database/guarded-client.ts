import { Logger } from '@nestjs/common';
import { Client, type ClientConfig } from 'pg';

const log = new Logger('Database');

/**
 * The pool's connection class (pg-pool's `Client` option): a pg Client that always has an
 * 'error' listener. A pooled client has one only while idle (pg-pool's) or while TypeORM holds it
 * (the query runner's, removed at release); a connection killed mid-transaction
 * (pg_terminate_backend, a Postgres restart, a cut network) can emit its second error — the FATAL
 * message, then the closed socket — after TypeORM has released it, and an 'error' event nobody
 * listens to throws: the whole process exited (found with backends terminated under a burst of
 * presses, test/integration/postgres-terminate.spec.ts). The query that was running already got
 * its error (503 UNAVAILABLE.DATABASE to the caller); this only says so in the log.
 */
export class GuardedClient extends Client {
  constructor(config?: string | ClientConfig) {
    super(config);
    this.on('error', (e: Error) => log.warn(`a database connection failed: ${e.message}`));
  }
}

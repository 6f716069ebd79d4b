/** Types of test-databases.js (plain JS: the Jest global setup and teardown load it untransformed). */
export const ADMIN_DB_URL: string;
export const RUN_ENV: string;
export const TEMPLATE_ENV: string;
export function ensureTemplate(): Promise<string>;
export function dropRunDatabases(run: string): Promise<void>;
export function databaseUrl(name: string): string;

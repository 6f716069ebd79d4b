import type { INestApplicationContext } from '@nestjs/common';
import type { AppConfig } from '../config/config';

export interface SeedOptions {
  progress?: (message: string) => void;
}

/** Placeholder until the demo district generator lands (issue 2). */
export async function seedDemoDistrict(_ctx: INestApplicationContext, _config: AppConfig, opts: SeedOptions = {}): Promise<void> {
  opts.progress?.('seed: nothing to do yet');
}

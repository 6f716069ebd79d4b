import type { AppConfig, VideoConfig } from '../../config/sections';

export type { VideoConfig };
/** The `video` config section (typed in src/config/sections.ts, rules in src/config/schema.ts). */
export const videoConfig = (c: AppConfig): VideoConfig => c.video;

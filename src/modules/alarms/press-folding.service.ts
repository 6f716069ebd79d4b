import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { AlarmsConfig } from '../../config/sections';
import { ConsoleEventsService } from '../console-events';
import { IncidentRow, toSummary } from './incident-row';

/**
 * Keeps the console quiet while a button is pressed again and again (issue 12 §9): every press
 * is recorded (incident_presses, press_count, the timeline — by the intake, as before); the
 * console hears of the first alarms.foldAnnounceFirst presses, then of every
 * alarms.foldAnnounceEvery-th, and — once the button has been quiet for alarms.foldQuietMs — of
 * the latest count, so what an operator sees always ends at the true number.
 *
 * The trailing announcement is a timer of this process: if the process dies first, the count
 * shown is a little behind until the incident's next event (every later action carries it).
 */
@Injectable()
export class PressFoldingService implements OnModuleDestroy {
  private readonly logger = new Logger('PressFolding');
  private readonly cfg: AlarmsConfig;
  /** Incidents with presses the console has not heard of yet: their trailing announcement. */
  private readonly pending = new Map<string, NodeJS.Timeout>();

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly events: ConsoleEventsService,
  ) {
    this.cfg = config.alarms;
  }

  /** A press folded into `row` (its updated state), in the press's own transaction: announce it now, or later. */
  async folded(m: EntityManager, row: IncidentRow): Promise<void> {
    const n = row.press_count;
    clearTimeout(this.pending.get(row.id));
    this.pending.delete(row.id);
    if (n <= this.cfg.foldAnnounceFirst || n % this.cfg.foldAnnounceEvery === 0) {
      await this.events.append(m, { type: 'incident.updated', schoolId: row.school_id, payload: { ...toSummary(row), change: 'press' } });
      return;
    }
    const timer = setTimeout(() => {
      this.pending.delete(row.id);
      this.announceLatest(row.id).catch((e) => this.logger.warn(`press count of incident ${row.id} not announced: ${(e as Error).message}`));
    }, this.cfg.foldQuietMs);
    timer.unref();
    this.pending.set(row.id, timer);
  }

  private async announceLatest(id: string): Promise<void> {
    await this.db.transaction(async (m) => {
      const [row] = (await m.query(`SELECT * FROM incidents WHERE id = $1`, [id])) as IncidentRow[];
      if (row) await this.events.append(m, { type: 'incident.updated', schoolId: row.school_id, payload: { ...toSummary(row), change: 'press' } });
    });
  }

  onModuleDestroy(): void {
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
  }
}

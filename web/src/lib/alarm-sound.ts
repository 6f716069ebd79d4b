import { reactive } from 'vue';

/**
 * The alarm sound (Web Audio, no audio files). Browsers let a page start audio only after a
 * user gesture on it: logging in is one, but after a reload the context starts `suspended`,
 * and the console must ask for a click (SoundPrompt) while alarms are open.
 */
export const sound = reactive({
  /** 'none' until the first check; 'unavailable' without Web Audio. */
  state: 'none' as 'none' | 'running' | 'suspended' | 'unavailable',
  /** Alarm tones played (tests read it). */
  beeps: 0,
  /** Escalation tones played (tests read it). */
  escalations: 0,
  /**
   * The user answered the sound prompt (answerSoundPrompt): the blocking prompt does not come back in this
   * page even if the browser still will not start audio (a phone call in progress, a browser policy) —
   * the header's sound button says so instead (attack pass 6 F4: the prompt trapped the user).
   */
  asked: false,
});

let ctx: AudioContext | null = null;

function track(c: AudioContext): void {
  sound.state = c.state === 'running' ? 'running' : 'suspended';
  c.onstatechange = () => (sound.state = c.state === 'running' ? 'running' : 'suspended');
}

function create(): AudioContext | null {
  if (ctx) return ctx;
  try {
    ctx = new AudioContext();
    track(ctx);
  } catch {
    sound.state = 'unavailable';
  }
  return ctx;
}

/** Finds out whether sound can play now (after a reload it usually cannot). */
export function checkSound(): void {
  create();
}

/** Call from a click or key handler: starts (or resumes) audio. */
export function unlockSound(): void {
  const c = create();
  if (c && c.state !== 'running')
    void c.resume().then(
      () => track(c),
      () => undefined,
    );
}

/** One alarm tone: two square-wave notes (0.45 s); a P1 tone is higher and louder. */
export function beep(urgent: boolean): void {
  if (!ctx || ctx.state !== 'running') return;
  const t0 = ctx.currentTime;
  const notes = urgent ? [988, 740] : [880, 660];
  notes.forEach((f, i) => {
    const o = ctx!.createOscillator();
    const g = ctx!.createGain();
    o.type = 'square';
    o.frequency.value = f;
    g.gain.setValueAtTime(urgent ? 0.12 : 0.08, t0 + i * 0.25);
    g.gain.setValueAtTime(0, t0 + i * 0.25 + 0.2);
    o.connect(g).connect(ctx!.destination);
    o.start(t0 + i * 0.25);
    o.stop(t0 + i * 0.25 + 0.22);
  });
  sound.beeps++;
}

/**
 * The escalation tone: distinct from the alarm beep — a rising three-note sweep (sawtooth,
 * 523 → 784 → 1047 Hz, 0.9 s), played once when an alarm reaches a new escalation level.
 */
export function escalationTone(): void {
  sound.escalations++;
  if (!ctx || ctx.state !== 'running') return;
  const t0 = ctx.currentTime;
  [523, 784, 1047].forEach((f, i) => {
    const o = ctx!.createOscillator();
    const g = ctx!.createGain();
    o.type = 'sawtooth';
    o.frequency.value = f;
    g.gain.setValueAtTime(0.1, t0 + i * 0.3);
    g.gain.setValueAtTime(0, t0 + i * 0.3 + 0.27);
    o.connect(g).connect(ctx!.destination);
    o.start(t0 + i * 0.3);
    o.stop(t0 + i * 0.3 + 0.28);
  });
}

/** The sound prompt's button: starts audio, and the prompt does not ask again in this page (sound.asked). */
export function answerSoundPrompt(): void {
  sound.asked = true;
  unlockSound();
}

import { computed, ref } from 'vue';
import { currentLocale, type Msg } from '@/i18n';

/** School-local times: Asia/Shanghai, 24 h, whatever the browser's zone. */
const formatters = computed(
  () =>
    new Intl.DateTimeFormat(currentLocale.value === 'en' ? 'en-GB' : 'zh-CN', {
      timeZone: 'Asia/Shanghai',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hour12: false,
    }),
);

export function fmtTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '—' : formatters.value.format(d);
}

/** A duration as a message ("3 分 12 秒"), whole seconds. */
export function durationMsg(ms: number): Msg {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return { key: 'duration.s', params: { s } };
  if (s < 3600) return { key: 'duration.ms', params: { m: Math.floor(s / 60), s: s % 60 } };
  if (s < 86400) return { key: 'duration.hm', params: { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) } };
  return { key: 'duration.dh', params: { d: Math.floor(s / 86400), h: Math.floor((s % 86400) / 3600) } };
}

/** The current time, ticking once a second while anything shows a waiting time. */
export const now = ref(Date.now());
let ticking = 0;
let timer: ReturnType<typeof setInterval> | null = null;
export function useTicking(): () => void {
  if (ticking++ === 0) timer = setInterval(() => (now.value = Date.now()), 1000);
  return () => {
    if (--ticking === 0 && timer) {
      clearInterval(timer);
      timer = null;
    }
  };
}

const dayFormat = new Intl.DateTimeFormat('sv-SE', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit' });
/** The day (YYYY-MM-DD) it is in Asia/Shanghai at `at` (default now): the district's day boundaries. */
export function shanghaiDate(at: number | Date = Date.now()): string {
  return dayFormat.format(at);
}

/**
 * A list of names or labels in the page's language: "甲、乙、丙" in Chinese, "a, b, c" in English (Intl.ListFormat's unit
 * list; never the Chinese "、" in an English sentence). No "and": these are lists of checks, people, gates.
 */
const listFormats = computed(() => (currentLocale.value === 'en' ? new Intl.ListFormat('en', { type: 'unit', style: 'short' }) : null));
export function fmtList(items: readonly string[]): string {
  const f = listFormats.value;
  return f ? f.format(items) : items.join('、');
}

import elEn from 'element-plus/es/locale/lang/en';
import elZhCn from 'element-plus/es/locale/lang/zh-cn';
import { computed } from 'vue';
import { createI18n, useI18n } from 'vue-i18n';
import en from './en';
import zhCN, { type MessageKey } from './zh-CN';

export type { MessageKey } from './zh-CN';
export const LOCALES = ['zh-CN', 'en'] as const;
export type Locale = (typeof LOCALES)[number];
/** Message parameters: {name} placeholders. */
export type Params = Record<string, string | number>;
/** A message to show later, in whatever language is current then. */
export interface Msg {
  key: MessageKey;
  params?: Params;
}

const STORAGE_KEY = 'shouhu.lang';
const stored = localStorage.getItem(STORAGE_KEY);

/** Keys asked for that no dictionary has (never expected: t() is typed). Tests read it. */
export const missingKeys = new Set<string>();

export const i18n = createI18n({
  legacy: false,
  locale: stored === 'en' ? 'en' : 'zh-CN',
  fallbackLocale: 'zh-CN',
  messages: { 'zh-CN': zhCN, en },
  missingWarn: false,
  fallbackWarn: false,
  // Never show a raw key: record it and show a dash.
  missing: (_locale, key) => {
    missingKeys.add(key);
    return '—';
  },
});

const ELEMENT_LOCALES = { 'zh-CN': elZhCn, en: elEn };

export const currentLocale = computed<Locale>(() => i18n.global.locale.value as Locale);
export const elementLocale = computed(() => ELEMENT_LOCALES[currentLocale.value]);

export function setLocale(l: Locale): void {
  i18n.global.locale.value = l;
  localStorage.setItem(STORAGE_KEY, l);
  document.documentElement.lang = l;
}
document.documentElement.lang = currentLocale.value;

/** Translate outside components (titles, stores). */
export function tr(key: MessageKey, params?: Params): string {
  return i18n.global.t(key, params ?? {});
}

/** The typed translator for components: t() accepts only keys the dictionaries have. */
export function useT() {
  const { t } = useI18n();
  return {
    t: (key: MessageKey, params?: Params): string => t(key, params ?? {}),
    tm: (m: Msg): string => t(m.key, m.params ?? {}),
    locale: currentLocale,
  };
}

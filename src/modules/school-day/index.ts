/** The public surface of the school-day module: other modules and the app import only from here (checked by npm run lint). */
export { POST_WINDOW_KINDS, TZ, addDays, dayStart, gateWindows, postWindows, schoolHours, shanghaiDate, shanghaiStamp } from './calendar';
export type { Interval, PostWindow, PostWindowKind, PostWindowOnDay, SchoolCalendar, TermCalendar, TimeWindow, Timetable } from './calendar';
export { requiredGuards, requiredGuardsFor } from './staffing';
export type { StaffingRule } from './staffing';

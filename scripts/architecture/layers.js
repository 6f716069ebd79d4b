'use strict';
/**
 * The capability modules of src/modules, lowest layer first. A module may import modules of lower
 * layers only (through their index.ts); modules of one layer do not import each other. Read by the
 * boundary rules (.dependency-cruiser.js, part of npm run lint) and by the diagram generator
 * (scripts/architecture/diagram.js → docs/ARCHITECTURE.md).
 */
const LAYERS = [
  // Kernels every capability may use: the audit log, the console event log, the school calendar.
  ['audit-log', 'console-events', 'school-day'],
  // Who may do what; what exists (schools, cameras, alarm buttons, guards, posts).
  ['auth', 'registry'],
  // Device liveness; alarm intake and the incident lifecycle.
  ['device-health', 'alarms'],
  // Patrol audits, video patrol rounds, protection-post check-ins; escalation messages to people (roster, policy, channels).
  ['patrols', 'notifications'],
  // The four targets; the GB/T 28181 SIP front end (devices → health, alarms, cameras).
  ['compliance', 'gb28181'],
  // Live video: GB/T 28181 live play (over gb28181's SIP) and RTSP pulls, snapshots, evidence pictures.
  ['video'],
  // What people look at: the live console; health and metrics endpoints.
  ['console', 'ops'],
];

module.exports = { LAYERS };

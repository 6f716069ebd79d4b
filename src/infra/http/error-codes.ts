/**
 * Every `code` the API answers with (REST `{ error: { code } }`, socket acknowledgements and
 * socket notices), grouped by capability. Clients and tests match these strings: never change
 * one in place. A key path spells its code (`ErrorCode.ALARM.LATCHED` is 'ALARM.LATCHED'), except
 * the framework fallbacks under `HTTP`. `Errors.*` and `DomainError` accept only these, so a
 * misspelled code does not compile. Statuses in brackets.
 */
export const ErrorCode = {
  // ---- any route
  /** [400] A body, query or path value is invalid; `details.fields`: `[{ field, reason, row? }]`. */
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  /** [400] The body is not valid JSON. */
  MALFORMED_BODY: 'MALFORMED_BODY',
  /** [400] The JSON body is nested deeper or has more keys than allowed (http.jsonMaxDepth, http.jsonMaxKeys, http.jsonMaxObjectKeys). */
  BODY_TOO_COMPLEX: 'BODY_TOO_COMPLEX',
  /** [413] The body or the uploaded file is over its limit. */
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  /** [500] A fault of ours; the answer carries the request id, the log the stack. */
  INTERNAL: 'INTERNAL',
  /**
   * A store the request needs did not answer; nothing was committed. Retryable: `details.retryAfterSeconds`
   * (and Retry-After). A device repeats the same request with the same event id (docs/ARCHITECTURE.md,
   * "Device retry contract"); a retry that finds the event committed gets the same incident.
   */
  UNAVAILABLE: {
    /** [503] Postgres unreachable (refused, or no connection within database.connectTimeoutMs), the connection died mid-transaction, no free connection within database.poolWaitMs, or a statement unanswered within database.queryTimeoutMs (a stalled server or a partition). */
    DATABASE: 'UNAVAILABLE.DATABASE',
    /** [503] Redis did not answer within redis.commandTimeoutMs (only routes that cannot work without it: device heartbeats). */
    REDIS: 'UNAVAILABLE.REDIS',
  },
  /** A framework HttpException, by status (any other status: `HTTP_<status>`). */
  HTTP: {
    /** [400] Also a request Node's HTTP parser cannot read (bad framing, a control character in a header). */
    BAD_REQUEST: 'BAD_REQUEST',
    /** [404] No such route (under /api/v1 or anywhere else: infra/http/fallback.ts). */
    NOT_FOUND: 'NOT_FOUND',
    /** [405] */
    METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
    /** [409] Also an integrity violation other than duplicate/reference (pg-errors.ts). */
    CONFLICT: 'CONFLICT',
    /** [415] */
    UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
    /** [429] */
    RATE_LIMITED: 'RATE_LIMITED',
    /** [431] The request line and headers are longer than Node's HTTP parser takes (16 KiB): a very long URL (infra/http/fallback.ts). */
    REQUEST_HEADERS_TOO_LARGE: 'REQUEST_HEADERS_TOO_LARGE',
    /** [408] The request did not arrive within the server's request timeout (infra/http/fallback.ts). */
    REQUEST_TIMEOUT: 'REQUEST_TIMEOUT',
  },
  /** Integrity violations only Postgres caught (pg-errors.ts); `details`: `{ constraint, fields }`. */
  CONFLICT: {
    /** [409] A unique key is taken. */
    DUPLICATE: 'CONFLICT.DUPLICATE',
    /** [409] The record references a missing one, or is still referenced. */
    REFERENCE: 'CONFLICT.REFERENCE',
  },

  // ---- auth: users, tokens, device credentials, route access
  AUTH: {
    /** [401] No credentials (no bearer token, no socket token). */
    UNAUTHENTICATED: 'AUTH.UNAUTHENTICATED',
    /** [403] Not allowed (generic; a console token of another user, school staff without a school). */
    FORBIDDEN: 'AUTH.FORBIDDEN',
    /** [403] The record belongs to another school than the user's. */
    OUT_OF_SCOPE: 'AUTH.OUT_OF_SCOPE',
    /** [403] The user's role may not do this. */
    ROLE_FORBIDDEN: 'AUTH.ROLE_FORBIDDEN',
    /** [403] The route declares no access rule (@Public/@Roles/@DeviceRoute): refused. */
    ROUTE_UNDECLARED: 'AUTH.ROUTE_UNDECLARED',
    /** [403] A device credential of a kind this device route does not take. */
    WRONG_DEVICE_KIND: 'AUTH.WRONG_DEVICE_KIND',
    /** [401] A device route without `Authorization: Device <keyId>:<secret>`. */
    DEVICE_CREDENTIALS_REQUIRED: 'AUTH.DEVICE_CREDENTIALS_REQUIRED',
    /** [401] Unknown or revoked device key, or a wrong secret. */
    DEVICE_CREDENTIALS_INVALID: 'AUTH.DEVICE_CREDENTIALS_INVALID',
    /** [401] Access token expired (also the socket's `auth_expired` notice). */
    TOKEN_EXPIRED: 'AUTH.TOKEN_EXPIRED',
    /** [401] Access token malformed or badly signed. */
    TOKEN_INVALID: 'AUTH.TOKEN_INVALID',
    /** [401] Access token revoked (logout, disabled account); ends a console session. */
    TOKEN_REVOKED: 'AUTH.TOKEN_REVOKED',
    /** [401] Wrong username or password. */
    INVALID_CREDENTIALS: 'AUTH.INVALID_CREDENTIALS',
    /** [429] Too many failed logins for the account or address; `details.retryAfterSeconds`. */
    TOO_MANY_ATTEMPTS: 'AUTH.TOO_MANY_ATTEMPTS',
    /** [401] Refresh token unknown, expired, or its account disabled. */
    REFRESH_INVALID: 'AUTH.REFRESH_INVALID',
    /** [401] Refresh token used twice: every token of the user is revoked. */
    REFRESH_REUSED: 'AUTH.REFRESH_REUSED',
  },
  USER: {
    /** [404] */
    NOT_FOUND: 'USER.NOT_FOUND',
    /** [409] */
    USERNAME_TAKEN: 'USER.USERNAME_TAKEN',
    /** [409] The change would leave the district without an enabled admin (demoting or disabling the last one). */
    LAST_ADMIN: 'USER.LAST_ADMIN',
  },
  DEVICE_CREDENTIAL: {
    /** [404] */
    NOT_FOUND: 'DEVICE_CREDENTIAL.NOT_FOUND',
  },

  // ---- registry: schools and their devices, posts, guards (one pair per resource: resource.ts)
  DISTRICT: {
    /** [404] */
    NOT_FOUND: 'DISTRICT.NOT_FOUND',
    /** [409] Natural key taken; `details`: `{ fields, existingId? }` (the id only for a caller who may see that record). */
    DUPLICATE: 'DISTRICT.DUPLICATE',
  },
  ZONE: {
    /** [404] */
    NOT_FOUND: 'ZONE.NOT_FOUND',
    /** [409] Natural key taken; `details`: `{ fields, existingId? }` (the id only for a caller who may see that record). */
    DUPLICATE: 'ZONE.DUPLICATE',
  },
  GROUP: {
    /** [404] */
    NOT_FOUND: 'GROUP.NOT_FOUND',
    /** [409] Natural key taken; `details`: `{ fields, existingId? }` (the id only for a caller who may see that record). */
    DUPLICATE: 'GROUP.DUPLICATE',
  },
  SCHOOL: {
    /** [404] */
    NOT_FOUND: 'SCHOOL.NOT_FOUND',
    /** [409] Natural key taken; `details`: `{ fields, existingId? }` (the id only for a caller who may see that record). */
    DUPLICATE: 'SCHOOL.DUPLICATE',
  },
  CAMERA: {
    /** [404] */
    NOT_FOUND: 'CAMERA.NOT_FOUND',
    /** [409] Natural key (GB/T 28181 device + channel id) taken; `details`: `{ fields, existingId? }`. */
    DUPLICATE: 'CAMERA.DUPLICATE',
  },
  ALARM_DEVICE: {
    /** [404] */
    NOT_FOUND: 'ALARM_DEVICE.NOT_FOUND',
    /** [409] Natural key taken; `details`: `{ fields, existingId? }` (the id only for a caller who may see that record). */
    DUPLICATE: 'ALARM_DEVICE.DUPLICATE',
  },
  GUARD: {
    /** [404] */
    NOT_FOUND: 'GUARD.NOT_FOUND',
    /** [409] Natural key taken; `details`: `{ fields, existingId? }` (the id only for a caller who may see that record). */
    DUPLICATE: 'GUARD.DUPLICATE',
  },
  PROTECTION_POST: {
    /** [404] */
    NOT_FOUND: 'PROTECTION_POST.NOT_FOUND',
    /** [409] Natural key taken; `details`: `{ fields, existingId? }` (the id only for a caller who may see that record). */
    DUPLICATE: 'PROTECTION_POST.DUPLICATE',
    /**
     * [400] The post's QR code is ours but its time window is over (patrols.postQrWindowMinutes,
     * attack F8b): print or show the current code (GET /protection-posts/{id}/qr); `details.fields`.
     */
    QR_EXPIRED: 'PROTECTION_POST.QR_EXPIRED',
  },
  /** Registry import (CSV/XLSX); nothing is imported when any of these is answered. */
  IMPORT: {
    /** [400] The upload is not multipart/form-data. */
    NOT_MULTIPART: 'IMPORT.NOT_MULTIPART',
    /** [400] More than one file, or an unparsable upload. */
    BAD_UPLOAD: 'IMPORT.BAD_UPLOAD',
    /** [400] No `file` field. */
    NO_FILE: 'IMPORT.NO_FILE',
    /** [400] Not a readable CSV/XLSX (empty, old .xls, corrupt, no header row). */
    UNREADABLE_FILE: 'IMPORT.UNREADABLE_FILE',
    /** [400] Unknown, missing or repeated columns; `details.errors`. */
    INVALID_HEADER: 'IMPORT.INVALID_HEADER',
    /** [400] Rows over import.maxRows; `details`: `{ maxRows, rows }`. */
    TOO_MANY_ROWS: 'IMPORT.TOO_MANY_ROWS',
    /** [400] Some rows are invalid; `details.errors`: `[{ row, column, reason }]`. */
    INVALID_ROWS: 'IMPORT.INVALID_ROWS',
    /**
     * [400] A CSV whose encoding cannot be told for sure (UTF-8 vs GBK, or another code page): save as UTF-8; `details`: `{ scores, detected }`.
     * Also bytes that are not valid in the encoding a BOM claims or detection chose (a GBK file behind a UTF-8 BOM): `details`:
     * `{ encoding, byteOffset, line }` of the first invalid byte — such a file is never decoded into replacement characters.
     */
    UNSURE_ENCODING: 'IMPORT.UNSURE_ENCODING',
    /** [400] More columns than import.maxColumns, or a sheet bigger than import.maxUnzippedBytes unpacked (a zip bomb); `details` names the limit. */
    TOO_LARGE_CONTENT: 'IMPORT.TOO_LARGE_CONTENT',
    /** [400] A cell (header or data) longer than import.maxCellChars; refused while reading; `details`: `{ maxCellChars, row?, column? }`. */
    CELL_TOO_LONG: 'IMPORT.CELL_TOO_LONG',
    /** [400] The file's cells add up to more than import.maxTotalChars characters (a shared string counts at every cell that uses it); refused while reading; `details`: `{ maxTotalChars, row }`. */
    TOO_MUCH_TEXT: 'IMPORT.TOO_MUCH_TEXT',
    /** [503] Every file parser is busy and the queue is full (import.parseQueue), or import.maxConcurrent imports (or, apart, exports) are running; `details.retryAfterSeconds`. */
    BUSY: 'IMPORT.BUSY',
    /**
     * [429] This user already runs import.maxConcurrentPerUser imports/exports (default 1): wait for it to finish; Retry-After,
     * `details.retryAfterSeconds`. One account can never hold every slot (attack pass 8 F2).
     */
    BUSY_FOR_USER: 'IMPORT.BUSY_FOR_USER',
  },

  /** Heavy district reads (compliance, patrol coverage, response statistics, incident history search): infra/http/heavy-reads.ts (attack A14). */
  HEAVY_READ: {
    /** [503] heavyReads.maxConcurrent reads running and heavyReads.maxQueued waiting, or no turn within heavyReads.maxWaitMs; `details`: `{ retryAfterSeconds, maxConcurrent }`. */
    BUSY: 'HEAVY_READ.BUSY',
    /** [429] One user asking for heavy reads faster than heavyReads.userPerMinute/userBurst; `details.retryAfterSeconds`. */
    TOO_MANY: 'HEAVY_READ.TOO_MANY',
  },

  // ---- device health
  DEVICE: {
    /** [404] No camera or alarm device with this id (also a device heartbeat for one no longer registered). */
    NOT_FOUND: 'DEVICE.NOT_FOUND',
  },
  OUTAGE: {
    /** [404] */
    NOT_FOUND: 'OUTAGE.NOT_FOUND',
  },
  MAINTENANCE_WINDOW: {
    /** [404] (another school's device window too: no existence oracle) */
    NOT_FOUND: 'MAINTENANCE_WINDOW.NOT_FOUND',
    /** [409] Delete: the window has started (it is part of the record): end it instead; `details.startsAt`. */
    STARTED: 'MAINTENANCE_WINDOW.STARTED',
    /** [409] End: the window has not begun (delete or change it instead); `details.startsAt`. */
    NOT_STARTED: 'MAINTENANCE_WINDOW.NOT_STARTED',
    /** [409] Change or end: the window is over; `details.endsAt`. */
    OVER: 'MAINTENANCE_WINDOW.OVER',
    /**
     * [409] Create or change: the window would overlap, touch or come within liveness.maintenanceMinGapMinutes of
     * another window covering the same devices (same device, its school, the district), which would chain silence
     * past maintenanceMaxHours; `details.windowId` (and its schoolId, deviceId, startsAt, endsAt) is that window.
     */
    OVERLAP: 'MAINTENANCE_WINDOW.OVERLAP',
    /** [403] A district-wide window (every device of the district silenced) is declared or changed by an admin only. */
    DISTRICT_ADMIN_ONLY: 'MAINTENANCE_WINDOW.DISTRICT_ADMIN_ONLY',
  },

  // ---- alarms (一键报警) and the incident lifecycle
  INCIDENT: {
    /** [404] */
    NOT_FOUND: 'INCIDENT.NOT_FOUND',
    /** [429] A button pressing faster than alarms.pressesPerSecond/pressBurst; `details.retryAfterSeconds` (presses within the limit fold into the open incident). */
    TOO_MANY_PRESSES: 'INCIDENT.TOO_MANY_PRESSES',
    /** [429] One user adding notes faster than alarms.userNotesPerSecond/userNotesBurst (attack F17); `details.retryAfterSeconds`. */
    TOO_MANY_NOTES: 'INCIDENT.TOO_MANY_NOTES',
    /** [429] One user raising alarms faster than alarms.userRaisesPerMinute/userRaiseBurst (attack F17); `details.retryAfterSeconds`. Repeats of one alarm fold instead (alarms.staffFoldSeconds). */
    TOO_MANY_RAISES: 'INCIDENT.TOO_MANY_RAISES',
    /** [409] A client event id (`clientEventId` / `Idempotency-Key`) this user already sent with a different alarm; `details`: `{ clientEventId, incidentId }`. A retry must repeat the same body. */
    CLIENT_EVENT_REUSED: 'INCIDENT.CLIENT_EVENT_REUSED',
    /**
     * [400] School staff asked for a priority less urgent than the type's (alarms.priorityByType; attack A6: a fire
     * sent as P4 was never relayed to the police and escalated after 15 min). Staff may raise it, not lower it;
     * control-center roles may (audited). `details`: `{ fields: [{ field: 'priority', reason }], typePriority }`.
     */
    PRIORITY_BELOW_TYPE: 'INCIDENT.PRIORITY_BELOW_TYPE',
  },
  ALARM: {
    /** [409] Someone acknowledged first; `details`: `{ acknowledgedBy, acknowledgedAt, status }`. */
    ALREADY_ACKNOWLEDGED: 'ALARM.ALREADY_ACKNOWLEDGED',
    /** [409] The action is not allowed in the incident's status; `details.status`. */
    INVALID_TRANSITION: 'ALARM.INVALID_TRANSITION',
    /** [409] An emergency alarm latches: only a person resolves it. */
    LATCHED: 'ALARM.LATCHED',
    /** [409] The status changed under the request; refresh and retry. */
    CONCURRENT_CHANGE: 'ALARM.CONCURRENT_CHANGE',
    /** [409] "Make real" on an incident that is not a drill, or no longer open; `details.status`, `details.drill`. */
    NOT_A_DRILL: 'ALARM.NOT_A_DRILL',
    /** [403] A school's security staff cancel only an alarm they raised themselves (not a button's, a camera's or another person's). */
    CANCEL_NOT_OWN: 'ALARM.CANCEL_NOT_OWN',
  },
  HANDOVER: {
    /** [404] */
    NOT_FOUND: 'HANDOVER.NOT_FOUND',
    /** [409] Someone acknowledged the handover first; `details`: `{ acknowledgedBy, acknowledgedAt }`. */
    ALREADY_ACKNOWLEDGED: 'HANDOVER.ALREADY_ACKNOWLEDGED',
    /** [409] The operator who handed over cannot take over their own shift. */
    OWN: 'HANDOVER.OWN',
  },
  DRILL_WINDOW: {
    /** [404] (another school's window too: no existence oracle) */
    NOT_FOUND: 'DRILL_WINDOW.NOT_FOUND',
    /** [409] Approve: the window is not pending (already approved). */
    NOT_PENDING: 'DRILL_WINDOW.NOT_PENDING',
    /** [409] Approve or end: the window is already over; `details.endsAt`. */
    OVER: 'DRILL_WINDOW.OVER',
    /** [409] End: the window is not approved (a pending request is deleted instead). */
    NOT_APPROVED: 'DRILL_WINDOW.NOT_APPROVED',
    /**
     * [409] With this window the school's drill windows (pending and approved, chained, back to back
     * or overlapping) would silence it for more than alarms.drills.maxWindowMinutes within
     * alarms.drills.silencePeriodHours (attack F9); `details`: `{ silencedMinutes, maxWindowMinutes, periodHours }`.
     */
    SILENCE_LIMIT: 'DRILL_WINDOW.SILENCE_LIMIT',
  },
  BUTTON_TEST: {
    /** [429] The button's test mode was started alarms.buttonTests.maxTestModesPerDay times this Asia/Shanghai day (attack F9); `details.retryAfterSeconds` (to the next day). */
    DAILY_LIMIT: 'BUTTON_TEST.DAILY_LIMIT',
  },

  // ---- notifications: duty roster (值班表), channels, escalation policy, links in messages
  DUTY_SHIFT: {
    /** [404] */
    NOT_FOUND: 'DUTY_SHIFT.NOT_FOUND',
    /** [409] Only a shift on duty now (started, not ended) can be handed over. */
    NOT_ON_DUTY: 'DUTY_SHIFT.NOT_ON_DUTY',
    /** [409] The same person already holds the same duty role for part of this time (details: the other shift's id and times). */
    OVERLAP: 'DUTY_SHIFT.OVERLAP',
    /**
     * [409] Change (other than its note) or delete: the shift has ended, it is part of the record of who was on duty;
     * `details.endsAt`.
     */
    ENDED: 'DUTY_SHIFT.ENDED',
    /**
     * [409] Change of its start or person, or delete: the shift is on duty now (its start and person are history) —
     * hand it over to pass it on, or move its end; `details.startsAt`.
     */
    STARTED: 'DUTY_SHIFT.STARTED',
  },
  NOTIFICATION_CHANNEL: {
    /** [404] */
    NOT_FOUND: 'NOTIFICATION_CHANNEL.NOT_FOUND',
    /**
     * [409] Delete or disable: stored escalation policy levels name the channel (in a level's channel list or as a group
     * target), and the request did not say `detach=true` to take it out of them; nothing changed. `details`: `{ channelId,
     * levels: [{ priority, level, usedAs: ('channels'|'group')[], onlyChannel, allEnabledChannels, leftUnreachable:
     * 'nobody'|'people_without_channel'|null }] }` — a level with leftUnreachable set would refuse the detach too. A level
     * with `usedAs` empty names no channel: its people go through every enabled channel and this is the last one enabled.
     */
    IN_USE: 'NOTIFICATION_CHANNEL.IN_USE',
    /**
     * [409] Delete or disable (with `detach=true`, or of the last enabled channel): without the channel a level would notify
     * nobody, or the people it names would have no channel left in its list — for the last enabled channel, also every level
     * whose people go through every enabled channel (the configuration's default policies among them); nothing changed.
     * Choose another channel for that level, or add or enable another channel, first. `details` as IN_USE (the levels with
     * leftUnreachable set are why).
     */
    LEVEL_LEFT_UNREACHABLE: 'NOTIFICATION_CHANNEL.LEVEL_LEFT_UNREACHABLE',
  },
  NOTIFICATION_LINK: {
    /** [400] The link is not one of ours (malformed or the signature does not match). */
    INVALID: 'NOTIFICATION_LINK.INVALID',
    /** [410] The link was ours but has expired; open the console and find the incident there. */
    EXPIRED: 'NOTIFICATION_LINK.EXPIRED',
  },

  // ---- console (socket.io)
  CONSOLE: {
    /** Socket notice `resync_failed`: catch-up failed, the client reconnects. */
    RESYNC_FAILED: 'CONSOLE.RESYNC_FAILED',
    /** [429] Socket actions faster than console.actionsPerSecond (per socket) or console.userActionsPerSecond (per user); `details.retryAfterSeconds`. */
    TOO_MANY_ACTIONS: 'CONSOLE.TOO_MANY_ACTIONS',
    /** [429] More open consoles than console.maxSocketsPerToken / maxSocketsPerUser (connect_error data); `details.retryAfterSeconds`. */
    TOO_MANY_SOCKETS: 'CONSOLE.TOO_MANY_SOCKETS',
  },

  // ---- GB/T 28181 SIP front end
  GB28181: {
    /** [409] The device is not registered, so the platform cannot query it. */
    NOT_REGISTERED: 'GB28181.NOT_REGISTERED',
    /** [404] No such device or channel, or it has reported no Catalog yet (its organisation tree). */
    NOT_FOUND: 'GB28181.NOT_FOUND',
    /** [504] The device took the command or query but did not answer it within gb28181.commandTimeoutMs (or did not take it within queryTimeoutMs). */
    DEVICE_TIMEOUT: 'GB28181.DEVICE_TIMEOUT',
    /** [502] The device refused the command (`<Result>ERROR</Result>`, or a SIP error to the MESSAGE); `details.sipStatus` / `details.result`. */
    DEVICE_REFUSED: 'GB28181.DEVICE_REFUSED',
    /** [503] The SIP server does not run in this process (gb28181.enabled, or a worker): it cannot speak to devices. */
    SIP_NOT_RUNNING: 'GB28181.SIP_NOT_RUNNING',
  },

  // ---- live video, snapshots, evidence (src/modules/video); REST statuses, and the same codes in a player's `{type:'error'}` frame
  VIDEO: {
    /** [409] The camera has no address this server can play (no rtsp://, GB/T 28181 not running here, unsupported scheme). */
    NO_STREAM_ADDRESS: 'VIDEO.NO_STREAM_ADDRESS',
    /** [503] The GB/T 28181 device is not registered. */
    DEVICE_OFFLINE: 'VIDEO.DEVICE_OFFLINE',
    /** [503] The device answered 486 Busy Here (it serves no more streams). */
    DEVICE_BUSY: 'VIDEO.DEVICE_BUSY',
    /** [502] The device refused the INVITE (another ≥ 300); `details.sipStatus`. */
    DEVICE_REJECTED: 'VIDEO.DEVICE_REJECTED',
    /** [502] The device's SDP answer is unusable. */
    BAD_ANSWER: 'VIDEO.BAD_ANSWER',
    /** [504] No final answer to the INVITE within video.inviteTimeoutMs. */
    INVITE_TIMEOUT: 'VIDEO.INVITE_TIMEOUT',
    /** [504] No picture within video.firstMediaTimeoutMs. */
    NO_MEDIA: 'VIDEO.NO_MEDIA',
    /** [504] (players) No media for video.stallTimeoutMs: the stream stopped. */
    STALLED: 'VIDEO.STALLED',
    /** [502] (players) The camera ended the stream (its BYE, TCP media closed). */
    UPSTREAM_ENDED: 'VIDEO.UPSTREAM_ENDED',
    /** [502] ffmpeg could not pull or remux the stream (RTSP refused, bad stream, restarts exhausted). */
    UPSTREAM_FAILED: 'VIDEO.UPSTREAM_FAILED',
    /** [503] video.maxStreams cameras are playing in this process. */
    CAPACITY: 'VIDEO.CAPACITY',
    /** [503] video.maxViewersPerStream viewers on this camera. */
    VIEWER_CAPACITY: 'VIDEO.VIEWER_CAPACITY',
    /** [503] An H.265 camera needs a transcode and video.maxTranscodes are running. */
    TRANSCODE_CAPACITY: 'VIDEO.TRANSCODE_CAPACITY',
    /** [503] No free port in video.rtpPortMin..rtpPortMax. */
    NO_RTP_PORT: 'VIDEO.NO_RTP_PORT',
    /** [504] No snapshot within video.snapshotTimeoutMs. */
    SNAPSHOT_TIMEOUT: 'VIDEO.SNAPSHOT_TIMEOUT',
    /** [503] video.enabled is false in this process. */
    DISABLED: 'VIDEO.DISABLED',
    /** [503] The server is shutting down. */
    SHUTTING_DOWN: 'VIDEO.SHUTTING_DOWN',
    /** [409] The camera has no way to play recordings: not a GB/T 28181 channel (§9.8), and no RTSP playback URL template (Hikvision / Dahua NVR) is set for it. */
    PLAYBACK_UNSUPPORTED: 'VIDEO.PLAYBACK_UNSUPPORTED',
    /** [503] Playbacks at capacity: `details.scope` process (video.maxPlaybacks), user (maxPlaybacksPerUser) or camera (maxPlaybacksPerCamera); Retry-After. */
    PLAYBACK_CAPACITY: 'VIDEO.PLAYBACK_CAPACITY',
    /** [410] (WebSocket) The playback session ended (played to its end, or left idle past video.lingerMs): ask for a new one. */
    PLAYBACK_ENDED: 'VIDEO.PLAYBACK_ENDED',
    /** [401] (WebSocket upgrade) The stream token is missing, malformed or not ours. */
    TOKEN_INVALID: 'VIDEO.TOKEN_INVALID',
    /** [401] (WebSocket upgrade) The stream token expired: ask for a new ticket. */
    TOKEN_EXPIRED: 'VIDEO.TOKEN_EXPIRED',
    /** [403] (WebSocket upgrade) The token is for another camera. */
    TOKEN_WRONG_CAMERA: 'VIDEO.TOKEN_WRONG_CAMERA',
    /** (players) The viewer's connection could not keep up: closed. */
    VIEWER_TOO_SLOW: 'VIDEO.VIEWER_TOO_SLOW',
    /** [409] An evidence picture no longer matches its recorded SHA-256. */
    EVIDENCE_CHECKSUM_MISMATCH: 'VIDEO.EVIDENCE_CHECKSUM_MISMATCH',
    /** [410] An evidence picture is recorded but gone from the store. */
    EVIDENCE_MISSING: 'VIDEO.EVIDENCE_MISSING',
    /** [504] ONVIF probe: the camera's ONVIF service did not answer within video.onvifTimeoutMs (refused, no route, no answer); `details.target`. */
    ONVIF_UNREACHABLE: 'VIDEO.ONVIF_UNREACHABLE',
    /** [502] ONVIF probe: the camera refused the username or password (SOAP fault ter:NotAuthorized, or HTTP 401). */
    ONVIF_AUTH_FAILED: 'VIDEO.ONVIF_AUTH_FAILED',
    /** [502] ONVIF probe: the address answers, but not as an ONVIF device (no SOAP, no media service, no profile, no RTSP stream URI). */
    ONVIF_NOT_ONVIF: 'VIDEO.ONVIF_NOT_ONVIF',
    /** [409] ONVIF probe: the camera has no ONVIF address (host) set, or its kept password can no longer be read (video.credentialKey changed): enter it again. */
    ONVIF_NOT_CONFIGURED: 'VIDEO.ONVIF_NOT_CONFIGURED',
    /** [502] Snapshot URI (ONVIF GetSnapshotUri): not asked — its host is neither the camera's ONVIF host nor in video.snapshotUriAllowHosts (a redirect to another host included), or it is not an http(s) URI. */
    SNAPSHOT_URI_REFUSED: 'VIDEO.SNAPSHOT_URI_REFUSED',
    /** [502] Snapshot URI: the camera answered 401 to its kept ONVIF account (HTTP Digest or Basic), or no account is kept. */
    SNAPSHOT_URI_AUTH_FAILED: 'VIDEO.SNAPSHOT_URI_AUTH_FAILED',
    /** [504] Snapshot URI: no whole picture within video.snapshotUriTimeoutMs. */
    SNAPSHOT_URI_TIMEOUT: 'VIDEO.SNAPSHOT_URI_TIMEOUT',
    /** [502] Snapshot URI: the answer is not a JPEG picture (an HTML page, a header alone) or is larger than video.snapshotUriMaxBytes; `details.reason` not_jpeg / too_large. */
    SNAPSHOT_URI_NOT_JPEG: 'VIDEO.SNAPSHOT_URI_NOT_JPEG',
    /** [502] Snapshot URI: refused connection, no route, or an HTTP status other than 200. */
    SNAPSHOT_URI_FAILED: 'VIDEO.SNAPSHOT_URI_FAILED',
    /** [400] ONVIF probe: the address (or what its name resolves to) is not probed — loopback, link-local, multicast, reserved, or outside video.onvifAllowedNetworks; `details.target`. */
    ONVIF_ADDRESS_REFUSED: 'VIDEO.ONVIF_ADDRESS_REFUSED',
    /** [502] ONVIF probe: an answer larger than video.onvifMaxAnswerBytes (cut as it arrived), or one that took more than the probe's heap to read; `details.maxAnswerBytes`. */
    ONVIF_ANSWER_TOO_LARGE: 'VIDEO.ONVIF_ANSWER_TOO_LARGE',
    /** [503] ONVIF probe: video.onvifProbeConcurrency probes already run in this process; nothing was changed or asked; `details.max`, Retry-After. */
    ONVIF_PROBE_BUSY: 'VIDEO.ONVIF_PROBE_BUSY',
  },
  EVIDENCE: {
    /** [404] */
    NOT_FOUND: 'EVIDENCE.NOT_FOUND',
    /** [415] A photo (an alarm's, a rectification task's) that is not a JPEG that decodes (header only, cut, made-up size; the console re-encodes what the phone took); too large is 413 PAYLOAD_TOO_LARGE. */
    PHOTO_NOT_JPEG: 'EVIDENCE.PHOTO_NOT_JPEG',
    /** [400] The upload has no photo: send one file in the multipart field `file`. */
    PHOTO_MISSING: 'EVIDENCE.PHOTO_MISSING',
    /** [409] The incident has video.photosPerIncident photos already (a rectification task: video.photosPerTask); `details.limit`. */
    PHOTO_LIMIT: 'EVIDENCE.PHOTO_LIMIT',
    /** [409] The Idempotency-Key was used for another photo of this incident (other bytes): `details.evidenceId` is that photo. Use a new key per photo. */
    PHOTO_KEY_REUSED: 'EVIDENCE.PHOTO_KEY_REUSED',
    /** [409] The incident is resolved or cancelled: no photo is added to a closed record; `details.status`. */
    INCIDENT_CLOSED: 'EVIDENCE.INCIDENT_CLOSED',
  },

  // ---- ops: the admins' queue dashboard (bull-board at /admin/queues; src/modules/ops/queue-board.ts)
  QUEUE_BOARD: {
    /** [403] A change the dashboard does not offer (adding a job, emptying or obliterating a queue, concurrency, rate limits, job schedulers, editing a job…). */
    NOT_OFFERED: 'QUEUE_BOARD.NOT_OFFERED',
    /**
     * [409] A change that would drop or hold back pending jobs of a queue whose work must not wait — the queues
     * of the catalogue's `duringOutage` jobs (alarms: escalations, relay watches; police-relay; notifications):
     * pausing it (or every queue at once), cleaning its jobs in a state other than completed or failed, removing
     * one of its jobs. Their timers are re-created from the outbox only outbox.redispatchAfterMs after they were
     * due, so a supervisor's call would come late. Resuming, retrying, promoting and cleaning finished jobs stay
     * allowed. `details`: `{ queue, action }`.
     */
    PROTECTED_QUEUE: 'QUEUE_BOARD.PROTECTED_QUEUE',
  },

  // ---- patrols: audits, rounds, protection posts (护学岗), rectification
  PATROL_PLAN: {
    /** [404] */
    NOT_FOUND: 'PATROL_PLAN.NOT_FOUND',
  },
  PATROL_RUN: {
    /** [404] */
    NOT_FOUND: 'PATROL_RUN.NOT_FOUND',
  },
  PATROL_ROUND: {
    /** [404] */
    NOT_FOUND: 'PATROL_ROUND.NOT_FOUND',
    /** [409] No camera is left to look at (all reserved by other rounds, or none registered). */
    NO_CAMERAS: 'PATROL_ROUND.NO_CAMERAS',
    /** [403] An operator judging another operator's round. */
    NOT_YOURS: 'PATROL_ROUND.NOT_YOURS',
    /** [409] The camera already has a verdict in this round. */
    ALREADY_JUDGED: 'PATROL_ROUND.ALREADY_JUDGED',
    /** [429] The operator's previous verdict is less than patrols.roundVerdictMinSeconds ago (attack F8c); `details.retryAfterSeconds`. */
    TOO_FAST: 'PATROL_ROUND.TOO_FAST',
    /**
     * [400] A "normal" verdict without a picture of the camera taken for this round (snapshotRef):
     * a camera that gives no picture cannot be seen to be fine (abnormal verdicts — offline… — stay possible).
     */
    NORMAL_NEEDS_PICTURE: 'PATROL_ROUND.NORMAL_NEEDS_PICTURE',
  },
  PATROL_ROUND_ITEM: {
    /** [404] The camera is not in this round. */
    NOT_FOUND: 'PATROL_ROUND_ITEM.NOT_FOUND',
  },
  POST_CHECKIN: {
    /** [404] */
    NOT_FOUND: 'POST_CHECKIN.NOT_FOUND',
    /** [409] */
    ALREADY_CHECKED_OUT: 'POST_CHECKIN.ALREADY_CHECKED_OUT',
    /**
     * [429] The same account, or the same person at the same post (on someone's behalf too),
     * checked in less than patrols.checkinMinGapSeconds ago (attack F8c); `details.retryAfterSeconds`.
     */
    TOO_FREQUENT: 'POST_CHECKIN.TOO_FREQUENT',
    /**
     * [409] The person is still checked in at this post for the same window (an open check-in
     * less than patrols.postEarlyMinutes + postGraceMinutes old); `details.checkinId` is that check-in.
     */
    ALREADY_CHECKED_IN: 'POST_CHECKIN.ALREADY_CHECKED_IN',
  },
  GUARD_PATROL: {
    /** [429] The same guard's last patrol at this school is less than patrols.guardPatrolMinGapMinutes away (attack F8c); `details.retryAfterSeconds`. */
    TOO_FREQUENT: 'GUARD_PATROL.TOO_FREQUENT',
  },
  RECTIFICATION_TASK: {
    /** [404] */
    NOT_FOUND: 'RECTIFICATION_TASK.NOT_FOUND',
    /** [409] */
    ALREADY_CLOSED: 'RECTIFICATION_TASK.ALREADY_CLOSED',
    /** [409] Only a closed task can be reopened. */
    NOT_CLOSED: 'RECTIFICATION_TASK.NOT_CLOSED',
    /**
     * [409] The same problem already has an open task (found again after this one was closed): follow that one;
     * `details.openTaskId` names it.
     */
    OPEN_TASK_EXISTS: 'RECTIFICATION_TASK.OPEN_TASK_EXISTS',
  },
} as const;

type Leaves<T> = T extends string ? T : { [K in keyof T]: Leaves<T[K]> }[keyof T];

/** One of the catalogued codes. */
export type ErrorCode = Leaves<typeof ErrorCode>;

/** The codes `Errors.notFound` answers with (`<ENTITY>.NOT_FOUND`, 404). */
export type NotFoundCode = Extract<ErrorCode, `${string}.NOT_FOUND`>;

import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';

/**
 * A minimal ONVIF device (Profile S, Media ver10) on loopback for the "probe camera" tests: the
 * device service at /onvif/device_service and the media service at /onvif/media_service answer
 * GetSystemDateAndTime, GetServices, GetCapabilities, GetDeviceInformation, GetProfiles,
 * GetVideoSources, GetStreamUri and GetSnapshotUri. Like a real camera it checks the WS-Security
 * UsernameToken of every request outside ONVIF Core's PRE_AUTH class (§5.9.4.3): PasswordDigest =
 * base64(sha1(nonce + created + password)) with the Created time within `maxSkewSeconds` of its
 * clock and each nonce used once, and answers a bad token with HTTP 400 and the SOAP fault
 * env:Sender / ter:NotAuthorized ("Sender not Authorized").
 */
export interface OnvifDeviceOptions {
  username: string;
  password: string;
  /** What GetStreamUri answers, per profile token (default: every profile gets `streamUri`). */
  streamUri: string;
  streamUris?: Record<string, string>;
  snapshotUri?: string;
  manufacturer?: string;
  model?: string;
  /** The device's clock offset from ours (ms): the client must use the device's time for Created. */
  clockOffsetMs?: number;
  maxSkewSeconds?: number;
  /** The text of its SOAP faults' Reason (default 'Sender not Authorized' / 'Optional Action Not Implemented'): a device's own words. */
  faultReason?: { notAuthorized?: string; notSupported?: string };
  /** Actions it answers with the not-supported fault although it knows them (a device that fails midway). */
  refuse?: string[];
}

export interface OnvifDevice {
  host: string;
  port: number;
  /** Requests seen: the SOAP action, and whether its UsernameToken was checked and accepted. */
  requests: { action: string; path: string; auth: 'none' | 'ok' | 'refused' }[];
  stop: () => Promise<void>;
}

const PRE_AUTH = new Set([
  'GetSystemDateAndTime',
  'GetServices',
  'GetCapabilities',
  'GetServiceCapabilities',
  'GetWsdlUrl',
  'GetHostname',
  'GetEndpointReference',
]);

const envelope = (body: string) =>
  '<?xml version="1.0" encoding="UTF-8"?>' +
  '<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" ' +
  'xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:ter="http://www.onvif.org/ver10/error">' +
  `<env:Body>${body}</env:Body></env:Envelope>`;

const fault = (subcode: string, reason: string) =>
  envelope(
    `<env:Fault><env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value>${subcode}</env:Value></env:Subcode></env:Code>` +
      `<env:Reason><env:Text xml:lang="en">${reason}</env:Text></env:Reason></env:Fault>`,
  );

const tag = (xml: string, name: string): string | null => {
  const m = new RegExp(`<(?:[\\w-]+:)?${name}(?:\\s[^>]*)?>([^<]*)</(?:[\\w-]+:)?${name}>`).exec(xml);
  return m ? m[1].trim() : null;
};

const PROFILES = [
  { token: 'Profile_1', name: 'mainStream', width: 1920, height: 1080, encoding: 'H264' },
  { token: 'Profile_2', name: 'subStream', width: 640, height: 360, encoding: 'H264' },
];

export async function startOnvifDevice(o: OnvifDeviceOptions): Promise<OnvifDevice> {
  const requests: OnvifDevice['requests'] = [];
  const usedNonces = new Set<string>();
  const maxSkew = (o.maxSkewSeconds ?? 300) * 1000;
  const now = () => new Date(Date.now() + (o.clockOffsetMs ?? 0));
  let base = '';

  /** The UsernameToken check of a real camera: user, digest over nonce + created + password, fresh Created, nonce not replayed. */
  const authorised = (xml: string): boolean => {
    const username = tag(xml, 'Username');
    const password = tag(xml, 'Password');
    const nonce = tag(xml, 'Nonce');
    const created = tag(xml, 'Created');
    if (!username || !password || !nonce || !created) return false;
    if (!/#PasswordDigest"/.test(xml)) return false; // PasswordText is refused, as cameras with digest-only policies do
    if (username !== o.username) return false;
    const at = Date.parse(created);
    if (!Number.isFinite(at) || Math.abs(at - now().getTime()) > maxSkew) return false;
    if (usedNonces.has(nonce)) return false;
    const expected = createHash('sha1')
      .update(Buffer.concat([Buffer.from(nonce, 'base64'), Buffer.from(created, 'utf8'), Buffer.from(o.password, 'utf8')]))
      .digest();
    const given = Buffer.from(password, 'base64');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return false;
    usedNonces.add(nonce);
    return true;
  };

  const answer = (action: string, xml: string): string | null => {
    const d = now();
    switch (action) {
      case 'GetSystemDateAndTime':
        return envelope(
          '<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>' +
            '<tt:TimeZone><tt:TZ>CST-8</tt:TZ></tt:TimeZone><tt:UTCDateTime>' +
            `<tt:Time><tt:Hour>${d.getUTCHours()}</tt:Hour><tt:Minute>${d.getUTCMinutes()}</tt:Minute><tt:Second>${d.getUTCSeconds()}</tt:Second></tt:Time>` +
            `<tt:Date><tt:Year>${d.getUTCFullYear()}</tt:Year><tt:Month>${d.getUTCMonth() + 1}</tt:Month><tt:Day>${d.getUTCDate()}</tt:Day></tt:Date>` +
            '</tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>',
        );
      case 'GetServices':
        return envelope(
          '<tds:GetServicesResponse>' +
            `<tds:Service><tds:Namespace>http://www.onvif.org/ver10/device/wsdl</tds:Namespace><tds:XAddr>${base}/onvif/device_service</tds:XAddr>` +
            '<tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>' +
            `<tds:Service><tds:Namespace>http://www.onvif.org/ver10/media/wsdl</tds:Namespace><tds:XAddr>${base}/onvif/media_service</tds:XAddr>` +
            '<tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>' +
            '</tds:GetServicesResponse>',
        );
      case 'GetCapabilities':
        return envelope(
          '<tds:GetCapabilitiesResponse><tds:Capabilities>' +
            `<tt:Device><tt:XAddr>${base}/onvif/device_service</tt:XAddr></tt:Device>` +
            `<tt:Media><tt:XAddr>${base}/onvif/media_service</tt:XAddr><tt:StreamingCapabilities><tt:RTP_TCP>true</tt:RTP_TCP></tt:StreamingCapabilities></tt:Media>` +
            '</tds:Capabilities></tds:GetCapabilitiesResponse>',
        );
      case 'GetDeviceInformation':
        return envelope(
          `<tds:GetDeviceInformationResponse><tds:Manufacturer>${o.manufacturer ?? 'Shouhu Test'}</tds:Manufacturer><tds:Model>${o.model ?? 'FAKE-IPC-1'}</tds:Model>` +
            '<tds:FirmwareVersion>V5.7.3 build 240101</tds:FirmwareVersion><tds:SerialNumber>FAKE0001</tds:SerialNumber><tds:HardwareId>88</tds:HardwareId>' +
            '</tds:GetDeviceInformationResponse>',
        );
      case 'GetVideoSources':
        return envelope(
          '<trt:GetVideoSourcesResponse><trt:VideoSources token="VideoSource_1"><tt:Framerate>25</tt:Framerate>' +
            '<tt:Resolution><tt:Width>1920</tt:Width><tt:Height>1080</tt:Height></tt:Resolution></trt:VideoSources></trt:GetVideoSourcesResponse>',
        );
      case 'GetProfiles':
        return envelope(
          '<trt:GetProfilesResponse>' +
            PROFILES.map(
              (p) =>
                `<trt:Profiles token="${p.token}" fixed="true"><tt:Name>${p.name}</tt:Name>` +
                '<tt:VideoSourceConfiguration token="VideoSourceToken"><tt:Name>VideoSourceConfig</tt:Name><tt:UseCount>2</tt:UseCount>' +
                '<tt:SourceToken>VideoSource_1</tt:SourceToken><tt:Bounds x="0" y="0" width="1920" height="1080"/></tt:VideoSourceConfiguration>' +
                `<tt:VideoEncoderConfiguration token="VideoEncoderToken_${p.token}"><tt:Name>${p.name}</tt:Name><tt:UseCount>1</tt:UseCount>` +
                `<tt:Encoding>${p.encoding}</tt:Encoding><tt:Resolution><tt:Width>${p.width}</tt:Width><tt:Height>${p.height}</tt:Height></tt:Resolution>` +
                '<tt:Quality>3</tt:Quality><tt:RateControl><tt:FrameRateLimit>25</tt:FrameRateLimit><tt:EncodingInterval>1</tt:EncodingInterval>' +
                '<tt:BitrateLimit>2048</tt:BitrateLimit></tt:RateControl></tt:VideoEncoderConfiguration></trt:Profiles>',
            ).join('') +
            '</trt:GetProfilesResponse>',
        );
      case 'GetStreamUri': {
        const token = tag(xml, 'ProfileToken') ?? '';
        if (!PROFILES.some((p) => p.token === token)) return null;
        const uri = o.streamUris?.[token] ?? o.streamUri;
        return envelope(
          `<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>${uri.replace(/&/g, '&amp;')}</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>` +
            '<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetStreamUriResponse>',
        );
      }
      case 'GetSnapshotUri':
        if (!o.snapshotUri) return null;
        return envelope(
          `<trt:GetSnapshotUriResponse><trt:MediaUri><tt:Uri>${o.snapshotUri.replace(/&/g, '&amp;')}</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>` +
            '<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetSnapshotUriResponse>',
        );
      default:
        return null;
    }
  };

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      const xml = Buffer.concat(parts).toString('utf8');
      const send = (status: number, body: string) => {
        res.writeHead(status, { 'Content-Type': 'application/soap+xml; charset=utf-8' });
        res.end(body);
      };
      const m = /<(?:[\w-]+:)?Body[^>]*>\s*<(?:[\w-]+:)?(\w+)/.exec(xml);
      if (req.method !== 'POST' || !m || !/^\/onvif\/(device|media)_service$/.test(req.url ?? '')) {
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        res.end('not found');
        return;
      }
      const action = m[1];
      let auth: 'none' | 'ok' | 'refused' = 'none';
      if (!PRE_AUTH.has(action)) {
        auth = authorised(xml) ? 'ok' : 'refused';
      }
      requests.push({ action, path: req.url!, auth });
      if (auth === 'refused') return send(400, fault('ter:NotAuthorized', o.faultReason?.notAuthorized ?? 'Sender not Authorized'));
      const body = o.refuse?.includes(action) ? null : answer(action, xml);
      if (body === null) return send(400, fault('ter:ActionNotSupported', o.faultReason?.notSupported ?? 'Optional Action Not Implemented'));
      send(200, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
  return {
    host: '127.0.0.1',
    port,
    requests,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

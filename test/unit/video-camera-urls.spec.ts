import { CredentialBox } from '../../src/modules/video/credential-box';
import { fillPlaybackTemplate, hideAccount, templateProblem, withAccount } from '../../src/modules/video/camera-urls';

describe('RTSP recorder playback URLs and camera accounts', () => {
  const range = { start: new Date('2026-11-30T03:04:05Z'), end: new Date('2026-11-30T03:14:05Z') };

  it('fills Hikvision (UTC, trailing Z) and Dahua (recorder local time) templates', () => {
    expect(
      fillPlaybackTemplate(
        'rtsp://nvr:554/Streaming/tracks/101?starttime={startUtc:YYYYMMDDTHHmmssZ}&endtime={endUtc:YYYYMMDDTHHmmssZ}',
        range,
        'Asia/Shanghai',
      ),
    ).toBe('rtsp://nvr:554/Streaming/tracks/101?starttime=20261130T030405Z&endtime=20261130T031405Z');
    expect(
      fillPlaybackTemplate('rtsp://nvr/cam/playback?channel=1&starttime={start:YYYY_MM_DD_HH_mm_ss}&endtime={end:YYYY_MM_DD_HH_mm_ss}', range, 'Asia/Shanghai'),
    ).toBe('rtsp://nvr/cam/playback?channel=1&starttime=2026_11_30_11_04_05&endtime=2026_11_30_11_14_05');
    // Past local midnight the date moves too.
    expect(
      fillPlaybackTemplate('rtsp://n/x?{start:YYYYMMDD HHmmss}-{end:HH}', { start: new Date('2026-11-30T16:30:00Z'), end: range.end }, 'Asia/Shanghai'),
    ).toBe('rtsp://n/x?20261201 003000-11');
  });

  it('refuses templates without both ends, with an account, or with unknown placeholders', () => {
    expect(templateProblem('')).toBeNull();
    expect(templateProblem('rtsp://nvr/x?s={start:YYYY}&e={endUtc:YYYY}')).toBeNull();
    expect(templateProblem('rtsp://nvr/x?s={start:YYYY}')).toMatch(/end/);
    expect(templateProblem('http://nvr/x?s={start:YYYY}&e={end:YYYY}')).toMatch(/rtsp/);
    expect(templateProblem('rtsp://u:p@nvr/x?s={start:YYYY}&e={end:YYYY}')).toMatch(/account/);
    expect(templateProblem('rtsp://nvr/x?s={start:YYYY}&e={end:YYYY}&c={channel}')).toMatch(/placeholder/);
  });

  it('adds the account to RTSP pulls only when the address has none, and hides accounts in messages', () => {
    const a = { username: 'admin', password: 'p@ss:w/rd' };
    expect(withAccount('rtsp://10.0.0.5:554/Streaming/Channels/101', a)).toBe('rtsp://admin:p%40ss%3Aw%2Frd@10.0.0.5:554/Streaming/Channels/101');
    expect(withAccount('rtsp://other:x@10.0.0.5/a', a)).toBe('rtsp://other:x@10.0.0.5/a');
    expect(withAccount('http://10.0.0.5/a', a)).toBe('http://10.0.0.5/a');
    expect(withAccount('rtsp://10.0.0.5/a', null)).toBe('rtsp://10.0.0.5/a');
    expect(hideAccount('rtsp://admin:secret@10.0.0.5:554/x: Server returned 401 Unauthorized')).toBe('rtsp://10.0.0.5:554/x: Server returned 401 Unauthorized');
  });

  it('keeps passwords sealed (AES-256-GCM): another key cannot read them, a changed byte is refused', () => {
    const box = new CredentialBox('k'.repeat(32));
    const sealed = box.seal('Cam-Pass-7f3a');
    expect(sealed).not.toContain('Cam-Pass');
    expect(box.open(sealed)).toBe('Cam-Pass-7f3a');
    expect(box.seal('Cam-Pass-7f3a')).not.toBe(sealed); // a fresh IV each time
    expect(new CredentialBox('j'.repeat(32)).open(sealed)).toBeNull();
    const parts = sealed.split('.');
    parts[3] = (parts[3][0] === 'A' ? 'B' : 'A') + parts[3].slice(1);
    expect(box.open(parts.join('.'))).toBeNull();
    expect(box.open('garbage')).toBeNull();
  });
});

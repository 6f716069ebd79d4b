import { onvifAddress, refusedAddress } from '../../src/modules/video/onvif-address';
import { onHost } from '../../src/modules/video/onvif-probe';
import { withAccount } from '../../src/modules/video/camera-urls';

const DEFAULT = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7'];

describe('ONVIF probe addresses (onvif-address.ts)', () => {
  it('allows the camera networks of the default list and refuses what no camera has', () => {
    for (const a of ['10.20.1.5', '192.168.1.64', '172.31.255.1', '100.64.3.4', 'fd12::5', '::ffff:192.168.1.64'])
      expect([a, refusedAddress(a, DEFAULT)]).toEqual([a, null]);
    for (const a of ['127.0.0.1', '::1', '::ffff:127.0.0.1', '169.254.169.254', 'fe80::1', '0.0.0.0', '::', '224.0.0.251', 'ff02::1', '255.255.255.255'])
      expect([a, refusedAddress(a, DEFAULT)]).toEqual([a, expect.stringMatching(/loopback|link-local|unspecified|multicast|reserved/)]);
    for (const a of ['8.8.8.8', '172.32.0.1', '2400:3200::1']) expect(refusedAddress(a, DEFAULT)).toMatch(/outside video.onvifAllowedNetworks/);
  });

  it('an entry inside a refused range names it; a wide entry does not', () => {
    expect(refusedAddress('127.0.0.1', ['127.0.0.0/8'])).toBeNull();
    expect(refusedAddress('127.0.0.2', ['127.0.0.1/32'])).toMatch(/loopback/);
    expect(refusedAddress('127.0.0.1', ['0.0.0.0/0'])).toMatch(/loopback/);
    expect(refusedAddress('169.254.169.254', ['0.0.0.0/0'])).toMatch(/link-local/);
    expect(refusedAddress('8.8.8.8', ['0.0.0.0/0'])).toBeNull();
    expect(refusedAddress('2002:7f00:1::1', ['::/0'])).toMatch(/carries 127.0.0.1/); // 6to4 of loopback
  });

  it('resolves a name and checks every address it has; connects to the checked one', async () => {
    expect(await onvifAddress('192.168.1.64', DEFAULT)).toEqual({ address: '192.168.1.64' });
    expect(await onvifAddress('localhost', DEFAULT)).toEqual({ refused: expect.stringMatching(/^localhost resolves to .*loopback/) });
    expect(await onvifAddress('localhost', ['127.0.0.0/8', '::1'])).toEqual({ address: expect.stringMatching(/^(127\.0\.0\.1|::1)$/) });
    expect(await onvifAddress('no-such-camera.invalid', DEFAULT)).toEqual({ unresolved: expect.stringMatching(/no-such-camera\.invalid/) });
  });

  it("puts a device's URIs on the configured host, port, path and query kept", () => {
    expect(onHost('rtsp://127.0.0.1:18554/stolen', '10.0.0.5')).toEqual({ uri: 'rtsp://10.0.0.5:18554/stolen', movedFrom: '127.0.0.1' });
    expect(onHost('rtsp://192.168.1.64/Streaming/Channels/101?transportmode=unicast', 'cam-7.school.local')).toEqual({
      uri: 'rtsp://cam-7.school.local/Streaming/Channels/101?transportmode=unicast',
      movedFrom: '192.168.1.64',
    });
    expect(onHost('rtsp://u:p@[fe80::1]:554/x', 'fd00::7')).toEqual({ uri: 'rtsp://[fd00::7]:554/x', movedFrom: '[fe80::1]' });
    expect(onHost('http://CAM.local/snap.jpg', 'cam.local')).toEqual({ uri: 'http://CAM.local/snap.jpg', movedFrom: null });
    expect(onHost('', '10.0.0.5')).toEqual({ uri: '', movedFrom: null });
  });

  it('sends the account to the configured host only', () => {
    const acc = { username: 'admin', password: 'pw', host: '10.0.0.5' };
    expect(withAccount('rtsp://10.0.0.5:554/a', acc)).toBe('rtsp://admin:pw@10.0.0.5:554/a');
    expect(withAccount('rtsp://10.0.0.6:554/a', acc)).toBe('rtsp://10.0.0.6:554/a');
    expect(withAccount('rtsp://10.0.0.6:554/a', { username: 'admin', password: 'pw' })).toBe('rtsp://admin:pw@10.0.0.6:554/a');
  });
});

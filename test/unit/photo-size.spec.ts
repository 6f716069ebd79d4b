import { photoTooLarge } from '../../src/modules/video/photo-uploads.service';

/** The photo size refusal says the limit as people say it (the guard's phone shows it as is), never in bytes. */
describe('photoTooLarge', () => {
  it('says the limit in MB (one decimal when not whole), in KB under 1 MB', () => {
    expect(photoTooLarge(5_242_880)).toBe('照片超过 5 MB 的上限');
    expect(photoTooLarge(10 * 1_048_576)).toBe('照片超过 10 MB 的上限');
    expect(photoTooLarge(1_572_864)).toBe('照片超过 1.5 MB 的上限');
    expect(photoTooLarge(65_536)).toBe('照片超过 64 KB 的上限');
    expect(photoTooLarge(52_428_800)).not.toMatch(/字节|\d{6,}/);
  });
});

import * as jpegJs from 'jpeg-js';

/** A real w×h JPEG (a gradient, `shade` telling pictures apart). */
export function jpeg(w: number, h: number, shade = 0): Buffer {
  const data = Buffer.alloc(w * h * 4);
  for (let i = 0; i < w * h; i++) data.set([(i % w) & 255, (i / w + shade) & 255, 96, 255], i * 4);
  return jpegJs.encode({ data, width: w, height: h }, 80).data;
}

/** The same JPEG with an APP1 EXIF segment (a phone's GPS tags as text) after SOI: what the server must not keep. */
export function withExif(j: Buffer): Buffer {
  const payload = Buffer.concat([Buffer.from('Exif\0\0'), Buffer.from('GPSLatitude 29.382756 GPSLongitude 106.540184')]);
  const seg = Buffer.concat([Buffer.from([0xff, 0xe1, (payload.length + 2) >> 8, (payload.length + 2) & 255]), payload]);
  return Buffer.concat([j.subarray(0, 2), seg, j.subarray(2)]);
}

import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * Device passwords that must be sent again, not only checked (ONVIF UsernameToken digest, RTSP
 * digest auth): AES-256-GCM with a key from video.credentialKey (else derived from
 * auth.jwtSecret), stored as `v1.<iv>.<tag>.<ciphertext>` (base64url). Never returned by the API,
 * never written to the audit log ('set' / null only), never put in a camera's stream address.
 */
export class CredentialBox {
  private readonly key: Buffer;

  constructor(secret: string) {
    this.key = createHash('sha256').update('shouhu/device-credential/v1\0').update(secret).digest();
  }

  seal(plain: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return ['v1', iv.toString('base64url'), c.getAuthTag().toString('base64url'), body.toString('base64url')].join('.');
  }

  /** The password, or null when it was sealed under another key (the key changed: ask for it again). */
  open(sealed: string): string | null {
    const [v, iv, tag, body] = sealed.split('.');
    if (v !== 'v1' || !iv || !tag || body === undefined) return null;
    try {
      const d = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
      d.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([d.update(Buffer.from(body, 'base64url')), d.final()]).toString('utf8');
    } catch {
      return null;
    }
  }
}

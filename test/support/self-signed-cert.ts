// A throw-away self-signed certificate for 127.0.0.1, made with the system's openssl.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export type TlsKey = 'rsa' | 'ec';

export interface SelfSignedCert {
  certFile: string;
  keyFile: string;
  /** The certificate itself, to trust it as a CA on the client side. */
  cert: Buffer;
  remove(): void;
}

/**
 * Writes cert.pem and key.pem into a new temp dir. `rsa` gives RSA-2048 (the most common
 * server key, and the costlier handshake); `ec` gives ECDSA P-256.
 */
export function makeSelfSignedCert(kind: TlsKey = 'ec'): SelfSignedCert {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nopesight-tls-'));
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  const keyArgs = kind === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
  execFileSync('openssl', [
    'req', '-x509', ...keyArgs, '-nodes', '-days', '2',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', keyFile, '-out', certFile,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  return { certFile, keyFile, cert: readFileSync(certFile), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

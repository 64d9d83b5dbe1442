import https from 'node:https';
import http from 'node:http';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { makeSelfSignedCert, type SelfSignedCert } from '../support/self-signed-cert.ts';

function httpsGet(url: string, ca: Buffer): Promise<{ status: number; body: string; protocol: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, protocol: (res.socket as { getProtocol?: () => string | null }).getProtocol?.() ?? undefined }));
    });
    req.on('error', reject);
  });
}

function plainGet(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

describe('HTTPS listener (TLS_CERT_FILE + TLS_KEY_FILE)', () => {
  let cert: SelfSignedCert;
  let server: TestServer;

  beforeAll(async () => {
    cert = makeSelfSignedCert('ec');
    server = await startTestServer({ store: 'memory', config: { tlsCertFile: cert.certFile, tlsKeyFile: cert.keyFile } });
  });
  afterAll(async () => {
    await server?.close();
    cert?.remove();
  });

  it('serves over TLS with the configured certificate', async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const res = await httpsGet(`${server.url}/healthz`, cert.cert);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ status: 'ok' });
    expect(res.protocol).toMatch(/^TLSv1\.[23]$/);
  });

  it('does not answer plain HTTP on the TLS port', async () => {
    const plainUrl = server.url.replace('https://', 'http://');
    await expect(plainGet(`${plainUrl}/healthz`)).rejects.toThrow();
  });

  it('answers a request the HTTP parser refuses in the contract shape, with HSTS as over any TLS answer', async () => {
    const { port } = new URL(server.url);
    const received = await new Promise<string>((resolve, reject) => {
      const socket = tls.connect({ port: Number(port), host: '127.0.0.1', ca: cert.cert, servername: 'localhost' }, () => socket.write('GARBAGE\r\n\r\n'));
      let text = '';
      socket.on('data', (d) => { text += String(d); });
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    expect(received).toMatch(/^HTTP\/1\.1 400 /);
    expect(received).toMatch(/\r\nStrict-Transport-Security: max-age=31536000; includeSubDomains\r\n/);
    expect(received).toContain('"code":"MALFORMED_REQUEST"');
  });

  it('refuses to start with only one of the two files', async () => {
    await expect(startTestServer({ store: 'memory', config: { tlsCertFile: cert.certFile } })).rejects.toThrow(
      'TLS_CERT_FILE and TLS_KEY_FILE must be set together',
    );
    await expect(startTestServer({ store: 'memory', config: { tlsKeyFile: cert.keyFile } })).rejects.toThrow(
      'TLS_CERT_FILE and TLS_KEY_FILE must be set together',
    );
  });
});

// The Temporal target of every process: plaintext when no TEMPORAL_TLS_* is set, mTLS from the files when they are,
// and a certificate without its key refused by name (the process stops at start instead of connecting without it).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { temporalCliFlags, temporalConnectionOptions } from '../../common/temporal-connection.ts';

const dir = mkdtempSync(join(tmpdir(), 'tls-'));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const cert = file('client.pem', 'CERT');
const key = file('client.key', 'KEY');
const ca = file('ca.pem', 'CA');
const address = '127.0.0.1:7333';

describe('temporalConnectionOptions', () => {
  it('when no TLS variable is set, then the connection is plaintext to the address', () => {
    expect(temporalConnectionOptions({ TEMPORAL_ADDRESS: address })).toStrictEqual({ address });
    expect(temporalCliFlags({ TEMPORAL_ADDRESS: address })).toStrictEqual(['--address', address]);
  });

  it('when the certificate, key and CA are set, then the client presents the pair and checks the server against the CA', () => {
    const c = { TEMPORAL_ADDRESS: address, TEMPORAL_TLS_CLIENT_CERT_PATH: cert, TEMPORAL_TLS_CLIENT_KEY_PATH: key, TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca };
    const { tls } = temporalConnectionOptions(c);
    expect(Buffer.from(tls!.clientCertPair!.crt).toString()).toBe('CERT');
    expect(Buffer.from(tls!.clientCertPair!.key).toString()).toBe('KEY');
    expect(Buffer.from(tls!.serverRootCACertificate!).toString()).toBe('CA');
    expect(temporalCliFlags(c)).toStrictEqual(['--address', address, '--tls-cert-path', cert, '--tls-key-path', key, '--tls-ca-path', ca]);
  });

  it('when only a CA is set, then TLS is on without a client certificate', () => {
    const { tls } = temporalConnectionOptions({ TEMPORAL_ADDRESS: address, TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca });
    expect(tls).toBeDefined();
    expect(tls!.clientCertPair).toBeUndefined();
  });

  it('when a certificate is set without its key, or a key without its certificate, then it is refused naming both variables', () => {
    expect(() => temporalConnectionOptions({ TEMPORAL_ADDRESS: address, TEMPORAL_TLS_CLIENT_CERT_PATH: cert }))
      .toThrow('TEMPORAL_TLS_CLIENT_CERT_PATH is set without TEMPORAL_TLS_CLIENT_KEY_PATH');
    expect(() => temporalConnectionOptions({ TEMPORAL_ADDRESS: address, TEMPORAL_TLS_CLIENT_KEY_PATH: key }))
      .toThrow('TEMPORAL_TLS_CLIENT_KEY_PATH is set without TEMPORAL_TLS_CLIENT_CERT_PATH');
  });
});

// How every process reaches the Temporal frontend: its address, and TLS when TEMPORAL_TLS_* say so (the cluster
// profile's mTLS, or Temporal Cloud). One function for the client's Connection and the worker's NativeConnection, and
// the same settings as flags for the stock `temporal` CLI.
import { readFileSync } from 'node:fs';
import type { TLSConfig } from '@temporalio/client';
import type { TemporalTlsConfig } from './config.ts';

type TemporalTarget = TemporalTlsConfig & { TEMPORAL_ADDRESS: string };

/** `{ address, tls }` for Connection.connect / NativeConnection.connect; refuses a certificate without its key. */
export function temporalConnectionOptions(c: TemporalTarget): { address: string; tls?: TLSConfig } {
  const { TEMPORAL_TLS_CLIENT_CERT_PATH: cert, TEMPORAL_TLS_CLIENT_KEY_PATH: key, TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca, TEMPORAL_TLS_SERVER_NAME: name } = c;
  if ((cert === undefined) !== (key === undefined)) {
    throw new Error(
      cert === undefined
        ? 'TEMPORAL_TLS_CLIENT_KEY_PATH is set without TEMPORAL_TLS_CLIENT_CERT_PATH: mTLS needs both the certificate and its key'
        : 'TEMPORAL_TLS_CLIENT_CERT_PATH is set without TEMPORAL_TLS_CLIENT_KEY_PATH: mTLS needs both the certificate and its key',
    );
  }
  if (cert === undefined && ca === undefined && name === undefined) return { address: c.TEMPORAL_ADDRESS };
  const tls: TLSConfig = {};
  if (cert !== undefined && key !== undefined) tls.clientCertPair = { crt: readFileSync(cert), key: readFileSync(key) };
  if (ca !== undefined) tls.serverRootCACertificate = readFileSync(ca);
  if (name !== undefined) tls.serverNameOverride = name;
  return { address: c.TEMPORAL_ADDRESS, tls };
}

/** The same target as flags of the stock `temporal` CLI. */
export function temporalCliFlags(c: TemporalTarget): string[] {
  const flags = ['--address', c.TEMPORAL_ADDRESS];
  if (c.TEMPORAL_TLS_CLIENT_CERT_PATH) flags.push('--tls-cert-path', c.TEMPORAL_TLS_CLIENT_CERT_PATH);
  if (c.TEMPORAL_TLS_CLIENT_KEY_PATH) flags.push('--tls-key-path', c.TEMPORAL_TLS_CLIENT_KEY_PATH);
  if (c.TEMPORAL_TLS_SERVER_CA_CERT_PATH) flags.push('--tls-ca-path', c.TEMPORAL_TLS_SERVER_CA_CERT_PATH);
  if (c.TEMPORAL_TLS_SERVER_NAME) flags.push('--tls-server-name', c.TEMPORAL_TLS_SERVER_NAME);
  return flags;
}

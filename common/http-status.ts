// The HTTP endpoint every long-running process serves on its status port: GET /metrics (Prometheus text of its
// registry) and GET /healthz (200 when `health().ok`, else 503; the body is `health()` as JSON).
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export function serveStatus(registry: Registry, health: () => { ok: boolean } & Record<string, unknown>, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    } else if (req.url === '/healthz') {
      const h = health();
      res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(h));
    } else {
      res.writeHead(404).end('not found: try /metrics or /healthz\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

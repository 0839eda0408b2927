// A pass-through HTTP proxy that counts requests, placed between the worker and the Twilio spec mock so a test
// can count the SMS actually sent (the mock itself keeps no state).
import { createServer, request, type Server } from 'node:http';

export interface CountingProxy {
  url: string;
  count: (pred: (method: string, path: string) => boolean) => number;
  close: () => Promise<void>;
}

export async function countingProxy(target: string): Promise<CountingProxy> {
  const seen: Array<{ method: string; path: string; status: number }> = [];
  const t = new URL(target);
  const server: Server = createServer((req, res) => {
    const upstream = request(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: { ...req.headers, host: t.host } },
      (up) => {
        seen.push({ method: req.method ?? '', path: req.url ?? '', status: up.statusCode ?? 0 });
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', (err) => res.writeHead(502).end(err.message));
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    count: (pred) => seen.filter((s) => s.status < 300 && pred(s.method, s.path)).length,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

// The alert subscriber of the latency phase, on a thread of its own: an alert is timestamped when it reaches this
// thread's event loop, not when the benchmark's main thread (busy generating and producing the stream) gets to it.
import { parentPort, workerData } from 'node:worker_threads';
import { Redis, type RedisOptions } from 'ioredis';

const port = parentPort!;
const redis = new Redis({ ...(workerData as RedisOptions), lazyConnect: true });
let logged = false;
redis.on('error', (err: Error) => {
  if (!logged) port.postMessage({ kind: 'error', message: err.message });
  logged = true;
});
redis.on('pmessage', (_pattern: string, channel: string, message: string) => {
  port.postMessage({ kind: 'alert', channel, message, at: performance.timeOrigin + performance.now() });
});
port.on('message', (cmd: { id: number; op: 'connect' | 'psubscribe' | 'punsubscribe' | 'quit'; pattern?: string }) => {
  const run = cmd.op === 'connect' ? redis.connect() : cmd.op === 'quit' ? redis.quit() : redis[cmd.op](cmd.pattern!);
  run.then(
    () => port.postMessage({ kind: 'done', id: cmd.id }),
    (err: Error) => port.postMessage({ kind: 'done', id: cmd.id, error: err.message }),
  );
});

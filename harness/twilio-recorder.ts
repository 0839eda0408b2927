// Twilio's message log in front of the spec mock, for tests and the chaos harness. Prism (stack/twilio-mock.sh)
// validates every request against Twilio's OpenAPI description but keeps no state, so it cannot say what was sent.
// This proxy passes each request on to it and keeps a log of the messages it accepted:
// - POST …/Messages.json that the mock accepts (2xx) is a message sent; its reply gets a sid of its own (the mock's
//   example reply has the same sid every time) and the log keeps to, from, body and date_created;
// - GET …/Messages.json (the Messages list) is answered from the log, newest first, filtered by To and From, in
//   Twilio's list shape, so that a sender looking up what it already sent sees what was really sent.
// Faults: `delayReplyMs` holds the reply after the message was logged (Twilio slower than the caller's timeout);
// `failCreates` answers 500 without sending; `failAfterCreate` logs the message, then answers 500 (an ambiguous
// failure: sent, but the caller cannot know).
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';

export interface RecordedMessage {
  sid: string;
  to: string;
  from: string;
  body: string;
  dateCreated: Date;
}

export interface TwilioFaults {
  delayReplyMs?: number;
  failCreates?: boolean;
  failAfterCreate?: boolean;
}

export interface TwilioRecorder {
  url: string;
  /** Every message accepted, in order. */
  readonly messages: readonly RecordedMessage[];
  /** Requests seen per method and path, whatever their outcome (for "was it asked at all"). */
  requests: (pred: (method: string, path: string) => boolean) => number;
  faults: TwilioFaults;
  close: () => Promise<void>;
}

const MESSAGES_PATH = /^\/2010-04-01\/Accounts\/(AC[0-9a-fA-F]{32})\/Messages\.json(\?.*)?$/;

const readBody = (req: IncomingMessage) =>
  new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
};

/** Twilio's message resource, as much of it as clients read. */
const resource = (accountSid: string, m: RecordedMessage) => ({
  sid: m.sid, account_sid: accountSid, to: m.to, from: m.from, body: m.body, status: 'queued', direction: 'outbound-api',
  date_created: m.dateCreated.toUTCString(), date_updated: m.dateCreated.toUTCString(), date_sent: null,
  num_segments: '1', num_media: '0', price: null, price_unit: 'USD', api_version: '2010-04-01', error_code: null, error_message: null,
  uri: `/2010-04-01/Accounts/${accountSid}/Messages/${m.sid}.json`, subresource_uris: {},
});

export async function twilioRecorder(target: string, faults: TwilioFaults = {}): Promise<TwilioRecorder> {
  const messages: RecordedMessage[] = [];
  const seen: Array<{ method: string; path: string }> = [];
  const t = new URL(target);

  const forward = (req: IncomingMessage, body: Buffer) =>
    new Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }>((resolve, reject) => {
      const up = request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: { ...req.headers, host: t.host } }, (r) => {
        readBody(r).then((b) => resolve({ status: r.statusCode ?? 502, headers: r.headers, body: b }), reject);
      });
      up.on('error', reject);
      up.end(body);
    });

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? '';
    const path = req.url ?? '';
    seen.push({ method, path });
    const body = await readBody(req);
    const m = MESSAGES_PATH.exec(path);
    if (m && method === 'GET') {
      const q = new URL(path, 'http://x').searchParams;
      const to = q.get('To');
      const from = q.get('From');
      const pageSize = Math.min(Number(q.get('PageSize') ?? 50) || 50, 1000);
      const list = messages.filter((x) => (!to || x.to === to) && (!from || x.from === from)).reverse().slice(0, pageSize);
      json(res, 200, {
        messages: list.map((x) => resource(m[1]!, x)), end: Math.max(list.length - 1, 0), first_page_uri: path, next_page_uri: null,
        page: 0, page_size: pageSize, previous_page_uri: null, start: 0, uri: path,
      });
      return;
    }
    if (m && method === 'POST') {
      if (faults.failCreates) return json(res, 500, { code: 20500, message: 'Internal Server Error (recorder fault)', more_info: '', status: 500 });
      const up = await forward(req, body);
      if (up.status >= 300) {
        res.writeHead(up.status, up.headers).end(up.body);
        return;
      }
      const form = new URLSearchParams(body.toString());
      const msg: RecordedMessage = {
        sid: `SM${randomBytes(16).toString('hex')}`, to: form.get('To') ?? '', from: form.get('From') ?? '', body: form.get('Body') ?? '', dateCreated: new Date(),
      };
      messages.push(msg);
      if (faults.delayReplyMs) await new Promise((r) => setTimeout(r, faults.delayReplyMs));
      if (faults.failAfterCreate) return json(res, 500, { code: 20500, message: 'Internal Server Error after create (recorder fault)', more_info: '', status: 500 });
      json(res, up.status, { ...JSON.parse(up.body.toString() || '{}'), ...resource(m[1]!, msg) });
      return;
    }
    const up = await forward(req, body);
    res.writeHead(up.status, up.headers).end(up.body);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      if (!res.headersSent) res.writeHead(502).end(err.message);
      else res.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    messages,
    requests: (pred) => seen.filter((s) => pred(s.method, s.path)).length,
    faults,
    close: () => new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

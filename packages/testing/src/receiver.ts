import http from 'node:http';

export interface ReceivedCall {
  seq: number;
  method: string;
  path: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown> | undefined;
  rawBody: string;
  receivedAt: number;
  status: number;
  /** Exchanges open at this receiver when this one arrived, itself included. */
  concurrent: number;
  /** When the answer was sent (undefined while it is held). */
  answeredAt?: number;
}

export interface ReceiverAnswer {
  status?: number;
  headers?: Record<string, string>;
  body?: unknown;
  delayMs?: number;
}

/** A real local HTTP server playing the Logic App: records every call, answers 202 by default. */
export interface Receiver {
  url: string;
  calls: ReceivedCall[];
  respondWith(fn: (call: ReceivedCall) => ReceiverAnswer | undefined): void;
  /** Exchanges open right now, and the most ever open at once. */
  openNow(): number;
  maxOpen(): number;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const calls: ReceivedCall[] = [];
  let responder: (call: ReceivedCall) => ReceiverAnswer | undefined = () => undefined;
  let seq = 0;
  let open = 0;
  let maxOpen = 0;
  const server = http.createServer((req, res) => {
    // An exchange is open from its first byte until its answer is sent (or the client gives up).
    open++;
    maxOpen = Math.max(maxOpen, open);
    const arrivedWith = open;
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      open--;
    };
    res.on('close', close);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      let body: Record<string, unknown> | undefined;
      try {
        body = rawBody ? (JSON.parse(rawBody) as Record<string, unknown>) : undefined;
      } catch {
        body = undefined;
      }
      const url = req.url ?? '/';
      const call: ReceivedCall = {
        seq: ++seq,
        method: req.method ?? '',
        path: new URL(url, 'http://x').pathname,
        url,
        headers: req.headers,
        body,
        rawBody,
        receivedAt: Date.now(),
        status: 202,
        concurrent: arrivedWith,
      };
      const answer = responder(call) ?? {};
      call.status = answer.status ?? 202;
      calls.push(call);
      const send = (): void => {
        if (res.destroyed) return;
        call.answeredAt = Date.now();
        res.writeHead(call.status, { 'content-type': 'application/json', ...(answer.headers ?? {}) });
        res.end(answer.body === undefined ? '' : JSON.stringify(answer.body), close);
      };
      if (answer.delayMs) setTimeout(send, answer.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    respondWith: (fn) => {
      responder = fn;
    },
    openNow: () => open,
    maxOpen: () => maxOpen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

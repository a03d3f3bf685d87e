import http from 'node:http';

/** One span as an OTLP/JSON export carried it (ids in hex, as OTLP/JSON encodes them). */
export interface ExportedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  /** OTLP's enum: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  service: string | undefined;
  attributes: Record<string, string | number | boolean | undefined>;
  status: number | undefined;
}

export const SPAN_KIND = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 } as const;

export interface OtlpExport {
  path: string;
  contentType: string;
  bytes: number;
}

/**
 * A real local OTLP/HTTP receiver playing the collector: records every export (any content type)
 * and decodes the spans of OTLP/JSON ones (`OTEL_EXPORTER_OTLP_PROTOCOL=http/json`).
 */
export interface OtlpReceiver {
  url: string;
  exports: OtlpExport[];
  spans: ExportedSpan[];
  close(): Promise<void>;
}

interface AnyValue {
  stringValue?: string;
  intValue?: number | string;
  doubleValue?: number;
  boolValue?: boolean;
}
interface KeyValue {
  key: string;
  value?: AnyValue;
}
interface OtlpJson {
  resourceSpans?: Array<{
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: Array<{
      spans?: Array<{
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind: number;
        attributes?: KeyValue[];
        status?: { code?: number };
      }>;
    }>;
  }>;
}

function attributes(list: KeyValue[] | undefined): ExportedSpan['attributes'] {
  const out: ExportedSpan['attributes'] = {};
  for (const { key, value } of list ?? []) {
    out[key] =
      value?.stringValue ??
      (value?.intValue === undefined ? undefined : Number(value.intValue)) ??
      value?.doubleValue ??
      value?.boolValue;
  }
  return out;
}

/** `host` null listens on every interface (IPv6 and IPv4), as a collector on its default port would. */
export async function startOtlpReceiver(options: { port?: number; host?: string | null } = {}): Promise<OtlpReceiver> {
  const exports: OtlpExport[] = [];
  const spans: ExportedSpan[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const contentType = String(req.headers['content-type'] ?? '');
      exports.push({ path: req.url ?? '/', contentType, bytes: body.length });
      if (contentType.startsWith('application/json')) {
        const doc = JSON.parse(body.toString('utf8')) as OtlpJson;
        for (const rs of doc.resourceSpans ?? []) {
          const service = attributes(rs.resource?.attributes)['service.name'];
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              spans.push({
                traceId: s.traceId,
                spanId: s.spanId,
                parentSpanId: s.parentSpanId || undefined,
                name: s.name,
                kind: s.kind,
                service: typeof service === 'string' ? service : undefined,
                attributes: attributes(s.attributes),
                status: s.status?.code,
              });
            }
          }
        }
      }
      res.writeHead(200, {
        'content-type': contentType.startsWith('application/json') ? 'application/json' : contentType,
      });
      res.end(contentType.startsWith('application/json') ? '{}' : '');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => resolve();
    if (options.host === null) server.listen(options.port ?? 0, done);
    else server.listen(options.port ?? 0, options.host ?? '127.0.0.1', done);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    exports,
    spans,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

import { answerFor } from './graph-exception.filter';

/** A database that cannot serve is a 503 to retry (SPEC-2 §13.2), not a 500; other errors stay 500. */
describe('answerFor: PostgreSQL unavailable', () => {
  const pgError = (code: string, message: string) => Object.assign(new Error(message), { code, severity: 'FATAL' });

  it.each([
    [
      'a refused connection',
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED', syscall: 'connect' }),
    ],
    ['the server shutting down', pgError('57P01', 'terminating connection due to administrator command')],
    ['the server starting up', pgError('57P03', 'the database system is starting up')],
    ['too many clients', pgError('53300', 'sorry, too many clients already')],
    ['a refused database', pgError('55000', 'database "x" is not currently accepting connections')],
    ['a lost connection', new Error('Connection terminated unexpectedly')],
    ['a pooled connection reset', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', syscall: 'read' })],
    [
      'a query error wrapping one',
      Object.assign(new Error('query failed'), { driverError: pgError('08006', 'connection failure') }),
    ],
  ])('%s: 503 ServiceUnavailable naming what PostgreSQL said', (_, err) => {
    const a = answerFor(err);
    expect([a.status, a.code]).toEqual([503, 'ServiceUnavailable']);
    expect(a.message).toContain(
      (err as Error & { driverError?: Error }).driverError?.message ?? (err as Error).message,
    );
  });

  it('other errors stay 500, including a 55000 that is not about connections', () => {
    expect(answerFor(new Error('boom')).status).toBe(500);
    expect(answerFor(pgError('55000', 'cannot lock rows in materialized view')).status).toBe(500);
    expect(answerFor(pgError('23505', 'duplicate key value violates unique constraint')).status).toBe(500);
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', syscall: 'read' });
    expect(answerFor(Object.assign(new TypeError('fetch failed'), { cause: reset })).status).toBe(500);
  });
});

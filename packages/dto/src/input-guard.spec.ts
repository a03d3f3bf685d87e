import { findInputProblem, MAX_INPUT_DEPTH } from './input-guard';

describe('findInputProblem', () => {
  it('passes clean values of every JSON type, including paired surrogates (emoji) and other control characters', () => {
    expect(
      findInputProblem({
        displayName: 'Sales 🚀 \u0001\t',
        n: 1,
        b: false,
        z: null,
        list: [{ id: 'x' }, 'y', 2],
      }),
    ).toBeUndefined();
    expect(findInputProblem('plain', '$filter')).toBeUndefined();
    expect(findInputProblem(undefined)).toBeUndefined();
  });

  it('names the path of a NUL at any depth, in values and in property names', () => {
    expect(findInputProblem({ displayName: 'a\u0000b' })).toEqual({
      path: 'displayName',
      problem: expect.stringContaining('U+0000') as string,
    });
    expect(findInputProblem({ data: { customExtensionStageInstanceDetail: '\u0000' } })?.path).toBe(
      'data.customExtensionStageInstanceDetail',
    );
    expect(findInputProblem({ stages: [{ primaryApprovers: [{ userId: 'ok' }, { userId: 'x\u0000' }] }] })?.path).toBe(
      'stages[0].primaryApprovers[1].userId',
    );
    const key = findInputProblem({ data: { 'a\u0000': 1 } });
    expect(key?.path).toBe('data');
    expect(key?.problem).toMatch(/property name .*U\+0000/);
    expect(findInputProblem('x\u0000', '$filter')?.path).toBe('$filter');
    expect(findInputProblem('\u0000')?.path).toBe('(body)');
  });

  it('refuses lone surrogates, high or low, anywhere in a string', () => {
    for (const s of ['\uD800', 'a\uD800b', '\uDC00', 'x\uDFFF', '\uD83D\uD83D\uDE80', '\uDE80\uD83D']) {
      const found = findInputProblem({ s });
      expect({ s: escape(s), path: found?.path }).toEqual({ s: escape(s), path: 's' });
      expect(found?.problem).toMatch(/unpaired UTF-16 surrogate \(U\+D[89A-F][0-9A-F]{2}\)/);
    }
  });

  it('quotes property names that are not plain identifiers', () => {
    expect(findInputProblem({ 'a b': { c: '\u0000' } })?.path).toBe('"a b".c');
  });

  it('refuses nesting beyond the limit without recursion, even 100,000 levels deep', () => {
    let ok: unknown = 'leaf';
    for (let i = 0; i < MAX_INPUT_DEPTH; i++) ok = [ok];
    expect(findInputProblem(ok)).toBeUndefined();
    expect(findInputProblem([ok])?.problem).toBe(`is nested deeper than ${MAX_INPUT_DEPTH} levels`);
    let deep: unknown = {};
    for (let i = 0; i < 100_000; i++) deep = { a: deep };
    expect(findInputProblem({ x: deep })?.path).toMatch(/^x(\.a)+$/);
  });
});

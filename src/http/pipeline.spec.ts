import type { IncomingMessage, ServerResponse } from 'node:http';
import { chain } from './pipeline';

const req = {} as IncomingMessage;
const response = (): ServerResponse => ({ writableEnded: false }) as ServerResponse;

describe('chain', () => {
  it('runs the middleware in order, skipping absent ones, then hands on', () => {
    const seen: string[] = [];
    const next = jest.fn();
    chain(
      (_q, _s, n) => (seen.push('a'), n()),
      undefined,
      (_q, _s, n) => (seen.push('b'), n()),
    )(req, response(), next);
    expect(seen).toEqual(['a', 'b']);
    expect(next).toHaveBeenCalledWith(undefined);
  });

  it('stops at an error and hands it on', () => {
    const error = new Error('refused');
    const later = jest.fn();
    const next = jest.fn();
    chain((_q, _s, n) => n(error), later)(req, response(), next);
    expect(later).not.toHaveBeenCalled();
    expect(next).toHaveBeenCalledWith(error);
  });

  it('stops once an answer has been sent, handing nothing on', () => {
    const res = response();
    const later = jest.fn();
    const next = jest.fn();
    chain((_q, s, n) => (((s as { writableEnded: boolean }).writableEnded = true), n()), later)(req, res, next);
    expect(later).not.toHaveBeenCalled();
    expect(next).not.toHaveBeenCalled();
  });
});

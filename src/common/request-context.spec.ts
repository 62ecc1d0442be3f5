import { EventEmitter } from 'node:events';
import { EventCancellation, OpenedContext } from './request-context';

describe('OpenedContext', () => {
  it('makes its signal on first use only, and the same one after', () => {
    let made = 0;
    const context = new OpenedContext('req-1', 1000, 'key', undefined, () => {
      made++;
      return new EventCancellation(new EventEmitter(), 'close', () => false);
    });
    expect(made).toBe(0);
    const signal = context.signal;
    expect(context.signal).toBe(signal);
    expect(made).toBe(1);
    expect([context.requestId, context.deadline, context.routingKey]).toEqual(['req-1', 1000, 'key']);
  });
});

describe('EventCancellation', () => {
  it('aborts its listeners when the source fires while the client has gone', () => {
    const source = new EventEmitter();
    let gone = false;
    const signal = new EventCancellation(source, 'close', () => gone);
    const aborted = jest.fn();
    signal.addEventListener('abort', aborted);
    expect(signal.aborted).toBe(false);
    gone = true;
    source.emit('close');
    expect(aborted).toHaveBeenCalledTimes(1);
    expect(signal.aborted).toBe(true);
  });

  it('does not abort when the source fires for an answer sent', () => {
    const source = new EventEmitter();
    const signal = new EventCancellation(source, 'close', () => false);
    const aborted = jest.fn();
    signal.addEventListener('abort', aborted);
    source.emit('close');
    expect(aborted).not.toHaveBeenCalled();
    expect(signal.aborted).toBe(false);
  });

  it('is aborted from the start when the client has already gone, and listens for nothing', () => {
    const source = new EventEmitter();
    const signal = new EventCancellation(source, 'close', () => true);
    expect(signal.aborted).toBe(true);
    expect(source.listenerCount('close')).toBe(0);
  });

  it('calls no listener that was removed', () => {
    const source = new EventEmitter();
    let gone = false;
    const live = new EventCancellation(source, 'close', () => gone);
    const removed = jest.fn();
    const stays = jest.fn();
    live.addEventListener('abort', removed);
    live.addEventListener('abort', stays);
    live.removeEventListener('abort', removed);
    gone = true;
    source.emit('close');
    expect(removed).not.toHaveBeenCalled();
    expect(stays).toHaveBeenCalledTimes(1);
  });
});

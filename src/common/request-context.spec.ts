import { EventEmitter } from 'node:events';
import { EventCancellation, OpenedContext } from './request-context';

describe('OpenedContext', () => {
  const open = (source: EventEmitter, gone: () => boolean) => {
    let made = 0;
    const context = new OpenedContext('req-1', 1000, 'key', undefined, () => {
      made++;
      return new EventCancellation(source, 'close', gone);
    });
    return { context, made: () => made };
  };

  it('makes its signal on first use only, and the same one after', () => {
    const { context, made } = open(new EventEmitter(), () => false);
    expect(made()).toBe(0);
    const signal = context.signal;
    expect(context.signal).toBe(signal);
    expect(made()).toBe(1);
    expect([context.requestId, context.deadline, context.routingKey]).toEqual(['req-1', 1000, 'key']);
  });

  it('aborts its listeners when the source says the client has gone', () => {
    const source = new EventEmitter();
    const { context } = open(source, () => true);
    const aborted = jest.fn();
    context.signal.addEventListener('abort', aborted);
    source.emit('close');
    expect(aborted).toHaveBeenCalledTimes(1);
    expect(context.signal.aborted).toBe(true);
  });

  it('stops listening once detached, and detaching without a signal makes none', () => {
    const source = new EventEmitter();
    const quiet = open(source, () => true);
    quiet.context.detach();
    expect(quiet.made()).toBe(0);

    const { context } = open(source, () => true);
    const aborted = jest.fn();
    context.signal.addEventListener('abort', aborted);
    expect(source.listenerCount('close')).toBe(1);
    context.detach();
    expect(source.listenerCount('close')).toBe(0);
    source.emit('close');
    expect(aborted).not.toHaveBeenCalled();
  });
});

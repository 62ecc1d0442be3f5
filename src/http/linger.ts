import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { objectSlot } from '../common/object-slot';

/** How long a connection closed under an unread body waits for its client to read the answer and hang up. */
export const LINGER_MS = 1000;
/**
 * How many such connections may wait at once. Each holds what its client sent meanwhile in the kernel's
 * buffers (up to a megabyte or more), so past this many, as under a flood of refused bodies, the rest
 * are closed at once as Node would.
 */
export const MAX_LINGERING = 32;

let lingering = 0;

const ARRIVED = objectSlot<true>('bodyArrived');

/**
 * Marks a request refused once every byte its Content-Length declares has arrived: its parser ends it
 * without reading anything more, so its connection can carry the next request.
 */
export const markBodyArrived = (req: IncomingMessage): void => ARRIVED.set(req, true);

/**
 * Whether some of the request's body has not been read yet. Not `complete` alone: a request without a
 * body is handled before its parser marks it complete, and one refused on its last chunk before the
 * parser has seen the end of it (markBodyArrived).
 */
export const bodyUnread = (req: IncomingMessage): boolean =>
  !req.complete &&
  ARRIVED.get(req) !== true &&
  (Number(req.headers['content-length']) > 0 || req.headers['transfer-encoding'] !== undefined);

/**
 * Closes the connection of a request answered before its body was read whole (refused by its headers,
 * or as soon as a chunk showed the body too costly), without reading the rest, and where it can without
 * a reset.
 *
 * Node closes such a connection as soon as the answer is written; with the client's bytes still unread,
 * that close is a reset, and a client still writing its body gets the reset as a write error, often
 * before it reads the answer that is waiting for it (it then sees "connection reset" instead of why it
 * was refused). Here the answer and a FIN go out and nothing more is read: the rest of the body stops at
 * the kernel's buffers (TCP holds the client there at no cost to the event loop) until the client, having
 * read the answer, closes; the socket is let go after LINGER_MS whatever the client does.
 */
export function closeWhenAnswered(req: IncomingMessage): void {
  const socket = req.socket as Socket & { destroySoon?: () => void };
  if (typeof socket.destroySoon !== 'function' || lingering >= MAX_LINGERING) return;
  socket.destroySoon = () => {
    if (socket.writable) socket.end();
    lingering++;
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('close', () => {
      lingering--;
      clearTimeout(timer);
    });
  };
}

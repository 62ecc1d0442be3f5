import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * What a server has open while it shuts down: its connections, when each last had a request or an
 * answer, and the requests still unanswered. Shutdown waits on it rather than on server.close()
 * alone, since closing with a connection open resets whatever its client is sending at that moment.
 */
export class DrainTracker {
  private readonly lastActive = new Map<Socket, number>();
  private unanswered = 0;

  constructor(server: Server) {
    server.on('connection', (socket: Socket) => {
      this.lastActive.set(socket, Date.now());
      socket.once('close', () => this.lastActive.delete(socket));
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.unanswered++;
      this.lastActive.set(req.socket, Date.now());
      res.once('close', () => {
        this.unanswered--;
        if (this.lastActive.has(req.socket)) this.lastActive.set(req.socket, Date.now());
      });
    });
  }

  /** Requests accepted and not yet answered (nor abandoned by their client). */
  get inFlight(): number {
    return this.unanswered;
  }

  get connections(): number {
    return this.lastActive.size;
  }

  /** Whether nothing is being answered and no connection has seen a request or an answer for quietMs. */
  quiet(quietMs: number): boolean {
    if (this.unanswered > 0) return false;
    const since = Date.now() - quietMs;
    for (const at of this.lastActive.values()) if (at > since) return false;
    return true;
  }
}

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * What a server has open while it shuts down: its connections, when any connection last arrived, had
 * a request or an answer, or closed, and the requests still unanswered. Shutdown waits on it rather
 * than on server.close() alone, since closing with a connection open resets whatever its client is
 * sending at that moment.
 */
export class DrainTracker {
  private readonly open = new Set<Socket>();
  /**
   * One time for the whole server, not one per open connection: a client answered with
   * `Connection: close` has no connection left while it reconnects, and forgetting its answer with
   * its socket let the server close just as that client came back, resetting it in the accept queue.
   */
  private lastActive = Date.now();
  private unanswered = 0;

  constructor(server: Server) {
    server.on('connection', (socket: Socket) => {
      this.open.add(socket);
      this.touch();
      socket.once('close', () => {
        this.open.delete(socket);
        this.touch();
      });
    });
    server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
      this.unanswered++;
      this.touch();
      res.once('close', () => {
        this.unanswered--;
        this.touch();
      });
    });
  }

  private touch(): void {
    this.lastActive = Date.now();
  }

  /** Requests accepted and not yet answered (nor abandoned by their client). */
  get inFlight(): number {
    return this.unanswered;
  }

  get connections(): number {
    return this.open.size;
  }

  /** Whether nothing is being answered and no connection arrived, had a request or answer, or closed for quietMs. */
  quiet(quietMs: number): boolean {
    return this.unanswered === 0 && Date.now() - this.lastActive >= quietMs;
  }
}

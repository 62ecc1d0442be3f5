/**
 * Child processes of the bench (the service, the baseline, the lesson's FastAPI app): start, wait for
 * readiness, stop, and make sure none outlives the bench, whatever way the bench ends.
 *
 * Each child is spawned `detached`, i.e. as the leader of its own process group, so that stopping it
 * signals the whole group (the lesson's run.sh could leave a python behind otherwise) and so that a
 * Ctrl-C in the terminal reaches only the bench, which then stops its children in order instead of
 * them dying mid-request under a load generator that is still running.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';

/** How long a child gets between SIGTERM and SIGKILL. */
const STOP_GRACE_MS = 5000;
/** Lines of a child's output kept to explain a failure to start. */
const TAIL_LINES = 40;

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly proc: ChildProcess;
  /** Resolves when the process has exited, with its exit code or the signal that ended it. */
  readonly exited: Promise<string>;
  hasExited(): boolean;
  /** The last lines the child wrote to stdout/stderr. */
  tail(): string;
}

const running = new Set<Child>();

export function startChild(
  name: string,
  command: string,
  args: string[],
  opts: { cwd: string; env: NodeJS.ProcessEnv },
): Child {
  const proc = spawn(command, args, {
    cwd: opts.cwd,
    env: opts.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (proc.pid === undefined) {
    // Not started (command not found, say): the reason arrives as an 'error' event, which must be
    // listened to or it would crash the bench.
    proc.on('error', () => undefined);
    throw new Error(`${name}: could not start ${command}`);
  }
  const lines: string[] = [];
  // Always drain the pipes: a child that fills its pipe buffer blocks on its next log line.
  const keep = (chunk: Buffer): void => {
    lines.push(
      ...chunk
        .toString('utf8')
        .split('\n')
        .filter((l) => l.trim() !== ''),
    );
    if (lines.length > TAIL_LINES) lines.splice(0, lines.length - TAIL_LINES);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  let done = false;
  const exited = new Promise<string>((resolve) => {
    proc.on('exit', (code, signal) => {
      done = true;
      resolve(signal ? `signal ${signal}` : `exit code ${code}`);
    });
    proc.on('error', (err) => {
      done = true;
      lines.push(String(err));
      resolve(`spawn error: ${err.message}`);
    });
  });
  const child: Child = { name, pid: proc.pid, proc, exited, hasExited: () => done, tail: () => lines.join('\n') };
  running.add(child);
  void exited.then(() => running.delete(child));
  return child;
}

function signalGroup(child: Child, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is already gone.
  }
}

/** SIGTERM, then SIGKILL after a grace period; resolves once the process has exited. */
export async function stopChild(child: Child): Promise<void> {
  if (child.hasExited()) return;
  signalGroup(child, 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      signalGroup(child, 'SIGKILL');
      resolve();
    }, STOP_GRACE_MS);
  });
  await Promise.race([child.exited, killed]);
  clearTimeout(timer);
  await child.exited;
  // The leader may exit before the rest of its group (run.sh's python, say): make sure they go too.
  signalGroup(child, 'SIGKILL');
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map(stopChild));
}

/** Last resort, for process.on('exit') where nothing asynchronous can run any more. */
export function killAllNow(): void {
  for (const child of running) signalGroup(child, 'SIGKILL');
}

/** A port that was free a moment ago on 127.0.0.1 (the OS picks it, so concurrent benches don't collide). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/**
 * Polls `probe` until it returns true. Fails at once if the child exits, and after `timeoutMs`
 * otherwise, with the child's last output in the message.
 */
export async function waitUntil(
  child: Child,
  what: string,
  timeoutMs: number,
  probe: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    if (child.hasExited()) {
      throw new Error(`${child.name} exited (${await child.exited}) before ${what}:\n${child.tail()}`);
    }
    try {
      if (await probe()) return;
    } catch (err) {
      // Connection refused while it is still starting: keep polling, remember why for the timeout message.
      lastError = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(
    `${child.name}: not ${what} after ${timeoutMs / 1000} s${lastError ? ` (${lastError})` : ''}:\n${child.tail()}`,
  );
}

/** Resident set size of a process in kB (Linux: VmRSS in /proc/<pid>/status), or null elsewhere. */
export function rssKb(pid: number): number | null {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/** How often RSS is read while a memory phase runs. */
export const RSS_SAMPLE_MS = 100;

/**
 * What `work` returns, with the process's RSS when it ends and the lowest RSS read over its second half. The
 * JS heap of a busy service swings by tens of megabytes between collections, so a single reading lands
 * anywhere in that swing; the lowest over several collections is what the process keeps, which a leak
 * raises.
 */
export async function rssOver<T>(
  pid: number,
  work: () => Promise<T>,
): Promise<{ result: T; endKb: number; lowKb: number }> {
  const samples: { at: number; kb: number }[] = [];
  const read = () => {
    const kb = rssKb(pid);
    if (kb !== null) samples.push({ at: Date.now(), kb });
  };
  const start = Date.now();
  const timer = setInterval(read, RSS_SAMPLE_MS);
  try {
    const result = await work();
    read();
    const half = start + (Date.now() - start) / 2;
    const late = samples.filter((s) => s.at >= half).map((s) => s.kb);
    return { result, endKb: samples[samples.length - 1]?.kb ?? NaN, lowKb: Math.min(...late) };
  } finally {
    clearInterval(timer);
  }
}

/** Linux's USER_HZ, the unit of /proc/<pid>/stat's CPU times (fixed at 100 for user space). */
const TICKS_PER_S = 100;

/**
 * User + system CPU seconds a process has used so far, all its threads included (the service's
 * inference workers are threads), from /proc/<pid>/stat; null where there is no /proc.
 */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count fields after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
  } catch {
    return null;
  }
}

/**
 * cpuSeconds of a process and of every process below it: a target started through a script (the
 * lesson's run.sh starts uvicorn) does its work in a child. Null where there is no /proc.
 */
export function treeCpuSeconds(pid: number): number | null {
  const own = cpuSeconds(pid);
  if (own === null) return null;
  const parents = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return own;
  }
  for (const entry of entries) {
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const siblings = parents.get(ppid) ?? [];
      siblings.push(Number(entry));
      parents.set(ppid, siblings);
    } catch {
      // the process ended while the list was read
    }
  }
  let total = own;
  const pending = [...(parents.get(pid) ?? [])];
  while (pending.length) {
    const child = pending.pop() as number;
    total += cpuSeconds(child) ?? 0;
    pending.push(...(parents.get(child) ?? []));
  }
  return total;
}

/**
 * Resolves once a process (with its children) has stopped using CPU (at most one tick over `quietMs`), or after
 * `timeoutMs` whatever it does: a load that has just stopped leaves the target answering the
 * requests that were in flight, and that work belongs to no measurement.
 */
export async function waitIdle(pid: number, quietMs = 100, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = treeCpuSeconds(pid);
  while (last !== null && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, quietMs));
    const now = treeCpuSeconds(pid);
    if (now === null || now - last <= 1 / TICKS_PER_S) return;
    last = now;
  }
}

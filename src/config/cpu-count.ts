import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/**
 * CPUs granted by a cgroup v2 quota (`cpu.max`: "<quota> <period>", or "max <period>" for none),
 * rounded up; undefined when there is no quota or the text is not in that form.
 */
export function cpusFromCpuMax(text: string): number | undefined {
  const match = /^(\d+|max)\s+(\d+)\s*$/.exec(text);
  if (!match || match[1] === 'max' || Number(match[2]) === 0) return undefined;
  return Math.max(1, Math.ceil(Number(match[1]) / Number(match[2])));
}

/**
 * The CPUs this process may really use: the machine's, capped by a container's CPU limit.
 * Node's availableParallelism() sees the host's cores, so in a pod limited to 2 CPUs on a 64-core
 * node it would size the inference pool for 64.
 */
export function usableCpus(cpuMaxFile = '/sys/fs/cgroup/cpu.max'): number {
  let quota: number | undefined;
  try {
    quota = cpusFromCpuMax(readFileSync(cpuMaxFile, 'utf8'));
  } catch {
    quota = undefined; // not on cgroup v2, or no access: the machine's count stands
  }
  return Math.min(availableParallelism(), quota ?? Infinity);
}

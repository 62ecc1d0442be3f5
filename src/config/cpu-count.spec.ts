import { promises as fs } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import * as path from 'node:path';
import { cpusFromCpuMax, usableCpus } from './cpu-count';

describe('usable CPUs', () => {
  it.each([
    ['200000 100000\n', 2],
    ['150000 100000', 2],
    ['50000 100000', 1],
    ['max 100000\n', undefined],
    ['garbage', undefined],
    ['100000 0', undefined],
  ])('reads cpu.max %j as %p CPUs', (text, cpus) => {
    expect(cpusFromCpuMax(text)).toBe(cpus);
  });

  it('caps the machine count by a cgroup quota, and ignores a missing file', async () => {
    const file = path.join(await fs.mkdtemp(path.join(tmpdir(), 'cpu-')), 'cpu.max');
    await fs.writeFile(file, '100000 100000\n');
    expect(usableCpus(file)).toBe(1);
    expect(usableCpus(path.join(path.dirname(file), 'missing'))).toBe(availableParallelism());
  });
});

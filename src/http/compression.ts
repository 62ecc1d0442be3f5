import { promisify } from 'node:util';
import { deflate, gzip } from 'node:zlib';

/** The answer encodings the service writes, as Triton does: gzip and deflate (zlib-wrapped, as HTTP means it). */
export type AnswerEncoding = 'gzip' | 'deflate';

const encoders: Record<AnswerEncoding, (body: Buffer) => Promise<Buffer>> = {
  gzip: promisify(gzip),
  deflate: promisify(deflate),
};

/**
 * The encoding an Accept-Encoding asks for, by its q-values (gzip first on a tie); undefined when it
 * asks for neither, or for identity alone. `*` counts as gzip.
 */
export function answerEncoding(accept: string | undefined): AnswerEncoding | undefined {
  if (!accept) return undefined;
  let best: AnswerEncoding | undefined;
  let bestQ = 0;
  for (const part of accept.split(',')) {
    const [token, ...params] = part.trim().toLowerCase().split(';');
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const q = qParam === undefined ? 1 : Number(qParam.slice(2));
    const name = token === '*' || token === 'x-gzip' ? 'gzip' : token;
    if ((name !== 'gzip' && name !== 'deflate') || !(q > 0)) continue;
    if (q > bestQ || (q === bestQ && name === 'gzip')) {
      best = name;
      bestQ = q;
    }
  }
  return best;
}

export const encodeAnswer = (body: Buffer, encoding: AnswerEncoding): Promise<Buffer> => encoders[encoding](body);

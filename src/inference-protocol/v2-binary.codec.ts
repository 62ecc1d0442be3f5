import { InvalidInputError } from '../common/domain.errors';
import { ElementType, TensorValues } from '../models/element-types';
import { fromRaw, RawTensorError, toRaw } from '../models/raw-tensor';
import { shapeText } from '../models/tensor.codec';
import { product } from '../models/tensor-rows';

/**
 * The binary tensor data extension's framing: the raw tensors after a request's JSON header, cut
 * in input order by each input's `parameters.binary_data_size`, and an answer's binary outputs
 * appended after its JSON in output order. Sizes are exact: a tensor's bytes must be its shape's
 * worth, and nothing may be left over, so a misframed request is refused, never misread.
 */

/** Reads `binary_data_size` bytes at a time from the bytes after the JSON header, in input order. */
export class BinaryInputs {
  private at = 0;

  constructor(private readonly tail: Buffer) {}

  /** The next input's values: `size` bytes, which must make exactly `shape` of `type`. */
  take(name: string, path: string, type: ElementType, datatype: string, shape: readonly number[], size: unknown) {
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw new InvalidInputError(`Input '${name}': binary_data_size must be a byte count`, [
        { path: `${path}.parameters.binary_data_size`, message: `got ${JSON.stringify(size)}` },
      ]);
    }
    const left = this.tail.length - this.at;
    if (size > left) {
      throw new InvalidInputError(
        `Input '${name}' has binary_data_size ${size}, but only ${left} bytes of binary data follow the JSON header` +
          (this.at > 0 ? ` after the inputs before it` : ''),
        [{ path: `${path}.parameters.binary_data_size`, message: `${size} bytes past the end of the body` }],
      );
    }
    const bytes = this.tail.subarray(this.at, this.at + size);
    this.at += size;
    let values: TensorValues;
    try {
      values = fromRaw(type, bytes, product(shape));
    } catch (err) {
      if (!(err instanceof RawTensorError)) throw err;
      throw new InvalidInputError(
        `Input '${name}': binary_data_size ${size} does not fit shape ${shapeText(shape)} of ${datatype}`,
        [{ path: `${path}.parameters.binary_data_size`, message: err.message }],
      );
    }
    return values;
  }

  /** Refuses bytes that no input claimed: the header or some binary_data_size must be wrong. */
  finish(): void {
    const left = this.tail.length - this.at;
    if (left > 0) {
      throw new InvalidInputError(
        `${left} bytes are left over after the JSON header and every input's binary data; ` +
          'check Inference-Header-Content-Length and each binary_data_size',
        [{ path: 'body', message: `${left} bytes no input claims` }],
      );
    }
  }
}

/** One output in binary: its raw bytes, whose length the JSON header gives as binary_data_size. */
export const binaryOutput = (type: ElementType, values: TensorValues): Buffer => toRaw(type, values);

/** An answer with binary outputs: its JSON header, then their bytes, and the header's length. */
export function frameAnswer(json: string, blobs: readonly Buffer[]): { body: Buffer; headerLength: number } {
  const header = Buffer.from(json, 'utf8');
  return { body: Buffer.concat([header, ...blobs]), headerLength: header.length };
}

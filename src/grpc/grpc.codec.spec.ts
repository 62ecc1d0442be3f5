import { InvalidInputError } from '../common/domain.errors';
import { loadRequestOf } from './grpc.codec';

const LIMITS = { maxArrayLength: 16, maxStringLength: 64 };

describe('loadRequestOf: RepositoryModelLoad parameters as tritonclient.grpc sends them', () => {
  it('takes config as string_param and files as bytes_param, and ignores the rest', () => {
    const bytes = Buffer.from([8, 7, 0, 255]);
    const request = loadRequestOf(
      {
        config: { parameter_choice: 'string_param', string_param: '{"labels": ["a"]}' },
        'file:3/model.onnx': { parameter_choice: 'bytes_param', bytes_param: bytes },
        unload_dependents: { parameter_choice: 'bool_param', bool_param: true },
      },
      LIMITS,
    );
    expect(request.config).toBe('{"labels": ["a"]}');
    expect([...request.files!]).toEqual([['3/model.onnx', bytes]]);
  });

  it('leaves the file names to the service: any file: key is passed on as it came', () => {
    const request = loadRequestOf(
      { 'file:../x': { parameter_choice: 'bytes_param', bytes_param: Buffer.alloc(1) } },
      LIMITS,
    );
    expect([...request.files!.keys()]).toEqual(['../x']);
    expect(request.config).toBeUndefined();
  });

  it.each([
    [
      'config as bytes',
      { config: { parameter_choice: 'bytes_param', bytes_param: Buffer.from('{}') } },
      /string_param/,
    ],
    ['config unset', { config: {} }, /string_param/],
    [
      'a file as text',
      { 'file:1/model.onnx': { parameter_choice: 'string_param', string_param: 'AAAA' } },
      /bytes_param/,
    ],
  ] as const)('refuses %s', (_, parameters, message) => {
    expect(() => loadRequestOf(parameters, LIMITS)).toThrow(InvalidInputError);
    expect(() => loadRequestOf(parameters, LIMITS)).toThrow(message);
  });

  it('holds the configuration text to MAX_STRING_LENGTH, as REST bodies are', () => {
    const long = { config: { parameter_choice: 'string_param' as const, string_param: `{"d": "${'x'.repeat(64)}"}` } };
    let error: InvalidInputError | undefined;
    try {
      loadRequestOf(long, LIMITS);
    } catch (err) {
      error = err as InvalidInputError;
    }
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error!.details).toEqual([
      { path: 'parameters.config', message: expect.stringMatching(/MAX_STRING_LENGTH/) },
    ]);
  });
});

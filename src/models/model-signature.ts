import { ModelConfig } from './model-config';
import { elementType } from './element-types';
import { instanceShape, ModelSignature, TensorSpec, ValueInfo } from './model.types';
import { product } from './tensor-rows';

function tensors(values: readonly ValueInfo[], kind: 'input' | 'output'): TensorSpec[] {
  return values.map((v) => {
    if (!v.isTensor) {
      throw new Error(
        `${kind} '${v.name}' is not a tensor (a sequence or map, such as the ZipMap that skl2onnx adds to ` +
          'classifiers by default); this service serves tensor outputs only. Re-export the model without it, ' +
          "e.g. skl2onnx's to_onnx(model, X, options={'zipmap': False})",
      );
    }
    return { name: v.name, type: v.type, shape: v.shape };
  });
}

const hasBatchDim = (t: TensorSpec) => t.shape.length > 0 && t.shape[0] === -1;

function pickOutput(
  outputs: readonly TensorSpec[],
  configured: string | undefined,
  field: string,
  convention: (t: TensorSpec) => boolean,
): string | undefined {
  if (configured === undefined) return outputs.find(convention)?.name;
  const output = outputs.find((o) => o.name === configured);
  if (!output) {
    throw new Error(
      `config.json ${field} names '${configured}', but the model's outputs are ${outputs.map((o) => o.name).join(', ')}`,
    );
  }
  return output.name;
}

/**
 * Combines the graph's own metadata with config.json into the signature the service validates
 * requests against. Throws with a reason a model owner can act on when the two disagree.
 */
export function buildSignature(
  inputInfo: readonly ValueInfo[],
  outputInfo: readonly ValueInfo[],
  config: ModelConfig,
): ModelSignature {
  const inputs = tensors(inputInfo, 'input');
  const outputs = tensors(outputInfo, 'output');
  const batchable = inputs.every(hasBatchDim) && outputs.every(hasBatchDim);

  if (config.features) {
    if (inputs.length !== 1) {
      throw new Error(`config.json features needs a model with one input; this one has ${inputs.length}`);
    }
    const perInstance = instanceShape(inputs[0], { batchable });
    const count = product(perInstance);
    if (!perInstance.includes(-1) && count !== config.features.length) {
      throw new Error(
        `config.json features lists ${config.features.length} names, but input '${inputs[0].name}' takes ${count} values per instance`,
      );
    }
  }

  const labelOutput = pickOutput(
    outputs,
    config.label_output,
    'label_output',
    (t) => elementType(t.type).kind === 'integer' && t.shape.length === 1 && t.name.toLowerCase().includes('label'),
  );
  const probabilityOutput = pickOutput(
    outputs,
    config.probability_output,
    'probability_output',
    (t) => elementType(t.type).kind === 'float' && t.shape.length === 2 && t.name.toLowerCase().includes('prob'),
  );

  if (probabilityOutput && config.labels) {
    const classes = outputs.find((o) => o.name === probabilityOutput)!.shape.at(-1);
    if (classes !== undefined && classes !== -1 && classes !== config.labels.length) {
      throw new Error(
        `config.json labels has ${config.labels.length} names, but output '${probabilityOutput}' has ${classes} classes`,
      );
    }
  }

  return {
    inputs,
    outputs,
    batchable,
    features: config.features,
    labels: config.labels,
    labelOutput,
    probabilityOutput,
  };
}

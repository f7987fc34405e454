import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { TricksError } from '../hooks/errors.js';
import { writeFileAtomic } from './atomic.js';
import type { NamedTensor } from '../optim/optimizer.js';

/**
 * A tfjs IOHandler for a directory: model.json + weights.bin, the standard LayersModel format that
 * plain `tf.loadLayersModel` reads (over http, or with tfjs-node's file://).
 */
export function fileHandler(dir: string, weightsFile = 'weights.bin'): tf.io.IOHandler {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      const weightData = artifacts.weightData ? tf.io.CompositeArrayBuffer.join(artifacts.weightData) : new ArrayBuffer(0);
      const modelJson: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology!,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tfl.version_layers}`,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: [`./${weightsFile}`], weights: artifacts.weightSpecs ?? [] }],
      };
      if (artifacts.userDefinedMetadata) modelJson.userDefinedMetadata = artifacts.userDefinedMetadata;
      if (artifacts.trainingConfig) modelJson.trainingConfig = artifacts.trainingConfig;
      await writeFileAtomic(join(dir, weightsFile), new Uint8Array(weightData));
      await writeFileAtomic(join(dir, 'model.json'), JSON.stringify(modelJson));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
    async load(): Promise<tf.io.ModelArtifacts> {
      const jsonPath = join(dir, 'model.json');
      let json: tf.io.ModelJSON;
      try {
        json = JSON.parse(await readFile(jsonPath, 'utf8'));
      } catch (e) {
        throw new TricksError(
          `${jsonPath}: cannot read a tfjs model (${(e as Error).message})`,
          'give the directory that holds model.json and its weights',
        );
      }
      const specs: tf.io.WeightsManifestEntry[] = [];
      const buffers: Uint8Array[] = [];
      for (const group of json.weightsManifest ?? []) {
        for (const p of group.paths) {
          const file = join(dir, p);
          try {
            buffers.push(new Uint8Array(await readFile(file)));
          } catch (e) {
            const { code, message } = e as Error & { code?: string };
            throw new TricksError(`${file}: cannot read model weights (${code === 'ENOENT' ? 'the file is missing' : message})`);
          }
        }
        specs.push(...group.weights);
      }
      const all = new Uint8Array(Buffer.concat(buffers)); // a copy: its .buffer holds exactly the weights
      checkSize(all.byteLength, specs, join(dir, json.weightsManifest?.[0]?.paths[0] ?? weightsFile), 'model.json lists');
      const { weightsManifest: _w, ...rest } = json;
      return { ...rest, weightSpecs: specs, weightData: all.buffer };
    },
  };
}

export async function saveModel(model: tfl.LayersModel, dir: string, metadata?: Record<string, unknown>): Promise<void> {
  if (metadata) model.setUserDefinedMetadata(metadata as object);
  await model.save(fileHandler(dir));
}

export async function loadModel(dir: string): Promise<tfl.LayersModel> {
  return tfl.loadLayersModel(fileHandler(dir));
}

/** Named tensors to a weights.bin + JSON manifest (optimizer slots, plugin tensors). */
export async function encodeTensors(tensors: NamedTensor[]): Promise<{ specs: tf.io.WeightsManifestEntry[]; data: Uint8Array }> {
  const { data, specs } = await tf.io.encodeWeights(tensors);
  return { specs, data: new Uint8Array(tf.io.CompositeArrayBuffer.join(data)) };
}

const BYTES: Record<string, number> = { uint8: 1, bool: 1, uint16: 2, float16: 2, complex64: 8 };

/** A weights file must hold exactly the bytes its manifest lists: a truncated or padded one is a TricksError naming it. */
function checkSize(bytes: number, specs: tf.io.WeightsManifestEntry[], file: string, manifest: string): void {
  if (specs.some((s) => s.dtype === 'string')) return;
  const want = specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1) * (BYTES[s.quantization?.dtype ?? s.dtype] ?? 4), 0);
  if (bytes !== want) throw new TricksError(`${file}: has ${bytes} bytes, but ${manifest} ${want} (cut short or damaged)`);
}

/** Named tensors from a weights file and its manifest; `file` names both in the error when the sizes disagree. */
export function decodeTensors(
  data: Uint8Array,
  specs: tf.io.WeightsManifestEntry[],
  file = 'the data',
  manifest = 'its specs list',
): tf.NamedTensorMap {
  checkSize(data.byteLength, specs, file, manifest);
  const buf = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
  return tf.io.decodeWeights(buf, specs);
}

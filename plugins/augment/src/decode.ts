import { randomResizedCropBox } from '@tricks/helper-augment';
import type { DecodeCrop, DecodeInfo, DecodePlan, Rng } from '@tricks/core';
import type { Pipeline } from './pipeline.js';

/**
 * The augment plugin's DecodePlan: what of its pipeline moves out of the float tensors of the training thread.
 *
 * - RandomResizedCrop + flip at decode time: when the dataset can crop while decoding (the folder loader, with
 *   sharp on the thread pool), each item's box is drawn here on the item's source size, by the same procedure as
 *   the batched path (helper-augment's randomResizedCropBox: torchvision's get_params, scale and ratio, 10
 *   attempts, then the centre-crop fallback), then its flip; the generator is the item's own (core's itemRng of
 *   the run's seed, the epoch and the item's place in the epoch), so draws are seeded and the same on resume.
 * - Normalize folded into the uint8 -> float conversion: x = u8 * 1/(255 std) - mean/std in the one pass toBatch
 *   makes anyway, instead of / 255, - mean, / std on the backend. Only when nothing between the conversion and
 *   Normalize needs pixels in [0, 1]: no colour jitter, rotation or affine of ours, and no other plugin's batch tap
 *   before our Normalize (AutoAugment's is). A pad-crop fills with zeros, so there only the scale is folded and the
 *   mean is subtracted after the crop (one pass instead of three).
 */
export type Fold = 'normalized' | 'scaled' | null;

export interface DecodeDecision {
  plan: DecodePlan;
  /** True when the plan crops at decode time (our geometry tap then skips RandomResizedCrop and flip). */
  crop: boolean;
  fold: Fold;
}

/** The draw of one item: torchvision's RandomResizedCrop box on the source size, then the flip. */
export function decodeCropDraw(p: Pipeline): (srcHeight: number, srcWidth: number, rng: Rng) => DecodeCrop {
  if (p.crop?.kind !== 'rrc') throw new Error('decodeCropDraw: the pipeline has no RandomResizedCrop');
  const { scale, ratio } = p.crop;
  return (h, w, rng) => {
    const box = randomResizedCropBox(rng, h, w, scale, ratio);
    return { ...box, flip: p.flip > 0 && rng.next() < p.flip };
  };
}

/** What to ask of the loader for one epoch (see above), given the plan the earlier decode taps left. */
export function decideDecode(
  p: Pipeline,
  info: Pick<DecodeInfo, 'dataset' | 'batchTaps'>,
  plan: DecodePlan,
  owner: string,
  opts: { decodeCrop: boolean; fold: boolean; tapName: string; normalizeStage: number },
): DecodeDecision {
  const out: DecodePlan = { ...plan };
  const crop = opts.decodeCrop && p.crop?.kind === 'rrc' && !p.exact && !plan.crop && info.dataset.decodeCrop === true;
  if (crop) out.crop = { owner, draw: decodeCropDraw(p) };
  let fold: Fold = null;
  // before our Normalize there must be our geometry tap alone (a second augment instance's taps share our name)
  const before = info.batchTaps.filter((t) => t.stage < opts.normalizeStage);
  const others = before.length > 1 || before.some((t) => t.name !== opts.tapName);
  const cj = p.colorJitter;
  const jitter = !!cj && !!(cj.brightness || cj.contrast || cj.saturation || cj.hue);
  if (opts.fold && p.normalize && !plan.pixels && !others && !jitter && p.rotate === 0 && !p.affine) {
    const c = info.dataset.shape[2];
    const { mean, std } = p.normalize;
    if (mean.length === c && std.length === c) {
      fold = p.crop?.kind === 'pad' ? 'scaled' : 'normalized';
      out.pixels = {
        owner,
        scale: std.map((s) => 1 / (255 * s)),
        offset: fold === 'normalized' ? mean.map((m, i) => -m / std[i]) : mean.map(() => 0),
      };
    }
  }
  return { plan: out, crop, fold };
}

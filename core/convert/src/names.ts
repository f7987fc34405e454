/**
 * How the published PyTorch models name their weights, per zoo family: a rule from a zoo layer's name to the
 * torch module that holds its parameters (torchvision's state_dict keys, or timm's where timm's models differ).
 */

/** A checkpoint's architecture: the name people know it by, the zoo model that holds it, and how its keys map. */
export interface SourceModel {
  /** The name torchvision or timm publishes it under. */
  name: string;
  publisher: 'torchvision' | 'timm';
  /** The zoo model (@tricks/models) it converts into, built with PyTorch's padding. */
  zoo: string;
  /** The torch module of a zoo layer (the prefix of its keys), undefined for a layer without parameters. */
  module: (layer: string, layers: ReadonlySet<string>) => string | undefined;
  /** The torch key of the classifier's weight [classes, features]: the class count comes from it. */
  head: string;
  /** The input size the published weights were trained at. */
  inputSize: number;
}

const m = (re: RegExp, s: string) => re.exec(s);

/** torchvision's ResNet/ResNeXt (conv1, bn1, layerN.B.convI/bnI, downsample.0/1, fc); timm's ResNet-D with `deep`. */
function resnetModule(deep: boolean) {
  return (layer: string): string | undefined => {
    if (layer === 'stem_conv') return 'conv1';
    if (layer === 'stem_bn') return 'bn1';
    // timm's deep stem: conv1 = Sequential(conv 0, bn 1, act 2, conv 3, bn 4, act 5, conv 6), then bn1
    const stem = {
      stem1_conv: 'conv1.0',
      stem1_bn: 'conv1.1',
      stem2_conv: 'conv1.3',
      stem2_bn: 'conv1.4',
      stem3_conv: 'conv1.6',
      stem3_bn: 'bn1',
    };
    if (layer in stem) return stem[layer as keyof typeof stem];
    if (layer === 'logits') return 'fc';
    let r = m(/^s(\d)b(\d+)_(\d)_(conv|bn)$/, layer);
    if (r) return `layer${r[1]}.${Number(r[2]) - 1}.${r[4]}${r[3]}`;
    // torchvision: downsample = Sequential(conv, bn); timm's avg_down: Sequential(pool or Identity, conv, bn)
    r = m(/^s(\d)b(\d+)_down_(conv|bn)$/, layer);
    if (r) return `layer${r[1]}.${Number(r[2]) - 1}.downsample.${(deep ? 1 : 0) + (r[3] === 'bn' ? 1 : 0)}`;
    return undefined;
  };
}

/**
 * torchvision's MobileNetV3: features.0 the stem (0 conv, 1 bn), features.i (i = 1..) the inverted residuals with
 * block = [expand (if any), depthwise, SE (if any), project], features.last the 1x1 head conv, classifier.0 and .3.
 */
function mobilenetModule(layer: string, layers: ReadonlySet<string>): string | undefined {
  const cbr = (kind: string) => (kind === 'conv' ? 0 : 1);
  let r = m(/^stem_(conv|bn)$/, layer);
  if (r) return `features.0.${cbr(r[1])}`;
  if (layer === 'fc1') return 'classifier.0';
  if (layer === 'logits') return 'classifier.3';
  r = m(/^head_(conv|bn)$/, layer);
  if (r) {
    let n = 1;
    while (layers.has(`b${n}_dw_conv`)) n++;
    return `features.${n}.${cbr(r[1])}`;
  }
  r = m(/^b(\d+)_(expand|dw|se|project)_(conv|bn|fc1|fc2)$/, layer);
  if (!r) return undefined;
  const b = `b${r[1]}`;
  const e = layers.has(`${b}_expand_conv`) ? 1 : 0;
  const se = layers.has(`${b}_se_fc1`) ? 1 : 0;
  const index = { expand: 0, dw: e, se: e + 1, project: e + 1 + se }[r[2] as 'expand'];
  return r[2] === 'se' ? `features.${r[1]}.block.${index}.${r[3]}` : `features.${r[1]}.block.${index}.${cbr(r[3])}`;
}

/**
 * torchvision's EfficientNet: features.0 the stem, features.S.B the MBConv blocks (block = [expand (if any),
 * depthwise, SE, project]), features.8 the head conv, classifier.1 the Linear.
 */
function efficientnetModule(layer: string, layers: ReadonlySet<string>): string | undefined {
  const cbr = (kind: string) => (kind === 'conv' ? 0 : 1);
  let r = m(/^stem_(conv|bn)$/, layer);
  if (r) return `features.0.${cbr(r[1])}`;
  r = m(/^head_(conv|bn)$/, layer);
  if (r) return `features.8.${cbr(r[1])}`;
  if (layer === 'logits') return 'classifier.1';
  r = m(/^s(\d)b(\d+)_(expand|dw|se|project)_(conv|bn|fc1|fc2)$/, layer);
  if (!r) return undefined;
  const e = layers.has(`s${r[1]}b${r[2]}_expand_conv`) ? 1 : 0;
  const index = { expand: 0, dw: e, se: e + 1, project: e + 2 }[r[3] as 'expand'];
  const base = `features.${r[1]}.${Number(r[2]) - 1}.block.${index}`;
  return r[3] === 'se' ? `${base}.${r[4]}` : `${base}.${cbr(r[4])}`;
}

/**
 * torchvision's Swin: features.0 = [Conv2d, Permute, LayerNorm], features.1/3/5/7 the stages' blocks (norm1,
 * attn.{qkv, proj, relative_position_bias_table}, norm2, mlp.0, mlp.3), features.2/4/6 PatchMerging (norm,
 * reduction), norm, head.
 */
function swinModule(layer: string): string | undefined {
  if (layer === 'patch_embed') return 'features.0.0';
  if (layer === 'patch_norm') return 'features.0.2';
  if (layer === 'norm') return 'norm';
  if (layer === 'logits') return 'head';
  let r = m(/^merge(\d)_(norm|reduction)$/, layer);
  if (r) return `features.${2 * Number(r[1])}.${r[2]}`;
  r = m(/^s(\d)b(\d+)_(norm1|norm2|attn|mlp1|mlp2)$/, layer);
  if (!r) return undefined;
  const part = { norm1: 'norm1', norm2: 'norm2', attn: 'attn', mlp1: 'mlp.0', mlp2: 'mlp.3' }[r[3] as 'attn'];
  return `features.${2 * Number(r[1]) - 1}.${Number(r[2]) - 1}.${part}`;
}

const resnet = (name: string, zoo: string, publisher: 'torchvision' | 'timm' = 'torchvision'): SourceModel => ({
  name,
  publisher,
  zoo,
  module: resnetModule(publisher === 'timm'),
  head: 'fc.weight',
  inputSize: 224,
});

/** Every checkpoint architecture `tricks convert` reads, by its published name. */
export const SOURCE_MODELS: SourceModel[] = [
  resnet('resnet18', 'resnet18'),
  resnet('resnet34', 'resnet34'),
  resnet('resnet50', 'resnet50-b'),
  resnet('resnext50_32x4d', 'resnext50-32x4d'),
  resnet('resnet18d', 'resnet18-d', 'timm'),
  resnet('resnet34d', 'resnet34-d', 'timm'),
  resnet('resnet50d', 'resnet50-d', 'timm'),
  {
    name: 'mobilenet_v3_large',
    publisher: 'torchvision',
    zoo: 'mobilenetv3-large',
    module: mobilenetModule,
    head: 'classifier.3.weight',
    inputSize: 224,
  },
  {
    name: 'mobilenet_v3_small',
    publisher: 'torchvision',
    zoo: 'mobilenetv3-small',
    module: mobilenetModule,
    head: 'classifier.3.weight',
    inputSize: 224,
  },
  {
    name: 'efficientnet_b0',
    publisher: 'torchvision',
    zoo: 'efficientnet-b0',
    module: efficientnetModule,
    head: 'classifier.1.weight',
    inputSize: 224,
  },
  { name: 'swin_t', publisher: 'torchvision', zoo: 'swin-t', module: swinModule, head: 'head.weight', inputSize: 224 },
];

/**
 * The source model for a `--model` name: a torchvision or timm name (resnet50 is torchvision's, the zoo's
 * ResNet-50-B), or a zoo name (resnet50-b, resnet18-d, mobilenetv3-large...). Undefined for any other name.
 */
export function sourceModel(name: string): SourceModel | undefined {
  const byName = SOURCE_MODELS.find((s) => s.name === name);
  if (byName) return byName;
  const zoo = name === 'resnet18-b' ? 'resnet18' : name === 'resnet34-b' ? 'resnet34' : name;
  return SOURCE_MODELS.find((s) => s.zoo === zoo);
}

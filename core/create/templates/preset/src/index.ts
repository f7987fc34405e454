import { definePreset, type PresetDefinition } from '@tricks/core';

/**
 * A preset is data: plugins with their options, other presets, and trainer settings. A user's config
 * overrides any of it. Plugins listed here must be dependencies of this package.
 */
const preset: PresetDefinition = {
  name: {{nameLiteral}},
  description: {{descriptionLiteral}},
  plugins: [['label-smoothing', { epsilon: 0.1 }]],
  settings: {
    model: { name: 'small-cnn' },
    optimizer: { name: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 5e-4 },
    schedule: { name: 'cosine' },
    epochs: 5,
    batchSize: 64,
  },
};

export default definePreset(preset);

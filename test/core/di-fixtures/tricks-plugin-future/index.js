// Built for a future core: its package.json peerDependencies say so, its definition has no `core` field.
export default { name: 'future', description: 'needs @tricks/core 9', apply() {} };

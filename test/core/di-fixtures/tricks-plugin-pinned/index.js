// Its definition's `core` range wins over the package.json peerDependency.
export default { name: 'pinned', description: 'declares core >=0.1.0 <1 in its definition', core: '>=0.1.0 <1', apply() {} };

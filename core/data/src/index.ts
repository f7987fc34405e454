export { encodeCifarRecords, loadCifar } from './cifar.js';
export { loadDigits } from './digits.js';
export { decodeImage, IMAGE_EXT, loadFolder } from './folder.js';
export { loadIdxDataset } from './idx.js';
export { dataBuiltin, datasetsModule, registerDatasets } from './register.js';
export { loadFashionLongTail, loadFashionNoisy } from './variants.js';

import sharp from 'sharp';
import { mkdirSync } from 'node:fs';
const [out, px, n] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
for (const split of ['train', 'val'])
  for (const c of ['cat', 'dog', 'fox']) {
    mkdirSync(`${out}/${split}/${c}`, { recursive: true });
    for (let i = 0; i < (split === 'train' ? n : Math.ceil(n / 4)); i++) {
      const buf = Buffer.alloc(px * px * 3);
      const k = ['cat', 'dog', 'fox'].indexOf(c);
      for (let j = 0; j < buf.length; j++) buf[j] = (j % 3 === k ? 180 : 40) + Math.floor(Math.random() * 60);
      await sharp(buf, { raw: { width: px, height: px, channels: 3 } })
        .jpeg()
        .toFile(`${out}/${split}/${c}/${i}.jpg`);
    }
  }

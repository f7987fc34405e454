// --pretrained: torchvision's addresses (checked against the installed torchvision), the download from a local
// HTTP server on 127.0.0.1 (a file made here), the SHA-256 prefix check, the cache, and the offline message.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TricksError } from '@tricks/core';
import { fetchPretrained, hashPrefix, SOURCE_MODELS, TORCHVISION_WEIGHTS, weightsUrl } from '../src/index.js';

const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

describe('--pretrained', function () {
  this.timeout(120000);
  const body = randomBytes(300000);
  const sha = createHash('sha256').update(body).digest('hex');
  let server: Server;
  let base = '';
  let requests = 0;
  const cache = mkdtempSync(join(tmpdir(), 'tricks-cache-'));

  before(async () => {
    process.env.TRICKS_CACHE = cache;
    server = createServer((req, res) => {
      requests++;
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.close();
    delete process.env.TRICKS_CACHE;
  });

  it("names the address of torchvision's default weights of every model, as the installed torchvision has them", function () {
    const names = Object.keys(TORCHVISION_WEIGHTS).map(
      (zoo) => SOURCE_MODELS.find((s) => s.zoo === zoo && s.publisher === 'torchvision')!.name,
    );
    const py = spawnSync(
      PYTHON,
      [
        '-c',
        `import sys, json, torchvision.models as m\nprint(json.dumps([m.get_model_weights(n).DEFAULT.url for n in sys.argv[1:]]))`,
        ...names,
      ],
      { encoding: 'utf8' },
    );
    if (py.status !== 0) {
      console.log(`    (skipped: torchvision is not importable here: ${py.stderr.trim().split('\n').at(-1)})`);
      this.skip();
    }
    expect(Object.values(TORCHVISION_WEIGHTS)).to.deep.equal(JSON.parse(py.stdout));
    for (const url of Object.values(TORCHVISION_WEIGHTS)) expect(hashPrefix(url), url).to.match(/^[a-f0-9]{8}$/);
  });

  it('downloads into the cache, checks the SHA-256 prefix in the name, reports progress, then uses the cached file', async () => {
    const url = `${base}/resnet18-${sha.slice(0, 8)}.pth`;
    // what a killed download left: its process is gone, so it is removed
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    mkdirSync(join(cache, 'weights'), { recursive: true });
    const stale = join(cache, 'weights', `resnet18-${sha.slice(0, 8)}.pth.tmp-${dead}-1700000000000`);
    writeFileSync(stale, 'half a download');
    const seen: number[] = [];
    const file = await fetchPretrained('resnet18', { url, progress: (d) => seen.push(d) });
    expect(file).to.equal(join(cache, 'weights', `resnet18-${sha.slice(0, 8)}.pth`));
    expect(readFileSync(file).equals(body)).to.equal(true);
    expect(seen.at(-1)).to.equal(body.length);
    const before = requests;
    expect(await fetchPretrained('resnet18', { url })).to.equal(file);
    expect(requests, 'the second call reads the cache').to.equal(before);
    expect(existsSync(stale), "the killed download's temp file is gone").to.equal(false);
  });

  it('refuses a download whose SHA-256 does not start with the prefix in its name, and leaves nothing in the cache', async () => {
    const url = `${base}/resnet34-00000000.pth`;
    const err = await fetchPretrained('resnet34', { url }).catch((e) => e);
    expect(err).to.be.instanceOf(TricksError);
    expect(err.message).to.match(/does not match the SHA-256 prefix 00000000 in its name/);
    expect(readdirSync(join(cache, 'weights')).filter((f) => f.startsWith('resnet34'))).to.deep.equal([]);
  });

  it('offline: says which file to download and where to put it', async () => {
    // a port nothing listens on: the server's, closed
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const url = `http://127.0.0.1:${port}/resnet18-f37072fd.pth`;
    const err = await fetchPretrained('resnet18', { url }).catch((e) => e);
    expect(err).to.be.instanceOf(TricksError);
    expect(err.message).to.include(`could not download ${url} (ECONNREFUSED)`);
    expect(err.message).to.include(`put it at ${join(cache, 'weights', 'resnet18-f37072fd.pth')}`);
  });

  it('names the zoo model when torchvision has no weights for the one given', () => {
    expect(() => weightsUrl('resnet50')).to.throw(TricksError, /torchvision's resnet50 is the zoo's resnet50-b: use --model resnet50-b/);
    expect(() => weightsUrl('resnet20')).to.throw(TricksError, /models with torchvision weights: resnet18, resnet34/);
  });
});

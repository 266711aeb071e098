/**
 * content_hash (dropbox-api.md §6): the four published test vectors, and chunking independence
 * of the streaming hasher.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { ContentHasher, contentHash, CONTENT_HASH_BLOCK_BYTES } from '../src/dropbox/content-hash.js';

const MiB4 = 4 * 1024 * 1024;

test('block size is 4 MiB', (t) => {
  t.is(CONTENT_HASH_BLOCK_BYTES, 4_194_304);
});

test('§6 vector: empty input', (t) => {
  t.is(contentHash(new Uint8Array(0)), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});

test('§6 vector: "hello"', (t) => {
  t.is(contentHash(Buffer.from('hello')), '9595c9df90075148eb06860365df33584b75bff782a510c6cd4883a419833d50');
});

test('§6 vector: 4 MiB + 1 zero bytes', (t) => {
  t.is(contentHash(Buffer.alloc(MiB4 + 1)), '14a4d47f23a30177885d9820122f17d2d3a55fe63f7f5c27b95f689e0b2accd6');
});

test('§6 vector: 4 MiB of bytes i mod 256', (t) => {
  const b = Buffer.alloc(MiB4);
  for (let i = 0; i < b.length; i++) b[i] = i & 0xff;
  t.is(contentHash(b), '894bbb52d1212d6bcbe9967f1a2169138c4d4af0c8dfbaeae86cd1d3f0c03faf');
});

test('not plain SHA-256 once there is a block: hash of the block digests', (t) => {
  const data = Buffer.from('hello');
  const plain = createHash('sha256').update(data).digest('hex');
  const expected = createHash('sha256').update(createHash('sha256').update(data).digest()).digest('hex');
  t.not(contentHash(data), plain);
  t.is(contentHash(data), expected);
});

test('streaming: any chunking gives the same hash as one call', (t) => {
  const data = Buffer.alloc(2 * MiB4 + 12345);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) & 0xff;
  const whole = contentHash(data);
  for (const size of [1 << 20, MiB4, MiB4 - 1, MiB4 + 1, 3 * MiB4]) {
    const h = new ContentHasher();
    for (let o = 0; o < data.length; o += size) h.update(data.subarray(o, o + size));
    t.is(h.bytes, data.length);
    t.is(h.digest(), whole, `chunk size ${size}`);
  }
});

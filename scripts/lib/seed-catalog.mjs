// Uploads N small files /catalog/cNNN/imgNNN:latest.simg (100 per collection) to a Dropbox
// endpoint, 16 at a time, each retried a few times: the big catalog of bench-mount.sh and
// bench-startup.sh. The token comes from DBX_TOKEN (never argv).
//   node scripts/lib/seed-catalog.mjs URL N
import { setTimeout as sleep } from 'node:timers/promises';

const [url, nText] = process.argv.slice(2);
const n = Number(nText);
if (!url || !Number.isInteger(n) || n < 1) {
  console.error('usage: seed-catalog.mjs URL N');
  process.exit(2);
}
const per = 100;
let next = 0;
async function worker() {
  for (;;) {
    const i = next++;
    if (i >= n) return;
    const path = `/catalog/c${String(Math.floor(i / per)).padStart(3, '0')}/img${String(i % per).padStart(3, '0')}:latest.simg`;
    for (let attempt = 0; ; attempt++) {
      const res = await fetch(`${url}/2/files/upload`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${process.env.DBX_TOKEN}`, 'Content-Type': 'application/octet-stream', 'Dropbox-API-Arg': JSON.stringify({ path, mode: 'overwrite' }) },
        body: `image ${i}\n`,
      });
      const text = await res.text();
      if (res.ok) break;
      if (attempt >= 5) throw new Error(`${path}: HTTP ${res.status}: ${text}`);
      await sleep(200 * (attempt + 1));
    }
  }
}
await Promise.all(Array.from({ length: 16 }, worker));

/** The admin API under `/__emulator/` (docs/emulator.md): stats, shaping, faults, resets. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { State } from './routes/types.js';

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

export async function handleAdmin(state: State, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const what = `${req.method ?? 'GET'} ${url.pathname.slice('/__emulator'.length)}`;
  const { control } = state;
  try {
    let m: RegExpExecArray | null;
    if (what === 'GET /stats') return send(res, 200, control.stats);
    if (what === 'POST /stats/reset') {
      control.resetStats();
      return send(res, 200, control.stats);
    }
    if (what === 'GET /config') return send(res, 200, control.shaping);
    if (what === 'POST /config') return send(res, 200, control.setShaping(await readJson(req)));
    if (what === 'GET /faults') return send(res, 200, control.listRules());
    if (what === 'POST /faults') return send(res, 200, { id: control.addRule(await readJson(req)).id });
    if (what === 'DELETE /faults') {
      control.removeRule();
      return send(res, 200, {});
    }
    if ((m = /^DELETE \/faults\/(\d+)$/.exec(what))) {
      control.removeRule(Number(m[1]));
      return send(res, 200, {});
    }
    if (what === 'POST /reset-cursors') {
      state.resetCursors();
      return send(res, 200, {});
    }
    if (what === 'POST /expire-tokens') {
      state.auth.expireAllAccessTokens();
      return send(res, 200, {});
    }
    return send(res, 404, { error: `no admin route ${what}` });
  } catch (e) {
    return send(res, 400, { error: (e as Error).message });
  }
}

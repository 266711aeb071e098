/** Parses "40M" (10^6), "40Mi" (2^20), "2T", "1500" into bytes. */
export function parseBytes(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(i?)[bB]?$/.exec(text.trim());
  if (!m) throw new Error(`'${text}' is not a byte size (examples: 1500, 40M, 40Mi, 2T)`);
  const power = ' kmgt'.indexOf((m[2] || ' ').toLowerCase());
  return Math.round(Number(m[1]) * (m[3] ? 1024 : 1000) ** power);
}

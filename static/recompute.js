// The whole draw recomputed in the browser from the published record and entries file (DESIGN §4):
// the entries root (RFC 6962), the seed, ChaCha20 (RFC 8439, as rand_chacha's ChaCha20Rng reads
// it), the spec's rejection sampling and the partial Fisher–Yates. Nothing of the service's own
// code is trusted: only WebCrypto's SHA-256 and the arithmetic below.

const enc = new TextEncoder();

export function hexToBytes(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

export function toHex(bytes) {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

async function sha256(...parts) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", concat(parts)));
}

function u32be(n) {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

function u64be(n) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}

/** LP(x): x's 4-byte big-endian length, then x. */
function lp(bytes) {
  return concat([u32be(bytes.length), bytes]);
}

/** RFC 6962 Merkle Tree Hash over the tickets' 16 bytes each. */
export async function entriesRoot(tickets) {
  const leaves = await Promise.all(tickets.map((t) => sha256(new Uint8Array([0]), hexToBytes(t.replace(/-/g, "")))));
  async function mth(lo, hi) {
    const n = hi - lo;
    if (n === 0) return sha256(new Uint8Array());
    if (n === 1) return leaves[lo];
    let k = 1;
    while (k * 2 < n) k *= 2;
    return sha256(new Uint8Array([1]), await mth(lo, lo + k), await mth(lo + k, hi));
  }
  return toHex(await mth(0, tickets.length));
}

/** A witness's commitment (DESIGN §4): SHA-256(LP("campaign-commit/v1") ‖ LP(campaign) ‖
 * u32be(round) ‖ LP(name) ‖ LP(secret)), hex. */
export async function commitment(campaignId, round, name, secretHex) {
  return toHex(await sha256(
    lp(enc.encode("campaign-commit/v1")), lp(enc.encode(campaignId)), u32be(round), lp(enc.encode(name)), lp(hexToBytes(secretHex)),
  ));
}

/** seed = SHA-256(LP("campaign-draw/v1") ‖ LP(campaign) ‖ u32be(round) ‖ u64be(n) ‖ root ‖ u32be(w) ‖ … ‖ LP(beacon)). */
export async function seed(campaignId, round, entryCount, rootHex, witnesses, beacon) {
  const byName = witnesses
    .map((w) => ({ name: enc.encode(w.name), secret: hexToBytes(w.secret) }))
    .sort((a, b) => {
      for (let i = 0; i < Math.min(a.name.length, b.name.length); i++) if (a.name[i] !== b.name[i]) return a.name[i] - b.name[i];
      return a.name.length - b.name.length;
    });
  return toHex(await sha256(
    lp(enc.encode("campaign-draw/v1")), lp(enc.encode(campaignId)), u32be(round), u64be(entryCount), hexToBytes(rootHex),
    u32be(byName.length), ...byName.flatMap((w) => [lp(w.name), lp(w.secret)]), lp(enc.encode(beacon || "")),
  ));
}

function rotl(x, n) { return ((x << n) | (x >>> (32 - n))) >>> 0; }

function quarter(s, a, b, c, d) {
  s[a] = (s[a] + s[b]) >>> 0; s[d] = rotl(s[d] ^ s[a], 16);
  s[c] = (s[c] + s[d]) >>> 0; s[b] = rotl(s[b] ^ s[c], 12);
  s[a] = (s[a] + s[b]) >>> 0; s[d] = rotl(s[d] ^ s[a], 8);
  s[c] = (s[c] + s[d]) >>> 0; s[b] = rotl(s[b] ^ s[c], 7);
}

/** RFC 8439 §2.3: the ChaCha20 block of a 32-byte key, a 32-bit counter and a 12-byte nonce, as 16 words. */
export function chachaBlock(key, counter, nonce) {
  const k = new DataView(key.buffer, key.byteOffset, 32);
  const n = new DataView(nonce.buffer, nonce.byteOffset, 12);
  const init = new Uint32Array(16);
  init.set([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);
  for (let i = 0; i < 8; i++) init[4 + i] = k.getUint32(4 * i, true);
  init[12] = counter >>> 0;
  for (let i = 0; i < 3; i++) init[13 + i] = n.getUint32(4 * i, true);
  const s = Uint32Array.from(init);
  for (let i = 0; i < 10; i++) {
    quarter(s, 0, 4, 8, 12); quarter(s, 1, 5, 9, 13); quarter(s, 2, 6, 10, 14); quarter(s, 3, 7, 11, 15);
    quarter(s, 0, 5, 10, 15); quarter(s, 1, 6, 11, 12); quarter(s, 2, 7, 8, 13); quarter(s, 3, 4, 9, 14);
  }
  for (let i = 0; i < 16; i++) s[i] = (s[i] + init[i]) >>> 0;
  return s;
}

/** rand_chacha's ChaCha20Rng::from_seed(key): the keystream from block 0 with a zero nonce, next_u64 = two words, low first. */
export function chachaRng(key) {
  let block = null, word = 16, counter = 0;
  const nonce = new Uint8Array(12);
  const nextU32 = () => {
    if (word === 16) { block = chachaBlock(key, counter++, nonce); word = 0; }
    return block[word++];
  };
  return { nextU64: () => { const lo = BigInt(nextU32()); const hi = BigInt(nextU32()); return (hi << 32n) | lo; } };
}

/** Uniform in [0, m): reject x ≥ floor(2^64 / m)·m. */
function uniform(rng, m) {
  const M = BigInt(m);
  const zone = ((1n << 64n) / M) * M;
  for (;;) {
    const x = rng.nextU64();
    if (x < zone) return Number(x % M);
  }
}

/** The ranks: for i in 0..k, j = i + uniform(n − i), swap a[i], a[j]; a[0..k]. */
export function select(tickets, k, seedHex) {
  const rng = chachaRng(hexToBytes(seedHex));
  const a = tickets.slice();
  const kk = Math.min(k, a.length);
  for (let i = 0; i < kk; i++) {
    const j = i + uniform(rng, a.length - i);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, kk);
}

/**
 * Recomputes a drawn round from its record and entries file; each step `{ name, ok, detail }`,
 * stopping at the first that fails.
 */
export async function recompute(record, entriesText) {
  const steps = [];
  const step = (name, ok, detail) => { steps.push({ name, ok, detail }); return ok; };
  const tickets = entriesText ? entriesText.trimEnd().split("\n") : [];
  if (!step("抽奖券数量", tickets.length === record.entry_count, `名单 ${tickets.length} 张，记录写 ${record.entry_count} 张`)) return steps;
  const root = await entriesRoot(tickets);
  if (!step("名单根哈希", root === record.entries_root, root)) return steps;
  const s = await seed(record.campaign_id, record.round, tickets.length, root, record.witnesses, record.beacon);
  if (!step("随机种子", s === record.seed, s)) return steps;
  const prizes = record.prizes.reduce((n, p) => n + p.count, 0);
  const reserves = (record.reserves || []).length;
  const chosen = select(tickets, prizes + reserves, s);
  const tiers = record.prizes.flatMap((p) => Array(p.count).fill(p.tier));
  const winners = chosen.slice(0, prizes).map((t, i) => `${i + 1}:${t}:${tiers[i]}`);
  const published = record.winners.map((w) => `${w.rank}:${w.ticket}:${w.tier}`);
  const same = winners.length === published.length && winners.every((w, i) => w === published[i]);
  if (!step("中奖名单", same, `ChaCha20 重算 ${winners.length} 名，与公示${same ? "一致" : "不一致"}`)) return steps;
  const backups = chosen.slice(prizes).map((t, i) => `${prizes + i + 1}:${t}`);
  const listed = (record.reserves || []).map((r) => `${r.rank}:${r.ticket}`);
  step("候补名单", backups.join() === listed.join(), `${backups.length} 名候补${backups.join() === listed.join() ? "与公示一致" : "与公示不一致"}`);
  return steps;
}

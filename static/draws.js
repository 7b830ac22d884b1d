import { api, busy, failure, h, $, localTime, STATE_NAMES } from "/static/common.js";
import { recompute } from "/static/recompute.js";

const TIERS = { grand: "一等奖", standard: "二等奖" };
const EXCLUDED = {
  won_earlier: "已中过奖", virtual_number: "虚拟号段", shared_address: "同一网络大量参与", shared_device: "同一设备多个号码",
  too_fast: "答题过快", duplicate_person: "一人多号", staff: "工作人员", other: "其他",
};

function hexToBytes(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

function toHex(bytes) {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256(...parts) {
  const len = parts.reduce((n, p) => n + p.length, 0);
  const all = new Uint8Array(len);
  let at = 0;
  for (const p of parts) { all.set(p, at); at += p.length; }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", all));
}

/** RFC 9162 §2.1.3.2: does the audit path lead from the ticket's leaf to the root? An excluded
 * ticket's leaf is its 16 bytes followed by the reason code (DESIGN §4a). */
async function verifyInclusion(ticket, index, size, path, root, reason = "") {
  if (index >= size) return false;
  let fn = index, sn = size - 1;
  let r = await sha256(new Uint8Array([0]), hexToBytes(ticket.replace(/-/g, "")), new TextEncoder().encode(reason));
  for (const p of path.map(hexToBytes)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(new Uint8Array([1]), p, r);
      while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      r = await sha256(new Uint8Array([1]), r, p);
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  return sn === 0 && toHex(r) === root;
}

let zone = "Asia/Shanghai";

/** An RFC 3339 UTC instant from the record, in the campaign's time zone. */
function utcToLocal(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  return new Intl.DateTimeFormat("zh-CN", { timeZone: zone, month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(new Date(t));
}

function roundCard(r, rec) {
  const card = h("section", { class: "card", id: `round-${r.number}`, "aria-labelledby": `round-${r.number}-title` },
    h("h2", { id: `round-${r.number}-title` }, `第 ${r.number} 期 `, h("span", { class: `badge ${r.state}` }, STATE_NAMES[r.state] || r.state)),
    h("p", { class: "small muted" }, `报名时间 ${localTime(r.opens_at)} – ${localTime(r.closes_at)}`));
  if (!rec) return card;
  if (rec.entry_count !== null && rec.entry_count !== undefined) {
    card.append(h("p", {}, `封存抽奖券 ${rec.entry_count} 张`, rec.frozen_at_local ? `（${localTime(rec.frozen_at_local)} 封存）` : ""));
    card.append(h("p", { class: "small" }, "清单根哈希：", h("span", { class: "mono" }, rec.entries_root)));
  }
  if (rec.exclusion_count) {
    const reasons = Object.entries(rec.exclusions_by_reason || {}).map(([k, n]) => `${EXCLUDED[k] || k} ${n}`).join("、");
    card.append(h("p", { class: "small" }, `共发放抽奖券 ${rec.tickets_issued} 张，其中 ${rec.exclusion_count} 张未参加抽奖（${reasons}）；排除清单根哈希：`, h("span", { class: "mono" }, rec.exclusions_root)));
  }
  if (rec.beacon_source) {
    const quicknet = /^drand-quicknet:([1-9][0-9]*)$/.exec(rec.beacon_source);
    card.append(h("p", { class: "small" }, quicknet
      ? `公开随机源：drand quicknet 随机信标第 ${quicknet[1]} 轮（任何人可离线验证）`
      : `公开随机源：${rec.beacon_source}（无法离线验证）`, rec.beacon ? `，取值 ${rec.beacon}` : ""));
    if (rec.beacon_signature) {
      card.append(h("p", { class: "small" }, "drand 签名（开奖时已用 quicknet 公钥验证，取值即签名的 SHA-256）：", h("span", { class: "mono", style: "word-break: break-all" }, rec.beacon_signature)));
    }
  }
  // Commitments are shown as soon as they are made, so that anyone can keep a copy before the freeze.
  if (rec.witnesses.length) {
    card.append(h("h3", {}, `见证人（${rec.witnesses.length} 位）`), h("ul", { class: "small witnesses" }, ...rec.witnesses.map((w) =>
      h("li", {}, h("strong", {}, w.name), w.committed_at ? `，${utcToLocal(w.committed_at)} 提交承诺 ` : " 承诺 ",
        h("span", { class: "mono", style: "word-break: break-all" }, w.commitment),
        w.secret ? h("span", {}, `；${w.revealed_at ? utcToLocal(w.revealed_at) + " " : ""}揭示秘密 `, h("span", { class: "mono", style: "word-break: break-all" }, w.secret)) : "（秘密尚未揭示）"))));
  } else {
    card.append(h("p", { class: "small" }, "见证人：暂无"));
  }
  if (rec.prizes && rec.prizes.length) {
    card.append(h("p", { class: "small" }, `本期奖品：${rec.prizes.map((p) => `${TIERS[p.tier] || p.tier} ${p.count} 份`).join("、")}（含往期未发出的结转）`));
  }
  if (rec.seed) card.append(h("p", { class: "small" }, `随机种子${rec.drawn_at_local ? `（${localTime(rec.drawn_at_local)} 开奖）` : ""}：`, h("span", { class: "mono", style: "word-break: break-all" }, rec.seed)));
  if (rec.winners.length) {
    card.append(h("h3", {}, `中奖名单（${rec.winners.length} 名）`),
      h("ol", { class: "winners" }, ...rec.winners.map((w) => h("li", {}, `${w.phone} · ${TIERS[w.tier] || w.tier}`))));
  }
  if (rec.reserves && rec.reserves.length) {
    const first = rec.reserves[0].rank, last = rec.reserves[rec.reserves.length - 1].rank;
    card.append(h("p", { class: "small" }, `候补 ${rec.reserves.length} 名（第 ${first}–${last} 名，同一次抽取接着选出）：中奖者未按时领取或放弃时，奖品依次转给候补。`));
  }
  if (rec.reallocations && rec.reallocations.length) {
    const lines = rec.reallocations.map((x) => h("li", {},
      `第 ${x.forfeited_rank} 名${x.reason === "declined" ? "放弃" : "逾期未领取"}，${TIERS[x.tier] || x.tier}`,
      x.reserve_rank ? `转给候补第 ${x.reserve_rank} 名` : "，已无候补（未能发放）",
      `（${localTime(x.at)}）`));
    card.append(h("h3", {}, `奖品转让（${rec.reallocations.length} 次）`), h("ol", { class: "small" }, ...lines));
  }
  const links = h("p", { class: "small" });
  links.append(h("a", { href: `/api/rounds/${r.number}`, download: `round-${r.number}.json` }, "下载抽奖记录"));
  if (rec.entry_count !== null && rec.entry_count !== undefined) {
    links.append(" · ", h("a", { href: `/api/rounds/${r.number}/entries`, download: `round-${r.number}-entries.txt` }, "下载抽奖券清单"));
    links.append(" · ", h("a", { href: `/api/rounds/${r.number}/exclusions`, download: `round-${r.number}-exclusions.txt` }, "下载排除清单"));
    if (r.state === "drawn") {
      links.append(" · ", h("a", { href: `/api/rounds/${r.number}/reallocations`, download: `round-${r.number}-reallocations.json` }, "下载奖品转让记录"));
      links.append(" · ", h("a", { href: `/api/rounds/${r.number}/record.sig`, download: `round-${r.number}-record.sig` }, "下载记录签名"), "（公钥见 ", h("a", { href: "/api/keys" }, "/api/keys"), "）");
    }
  }
  card.append(links);
  if (r.state === "drawn") {
    const result = h("ol", { class: "small recompute", "aria-live": "polite" });
    const run = h("button", { class: "btn secondary", type: "button" }, "在我的浏览器中重算本期开奖");
    run.addEventListener("click", () => recomputeRound(r.number, rec, run, result));
    card.append(h("div", { class: "recompute-box" }, run, result));
  }
  return card;
}

/** Recomputes a drawn round here — root, seed, ChaCha20, winners and reserves — from the two
 * published documents, showing each step. */
async function recomputeRound(round, rec, button, out) {
  button.disabled = true;
  button.textContent = "正在重算…";
  const text = await fetch(`/api/rounds/${round}/entries`).then((r) => (r.ok ? r.text() : null)).catch(() => null);
  if (text === null) {
    out.replaceChildren(h("li", { role: "alert" }, "抽奖券清单下载失败，请检查网络后重试。"));
  } else {
    const steps = await recompute(rec, text);
    out.replaceChildren(...steps.map((s) => h("li", { class: s.ok ? "ok" : "bad" }, `${s.ok ? "✓" : "✗"} ${s.name}：`, h("span", { class: "mono", style: "word-break: break-all" }, s.detail))));
    const all = steps.every((s) => s.ok) && steps.length >= 5;
    out.append(h("li", { class: all ? "ok" : "bad" }, all
      ? "✓ 全部一致：中奖名单完全由公开的清单、见证人秘密和随机源决定。"
      : "✗ 重算结果与公示不一致，请联系主办方或公证处。"));
  }
  button.disabled = false;
  button.textContent = "再算一次";
}

async function check(e) {
  e.preventDefault();
  const out = $("#check-result");
  out.classList.remove("hidden", "ok");
  const round = $("#check-round").value;
  const ticket = $("#check-ticket").value.trim().toLowerCase();
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(ticket)) {
    out.textContent = "抽奖券号的格式不对：应为 36 位，如 1b4e28ba-2fa1-41d2-883f-0016d3cca427";
    return;
  }
  const fetched = await busy($("#check-button"), "正在查验…", async () => {
    const proof = await api(`/api/rounds/${round}/proof/${ticket}`);
    return { proof, rec: proof.ok ? await api(`/api/rounds/${round}`) : null };
  });
  if (!fetched) return;
  const { proof: res, rec } = fetched;
  if (!res.ok) {
    if (res.status === 404) out.textContent = `第 ${round} 期封存的抽奖券里没有这张券。`;
    else failure(out, res, () => $("#check").requestSubmit());
    return;
  }
  const p = res.data;
  const excluded = p.list === "exclusions";
  const root = rec.ok ? (excluded ? rec.data.exclusions_root : rec.data.entries_root) : p.root;
  const ok = (await verifyInclusion(ticket, p.leaf_index, p.tree_size, p.path, root, excluded ? p.reason : "")) && root === p.root;
  if (excluded) {
    out.classList.toggle("ok", ok);
    out.textContent = ok
      ? `已在您的浏览器中验证：这张券在第 ${round} 期的排除清单中（共 ${p.tree_size} 张），原因：${EXCLUDED[p.reason] || p.reason}，没有参加本期抽奖。`
      : "✗ 验证失败：服务器给出的证明与公布的排除清单根哈希不符，请联系主办方。";
    return;
  }
  const won = rec.ok && rec.data.winners.find((w) => w.ticket === ticket);
  out.classList.toggle("ok", ok);
  out.textContent = ok
    ? `✓ 已在您的浏览器中验证：这张券是第 ${round} 期封存的 ${p.tree_size} 张抽奖券中的第 ${p.leaf_index + 1} 张。` +
      (won ? `恭喜，这张券中了${TIERS[won.tier] || won.tier}（第 ${won.rank} 名）！` : rec.ok && rec.data.winners.length ? "这张券本期没有中奖。" : "")
    : "✗ 验证失败：服务器给出的证明与公布的根哈希不符，请联系主办方。";
}

const campaign = await api("/api/campaign");
if (campaign.ok) {
  zone = campaign.data.time_zone || zone;
  const rounds = campaign.data.rounds;
  const published = rounds.filter((r) => ["frozen", "drawn"].includes(r.state));
  $("#check-round").replaceChildren(...(published.length ? published : rounds.slice(0, 1)).map((r) => h("option", { value: r.number }, `第 ${r.number} 期`)));
  const cards = [];
  for (const r of [...rounds].reverse()) {
    if (r.state === "scheduled") continue;
    const rec = (await api(`/api/rounds/${r.number}`)).data;
    if (rec && r.state === "drawn") {
      const re = await api(`/api/rounds/${r.number}/reallocations`);
      if (re.ok) rec.reallocations = re.data.reallocations;
    }
    cards.push(roundCard(r, rec));
  }
  $("#rounds").replaceChildren(...(cards.length ? cards : [h("p", { class: "muted" }, "第一期还没有开始。")]));
  const u = campaign.data.unawarded;
  if (u) {
    const part = (m) => Object.entries(m).map(([t, n]) => `${TIERS[t] || t} ${n} 份`).join("、") || "无";
    $("#rounds").prepend(h("section", { class: "card", id: "unawarded" },
      h("h2", {}, "活动结束：未能发放的奖品"),
      h("p", {}, `共 ${u.total} 份。最后一期抽奖券不足而剩余：${part(u.rollover_left)}；中奖者放弃或逾期且已无候补：${part(u.forfeited)}。`)));
  }
}
if (!campaign.ok) failure($("#rounds"), campaign, () => location.reload());
$("#check").addEventListener("submit", check);
// From /me: ?round=N&ticket=UUID checks that ticket and recomputes its round, in one tap.
const asked = new URLSearchParams(location.search);
if (asked.get("round") && asked.get("ticket")) {
  $("#check-round").value = asked.get("round");
  $("#check-ticket").value = asked.get("ticket");
  await check(new Event("submit"));
  const box = document.querySelector(`#round-${asked.get("round")} .recompute-box button`);
  if (box) box.click();
  $("#check").scrollIntoView();
}

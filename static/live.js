import { api, h, $, localTime, STATE_NAMES } from "/static/common.js";
import { commitment, seed } from "/static/recompute.js";

// The live draw (开奖直播大屏) on the hall's projector. It polls the round's public record and
// shows each step as it happens: the freeze, each witness's secret checked against its
// commitment here, the beacon, the seed recomputed here, then the winners rank by rank.
// `/live?round=N` picks the round (else the one being drawn); `&pace=MS` the time between two
// winners appearing (else the whole list takes about a minute).

const TIERS = { grand: "一等奖", standard: "二等奖" };
const POLL_MS = 3000;
const params = new URLSearchParams(location.search);
let round = Number(params.get("round")) || null;
let shown = 0;           // winners on screen
let revealing = null;    // the timer putting them there
let checkedSeed = null;  // the seed this page recomputed
const checkedSecrets = new Map(); // witness name → whether its secret matches its commitment

/** "bfafec6a…1dd5 1e2f…" → the hex in four groups, readable across a hall. */
function grouped(hex) {
  return (hex || "").match(/.{1,16}/g)?.join(" ") || "";
}

function short(hex) {
  return hex ? `${hex.slice(0, 12)}…${hex.slice(-6)}` : "";
}

/** The round to show: asked for, else the one being frozen or drawn, else the last drawn. */
function pick(c) {
  if (round) return round;
  const rounds = c.rounds;
  const busy = rounds.find((r) => ["closed", "frozen"].includes(r.state));
  const drawn = [...rounds].reverse().find((r) => r.state === "drawn");
  const open = rounds.find((r) => r.state === "open");
  return (busy || open || drawn || rounds[0]).number;
}

function stateLine(r) {
  switch (r.state) {
    case "scheduled": return `${localTime(r.opens_at)} 开始报名`;
    case "open": return `报名中，${localTime(r.closes_at)} 截止`;
    case "closed": return "报名已截止，等待封存抽奖券";
    case "frozen": return r.witnesses.every((w) => w.secret) ? "秘密已全部揭示，等待开奖" : "已封存，等待见证人揭示秘密";
    default: return r.drawn_at_local ? `${localTime(r.drawn_at_local)} 开奖` : "结果已公布";
  }
}

async function renderWitnesses(r) {
  for (const w of r.witnesses) {
    if (w.secret && !checkedSecrets.has(w.name)) {
      checkedSecrets.set(w.name, (await commitment(r.campaign_id, r.round, w.name, w.secret)) === w.commitment);
    }
  }
  $("#witnesses").replaceChildren(...r.witnesses.map((w) => {
    const ok = checkedSecrets.get(w.name);
    return h("li", { class: "live-witness" + (w.secret ? " revealed" : "") },
      h("span", { class: "live-name" }, w.name),
      h("span", { class: "mono" }, "承诺 ", short(w.commitment)),
      w.secret
        ? h("span", { class: "mono live-secret" }, "秘密 ", short(w.secret), ok ? " ✓ 与承诺一致" : " ✗ 与承诺不符")
        : h("span", { class: "live-wait" }, "等待揭示"));
  }));
}

async function renderSeed(r) {
  if (!r.seed) {
    $("#seed").textContent = r.state === "frozen" ? "开奖时由全部秘密和信标计算" : "—";
    $("#seed-check").textContent = "";
    return;
  }
  if (checkedSeed === null) {
    $("#seed").textContent = "正在计算…";
    $("#seed-check").textContent = "SHA-256（抽奖券根哈希 ‖ 全部见证人秘密 ‖ 信标）";
    checkedSeed = await seed(r.campaign_id, r.round, r.entry_count, r.entries_root, r.witnesses, r.beacon);
  }
  $("#seed").textContent = grouped(r.seed);
  $("#seed-check").textContent = checkedSeed === r.seed ? "✓ 本屏重新计算，与公布的种子一致" : "✗ 本屏计算的种子与公布的不一致";
}

function renderWinners(r) {
  const total = r.winners.length;
  if (r.state !== "drawn") {
    const prizes = r.prizes.map((p) => `${TIERS[p.tier] || p.tier} ${p.count} 名`).join("，");
    $("#winners-count").textContent = `本期奖品：${prizes}`;
    return;
  }
  if (revealing || shown >= total) return;
  const pace = params.has("pace") ? Math.max(0, Number(params.get("pace")) || 0) : Math.max(120, Math.min(1500, 60000 / Math.max(1, total)));
  const next = () => {
    const w = r.winners[shown];
    shown += 1;
        const grid = $("#winners");
    grid.append(h("li", { class: "live-winner" + (w.tier === "grand" ? " grand" : "") },
      h("span", { class: "live-phone" }, w.phone || ""),
      h("span", { class: "live-rank" }, `第 ${w.rank} 名`),
      h("span", { class: "live-tier" }, TIERS[w.tier] || w.tier)));
    // The latest 21 (seven rows of three) fit the screen; the whole list is on /draws.
    while (grid.children.length > 21) grid.firstElementChild.remove();
    $("#winners-count").textContent = `已揭晓 ${shown} / ${total} 名`;
    if (shown >= total) {
      clearInterval(revealing);
      revealing = null;
      $("#winners-count").textContent = `全部 ${total} 名中奖者已揭晓。完整名单和核验材料见“开奖公示”页。`;
    }
  };
  if (pace === 0) { while (shown < total) next(); return; }
  revealing = setInterval(next, pace);
  next();
}

async function render(r) {
  $("#live-title").textContent = `第 ${r.round} 期开奖直播`;
  document.title = `第 ${r.round} 期开奖直播 · 你学法我送票`;
  $("#live-state").textContent = `${STATE_NAMES[r.state] || r.state} · ${stateLine(r)}`;
  $("#live-state").dataset.state = r.state;
  const frozen = r.entry_count !== null && r.entry_count !== undefined;
  $("#entries").textContent = frozen ? `${r.entry_count.toLocaleString("zh-CN")} 张` : "封存后公布";
  $("#root").textContent = frozen ? `根哈希 ${grouped(r.entries_root)}` : "";
  await renderWitnesses(r);
  $("#beacon-source").textContent = r.beacon_source
    ? (/^drand-quicknet:\d+$/.test(r.beacon_source) ? `drand quicknet 第 ${r.beacon_source.split(":")[1]} 轮` : r.beacon_source)
    : (frozen ? "本期未声明信标" : "封存时声明");
  $("#beacon").textContent = r.beacon ? grouped(r.beacon) : "";
  await renderSeed(r);
  renderWinners(r);
}

// The hall's clock: the service's time in the campaign's zone, whatever the projector's says.
let skew = 0;
let zone = "Asia/Shanghai";
let known = false;
function tick() {
  const now = new Date(Date.now() + skew);
  $("#live-clock").textContent = now.toLocaleTimeString("zh-CN", { hour12: false, timeZone: zone });
}

async function poll() {
  if (!known) {
    const c = await api("/api/campaign");
    if (c.ok) {
      known = true;
      round = pick(c.data);
      skew = Date.parse(c.data.now) - Date.now();
      zone = c.data.time_zone || zone;
    }
  }
  const res = round ? await api(`/api/rounds/${round}`) : { ok: false };
  $("#live-offline").textContent = res.ok ? "" : "网络中断，正在重新连接…";
  if (res.ok) await render(res.data);
  // Once drawn nothing changes any more; before, the next step is a few seconds away.
  if (!res.ok || res.data.state !== "drawn") setTimeout(poll, POLL_MS);
}

setInterval(tick, 1000);
tick();
poll();

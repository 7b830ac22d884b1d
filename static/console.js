import { api, busy, failure, h, $, localTime, STATE_NAMES, VOUCHER_STATUS_NAMES } from "/static/common.js";
import { commitment as commitmentOf, toHex } from "/static/recompute.js";

// drand quicknet (DESIGN §4c): the chain, and when its round 1 was published (rounds every 3 s).
const QUICKNET = "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971";
const QUICKNET_GENESIS = 1692803367;
let quicknetRound = null;

let token = sessionStorage.getItem("staff-token") || "";
let me = null;
let campaign = null;

function call(path, method = "GET", body) {
  return api(path, { method, body, token });
}

/** The contract's commitment, computed here so that the secret stays in the browser. */
function commitment(round, secretHex) {
  return commitmentOf(campaign.id, round, me.name, secretHex);
}

/** The outcome of the last action, in one place; each action clears the one before. */
function say(message, ok) {
  const r = $("#result");
  r.textContent = message;
  r.classList.toggle("hidden", !message);
  r.classList.toggle("ok", !!ok);
}

/** A failed request in the status line, with 重试 when the network or the service failed. */
function sayFailure(res, retry) {
  say(" ");
  failure($("#result"), res, retry);
}

/** The round in view, kept in the address (?round=N) so that a reload stays on it. */
function chooseRound(n) {
  const url = new URL(location.href);
  url.searchParams.set("round", n);
  history.replaceState(null, "", url);
}

async function refresh() {
  const n = Number($("#round").value);
  const got = await api(`/api/rounds/${n}`);
  if (!got.ok) return sayFailure(got, refresh);
  const res = got.data;
  const committed = res.witnesses.length;
  const revealed = res.witnesses.filter((w) => w.secret).length;
  const frozen = ["frozen", "drawn"].includes(res.state);
  const drawn = res.state === "drawn";
  $("#round-title").textContent = `第 ${n} 期：${STATE_NAMES[res.state] || res.state}（报名截止 ${localTime(res.closes_at)}）`;
  const step = (text, done) => h("li", { class: done ? "done" : "todo" }, (done ? "✓ " : "… ") + text);
  $("#steps").replaceChildren(
    step(`见证人承诺 ${committed}/${campaign.min_witnesses}`, committed >= campaign.min_witnesses || frozen),
    step(frozen ? `已封存 ${res.entry_count} 张` : "封存", frozen),
    step(`揭示秘密 ${revealed}/${committed}`, frozen && revealed === committed),
    step(drawn ? `已开奖 ${res.winners.length} 名` : "开奖", drawn),
  );
  const missing = [];
  if (!frozen && res.state !== "closed") missing.push("报名期结束后才能封存");
  if (!frozen && committed < campaign.min_witnesses) missing.push(`还需要 ${campaign.min_witnesses - committed} 位见证人提交承诺`);
  if (frozen && !drawn && revealed < committed) missing.push(`等待见证人揭示：${res.witnesses.filter((w) => !w.secret).map((w) => w.name).join("、")}`);
  quicknetRound = (/^drand-quicknet:([1-9][0-9]*)$/.exec(res.beacon_source || "") || [])[1] || null;
  if (frozen && !drawn && res.beacon_source) {
    missing.push(quicknetRound
      ? `开奖时需填写 drand quicknet 第 ${quicknetRound} 轮的签名（该轮发布后可查）`
      : `开奖时需填写随机源“${res.beacon_source}”的取值`);
  }
  $("#beacon-label").textContent = quicknetRound
    ? `drand quicknet 第 ${quicknetRound} 轮的签名（signature，96 位十六进制；见 https://api.drand.sh/${QUICKNET}/public/${quicknetRound} ），服务离线验证后用它的 SHA-256 作信标`
    : "公开随机源的取值（封存时声明了随机源才填）";
  // A quicknet round a day after now: time for every witness to reveal before it is published.
  const inADay = Math.floor((Date.now() / 1000 + 86400 - QUICKNET_GENESIS) / 3) + 2;
  $("#beacon-suggestion").textContent = frozen ? "" : `例如 drand-quicknet:${inADay}（约 24 小时后发布）`;
  $("#missing").textContent = missing.length ? "还差：" + missing.join("；") : drawn ? "本期已完成。" : "可以进行下一步。";
  $("#freeze").disabled = frozen;
  $("#draw").disabled = !frozen || drawn;
}

async function act(button, path, body, confirmText) {
  say("");
  if (!confirm(confirmText)) return;
  const res = await busy(button, "正在提交…", () => call(path, "POST", body));
  if (!res) return;
  if (res.ok) say(res.data.message, true);
  else sayFailure(res, () => act(button, path, body, confirmText));
  await refresh();
}

async function enter() {
  const who = await busy($("#login button[type=submit]"), "正在进入…", () => call("/api/whoami"));
  if (!who) return;
  if (!who.ok) {
    if (who.status === 401) $("#login-error").textContent = "令牌无效或已停用";
    else failure($("#login-error"), who, enter);
    if (who.status === 401) sessionStorage.removeItem("staff-token");
    return;
  }
  me = who.data;
  if (!["operator", "witness", "auditor"].includes(me.role)) {
    $("#login-error").textContent = "这个令牌不能使用开奖工作台";
    return;
  }
  sessionStorage.setItem("staff-token", token);
  const got = await api("/api/campaign");
  if (!got.ok) return failure($("#login-error"), got, enter);
  campaign = got.data;
  $("#login").classList.add("hidden");
  $("#desk").classList.remove("hidden");
  $("#who").textContent = `${me.name}（${{ operator: "运营", witness: "见证人", auditor: "审计" }[me.role]}）`;
  $("#operator").classList.toggle("hidden", me.role !== "operator");
  $("#witness").classList.toggle("hidden", me.role !== "witness");
  $("#overview").classList.toggle("hidden", !["operator", "auditor"].includes(me.role));
  $("#vouchers").classList.toggle("hidden", me.role !== "operator");
  $("#review").classList.toggle("hidden", !["operator", "auditor"].includes(me.role));
  $("#review-actions").classList.toggle("hidden", me.role !== "operator");
  $("#settle-venue").replaceChildren(h("option", { value: "" }, "全部场所"), ...campaign.venues.map((v) => h("option", { value: v.id }, v.name)));
  // The round asked for in the address (kept across a reload), else the one being worked on.
  const asked = Number(new URLSearchParams(location.search).get("round"));
  const current = campaign.rounds.find((r) => r.number === asked)
    || campaign.rounds.find((r) => ["open", "closed", "frozen"].includes(r.state)) || campaign.rounds[0];
  chooseRound(current.number);
  $("#round").replaceChildren(...campaign.rounds.map((r) => h("option", { value: r.number, selected: r.number === current.number }, `第 ${r.number} 期（${STATE_NAMES[r.state] || r.state}）`)));
  await refresh();
  if (["operator", "auditor"].includes(me.role)) {
    await loadStats();
    await loadReport();
  }
}

// ---- the campaign's report: participation and learning (operators and auditors) ------------

const percent = (r) => (r === null || r === undefined ? "—" : `${(r * 100).toFixed(2)}%`);

function table(head, rows) {
  return [
    h("thead", {}, h("tr", {}, ...head.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, ...rows.map((r) => h("tr", {}, ...r.map((c) => h("td", {}, String(c)))))),
  ];
}

async function loadReport(button) {
  const res = button
    ? await busy(button, "正在统计…", () => call("/api/admin/report"))
    : await call("/api/admin/report");
  if (!res) return;
  if (!res.ok) return failure($("#report-summary"), res, () => loadReport(button));
  const r = res.data;
  $("#report-summary").textContent = `截至 ${localTime(r.generated_at, true)}：答题 ${r.attempts} 人次（开始 ${r.attempts_started} 次），` +
    `${r.participants} 人参与，通过 ${r.passes} 人次，通过率 ${percent(r.pass_rate)}，综合正确率 ${percent(r.accuracy)}。`;
  $("#report-rounds").replaceChildren(...table(["期次", "答题人次", "参与人数", "通过", "通过率", "正确率"],
    r.per_round.map((x) => [x.round ? `第 ${x.round} 期` : "报名期外", x.attempts, x.participants, x.passes, percent(x.pass_rate), percent(x.accuracy)])));
  $("#report-topics").replaceChildren(...table(["法律", "作答题次", "答对", "正确率"],
    r.per_topic.map((t) => [t.topic, t.answered, t.correct, percent(t.accuracy)])));
  $("#report-hardest").replaceChildren(...(r.hardest.length
    ? r.hardest.map((q) => h("li", {}, `${q.text}（${q.topic}，作答 ${q.answered} 次，正确率 ${percent(q.accuracy)}）`))
    : [h("li", { class: "muted" }, "作答次数还不够（每题至少 20 次）。")]));
  $("#report-venues").replaceChildren(...table(["场所", "核销（次）", "面值（元）"],
    r.venues.map((v) => [v.name, v.redemptions, v.face_value_yuan])));
}
$("#report-refresh").addEventListener("click", (e) => { say(""); loadReport(e.currentTarget); });

// ---- charts and exports (operators and auditors) -------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

/** The width a chart is drawn at: its box's, so that its text is at the page's size (a
 * 720-wide drawing shrunk onto a phone made 12 px labels 5 px). Redrawn when that changes. */
function chartWidth(box) {
  return Math.max(280, Math.round(box.clientWidth || 320));
}

/** One bar per label, across: labels on the left, values at the ends, readable at any width;
 * `title` names the chart for screen readers. */
function barChart(title, labels, values, w) {
  const left = 64, right = 48, rowH = 26, top = 4;
  const max = Math.max(1, ...values);
  const h0 = top + labels.length * rowH;
  const svg = s("svg", { viewBox: `0 0 ${w} ${h0}`, width: w, height: h0, role: "img", "aria-label": title });
  svg.append(s("title", {}, title));
  svg.append(s("line", { class: "axis", x1: left, x2: left, y1: 0, y2: h0 }));
  labels.forEach((label, i) => {
    const y = top + i * rowH;
    const bw = ((w - left - right) * values[i]) / max;
    svg.append(s("text", { x: 0, y: y + rowH - 9 }, label));
    svg.append(s("rect", { class: "bar", x: left, y: y + 4, width: Math.max(values[i] ? 2 : 0, bw), height: rowH - 8 }));
    svg.append(s("text", { class: "value", x: left + bw + 6, y: y + rowH - 9 }, String(values[i])));
  });
  return svg;
}

/** One row of day bars per venue, on one scale, with the first and last day under them. */
function venueDaysChart(title, days, venues, w) {
  const left = Math.min(150, Math.round(w * 0.36)), right = 44, rowH = 34, top = 6, axis = 24;
  // As many characters of a venue's name as its column holds at the page's text size.
  const chars = Math.max(4, Math.floor((left - 8) / 15));
  const max = Math.max(1, ...venues.flatMap((v) => v.per_day));
  // Days share the width; a few days do not make wide blocks.
  const bw = Math.min(28, (w - left - right) / Math.max(1, days.length));
  const hgt = top + venues.length * rowH + axis;
  const svg = s("svg", { viewBox: `0 0 ${w} ${hgt}`, width: w, height: hgt, role: "img", "aria-label": title });
  svg.append(s("title", {}, title));
  venues.forEach((v, r) => {
    const base = top + (r + 1) * rowH - 4;
    svg.append(s("text", { x: 0, y: base - 6 }, v.name.length > chars ? v.name.slice(0, chars - 1) + "…" : v.name));
    svg.append(s("line", { class: "axis", x1: left, x2: w - right, y1: base, y2: base }));
    v.per_day.forEach((n, d) => {
      if (!n) return;
      const bh = ((rowH - 8) * n) / max;
      svg.append(s("rect", { class: "bar", x: left + d * bw + bw * 0.1, y: base - bh, width: Math.max(1, bw * 0.8), height: bh }, undefined));
    });
    svg.append(s("text", { class: "value", x: w - right + 6, y: base - 6 }, String(v.total)));
  });
  if (days.length) {
    svg.append(s("text", { x: left, y: hgt - 6 }, days[0]));
    if (days.length > 1) svg.append(s("text", { x: w - right, y: hgt - 6, "text-anchor": "end" }, days[days.length - 1]));
  }
  return svg;
}

function csvText(rows) {
  const cell = (c) => {
    const t = String(c);
    return /[",\n\r]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
  };
  return rows.map((r) => r.map(cell).join(",")).join("\r\n") + "\r\n";
}

function save(name, blob) {
  const a = h("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

function saveCsv(name, rows) {
  // A BOM, so that spreadsheet programs read the Chinese as UTF-8.
  save(name, new Blob(["\ufeff" + csvText(rows)], { type: "text/csv;charset=utf-8" }));
  say(`已导出 ${name}`, true);
}

/** Downloads a CSV the service makes (it needs the token, so a plain link would not do). */
async function saveFrom(button, path, name) {
  say("");
  const res = await busy(button, "正在下载…", async () => {
    try {
      return await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
    } catch {
      return null;
    }
  });
  if (res === undefined) return;
  if (!res) return sayFailure({ status: 0, error: { message: "网络连接失败，请检查网络后重试" } }, () => saveFrom(button, path, name));
  if (!res.ok) {
    const data = await res.json().catch(() => null);
    return sayFailure({ status: res.status, error: (data && data.error) || { message: "下载失败" } }, () => saveFrom(button, path, name));
  }
  save(name, await res.blob());
  say(`已下载 ${name}`, true);
}

let stats = null;

async function loadStats() {
  const res = await call("/api/admin/stats");
  if (!res.ok) return sayFailure(res, loadStats);
  stats = res.data;
  const sms = stats.sms;
  const day = sms.last_day;
  const sender = sms.gateway === "outbox" ? "未接短信网关（短信留在发件箱）" : `短信网关 ${sms.gateway}`;
  document.querySelector("#claims-table")?.remove();
  if (stats.claims && stats.claims.length) {
    $("#sms-status").before(h("div", { id: "claims-table", class: "table-scroll" }, h("table", { class: "small" },
      h("caption", {}, "各期奖品领取情况"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "期次"), h("th", { scope: "col" }, "待领取"), h("th", { scope: "col" }, "已领取"), h("th", { scope: "col" }, "已放弃或逾期"), h("th", { scope: "col" }, "已短信通知"), h("th", { scope: "col" }, "已短信提醒"))),
      h("tbody", {}, ...stats.claims.map((c) => h("tr", {}, h("td", {}, `第 ${c.round} 期`), h("td", {}, String(c.to_claim)), h("td", {}, String(c.claimed)), h("td", {}, String(c.forfeited)), h("td", {}, String(c.notified)), h("td", {}, String(c.reminded))))))));
  }
  document.querySelector("#unawarded")?.remove();
  if (campaign.unawarded) {
    $("#sms-status").before(h("p", { class: "small", id: "unawarded" }, `活动已结束：未能发放的奖品共 ${campaign.unawarded.total} 份（最后一期剩余 ${Object.values(campaign.unawarded.rollover_left).reduce((a, b) => a + b, 0)} 份，放弃或逾期且无候补 ${Object.values(campaign.unawarded.forfeited).reduce((a, b) => a + b, 0)} 份）。`));
  }
  $("#sms-status").textContent = `最近一小时发出短信 ${sms.last_hour} 条，每小时上限 ${sms.hourly_budget} 条。${sender}；24 小时内：排队 ${day.queued + day.sending}，已发送 ${day.sent}，已送达 ${day.delivered}，失败 ${day.failed}。`;
  $("#sms-alert").textContent = sms.paused
    ? `短信已暂停发送：最近一小时已发 ${sms.last_hour} 条，达到每小时上限 ${sms.hourly_budget} 条。参与者获取验证码会被告知稍后再试；如属正常高峰，可调高 login.campaign_sms_per_hour。`
    : "";
  $("#sms-alert").classList.toggle("hidden", !sms.paused);
  const held = new Map(stats.tickets_per_round.map((r) => [r.round, r.tickets]));
  const rounds = campaign.rounds.map((r) => r.number);
  drawCharts();
  $("#tickets-table").replaceChildren(
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "期次"), h("th", { scope: "col" }, "抽奖券（张）"))),
    h("tbody", {}, ...rounds.map((n) => h("tr", {}, h("td", {}, `第 ${n} 期`), h("td", {}, String(held.get(n) || 0))))),
  );
  const { days, venues } = stats.redemptions;
  $("#redemptions-table").replaceChildren(
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "场所"), h("th", { scope: "col" }, "核销（次）"), h("th", { scope: "col" }, "最多一天"))),
    h("tbody", {}, ...venues.map((v) => h("tr", {}, h("td", {}, v.name), h("td", {}, String(v.total)), h("td", {}, String(Math.max(0, ...v.per_day)))))),
  );
  const today = new Date().toISOString().slice(0, 10);
  if (!$("#settle-from").value) $("#settle-from").value = days[0] || today;
  if (!$("#settle-to").value) $("#settle-to").value = days[days.length - 1] || today;
}

/** Both charts, at the width of their boxes now. */
function drawCharts() {
  if (!stats) return;
  const held = new Map(stats.tickets_per_round.map((r) => [r.round, r.tickets]));
  const rounds = campaign.rounds.map((r) => r.number);
  const tickets = $("#tickets-chart");
  tickets.replaceChildren(barChart("各期抽奖券张数", rounds.map((n) => `第${n}期`), rounds.map((n) => held.get(n) || 0), chartWidth(tickets)));
  const { days, venues } = stats.redemptions;
  const chart = $("#redemptions-chart");
  if (days.length) chart.replaceChildren(venueDaysChart(`各场所每日核销，${days[0]} 至 ${days[days.length - 1]}`, days, venues, chartWidth(chart)));
  else chart.replaceChildren(h("p", { class: "muted" }, "还没有核销。"));
}
let drawnAt = 0;
window.addEventListener("resize", () => {
  const w = chartWidth($("#tickets-chart"));
  if (w !== drawnAt) { drawnAt = w; drawCharts(); }
});

$("#tickets-csv").addEventListener("click", () => {
  say("");
  if (!stats) return say("数据还没有加载完，请稍候");
  const held = new Map(stats.tickets_per_round.map((r) => [r.round, r.tickets]));
  saveCsv(`${campaign.id}-tickets-per-round.csv`, [["round", "tickets"], ...campaign.rounds.map((r) => [r.number, held.get(r.number) || 0])]);
});
$("#redemptions-csv").addEventListener("click", () => {
  say("");
  if (!stats) return say("数据还没有加载完，请稍候");
  const { days, venues } = stats.redemptions;
  const rows = [["venue_id", "venue_name", "local_date", "redemptions"]];
  for (const v of venues) days.forEach((d, i) => rows.push([v.id, v.name, d, v.per_day[i]]));
  saveCsv(`${campaign.id}-redemptions-per-day.csv`, rows);
});
$("#settlement").addEventListener("submit", (e) => {
  e.preventDefault();
  say("");
  const from = $("#settle-from").value, to = $("#settle-to").value, venue = $("#settle-venue").value;
  if (!from || !to) return ($("#settle-error").textContent = "请填写起始和截止日期");
  if (to < from) return ($("#settle-error").textContent = "截止日期不能早于起始日期");
  $("#settle-error").textContent = "";
  const q = new URLSearchParams({ from, to });
  if (venue) q.set("venue", venue);
  saveFrom($("#settlement button[type=submit]"), `/api/settlement.csv?${q}`, `${campaign.id}-settlement-${from}-${to}${venue ? "-" + venue : ""}.csv`);
});

// ---- vouchers (operators) ---------------------------------------------------------------------

async function findVouchers() {
  const phone = $("#find-phone").value.trim();
  const res = await busy($("#find button[type=submit]"), "正在查找…",
    () => call(`/api/admin/vouchers?phone=${encodeURIComponent(phone)}`));
  if (!res) return;
  $("#find-phone").setAttribute("aria-invalid", String(!res.ok));
  if (!res.ok) {
    failure($("#find-error"), res, findVouchers);
    return;
  }
  $("#find-error").textContent = "";
  const list = res.data;
  if (!list.length) {
    $("#found").replaceChildren(h("p", { class: "card muted" }, "这个手机号没有中奖兑换码。"));
    return;
  }
  const replaced = new Set(list.map((v) => v.reissued_from).filter(Boolean));
  $("#found").replaceChildren(...list.map((v) => {
    const reason = h("input", { type: "text", id: `reason-${v.id}`, maxlength: 200, placeholder: "如：持券人报失" });
    const actions = h("div", { class: "actions" });
    if (v.status !== "void") {
      actions.append(h("label", { for: `reason-${v.id}`, class: "small" }, "作废原因"), reason,
        h("button", { class: "btn secondary void", type: "button", onclick: (e) => voidVoucher(e.currentTarget, v, reason.value) }, "作废"));
    } else if (!replaced.has(v.id)) {
      actions.append(h("button", { class: "btn reissue", type: "button", onclick: (e) => reissue(e.currentTarget, v) }, "补发新码"));
    }
    return h("div", { class: "card voucher-row", "data-id": v.id },
      h("div", {},
        h("p", {}, h("strong", {}, v.kind_name), " ", h("span", { class: `badge ${v.status}` }, VOUCHER_STATUS_NAMES[v.status] || v.status)),
        h("p", { class: "mono code" }, v.code),
        h("p", { class: "small muted" }, `第 ${v.round} 期 ${v.tier_label}；${v.valid_from} 至 ${v.valid_until}` +
          (v.visited.length ? `；已在 ${v.visited.map((x) => x.venue_name).join("、")} 使用` : "") +
          (v.void_reason ? `；作废原因：${v.void_reason}` : "") +
          (v.reissued_from ? "；补发的新码" : "") + (replaced.has(v.id) ? "；已补发新码" : ""))),
      actions);
  }));
}

async function voidVoucher(button, v, reason) {
  say("");
  if (!reason.trim()) return say("请先填写作废原因");
  if (!confirm(`确认作废兑换码 ${v.code}？作废后前台无法再核销这个码。`)) return;
  const res = await busy(button, "正在作废…", () => call(`/api/admin/vouchers/${v.id}/void`, "POST", { reason: reason.trim() }));
  if (!res) return;
  if (res.ok) say(`已作废 ${v.code}`, true);
  else sayFailure(res, () => voidVoucher(button, v, reason));
  await findVouchers();
}

async function reissue(button, v) {
  say("");
  if (!confirm(`确认为作废的 ${v.code} 补发新码？每个码只能补发一次。`)) return;
  const res = await busy(button, "正在补发…", () => call(`/api/admin/vouchers/${v.id}/reissue`, "POST"));
  if (!res) return;
  if (res.ok) say(`已补发新码 ${res.data.code}，请告知中奖人在“我的抽奖券”查看`, true);
  else sayFailure(res, () => reissue(button, v));
  await findVouchers();
}

$("#find").addEventListener("submit", (e) => {
  e.preventDefault();
  findVouchers();
});
$("#vouchers-csv").addEventListener("click", (e) => saveFrom(e.currentTarget, "/api/admin/exports/vouchers.csv", `${campaign.id}-vouchers.csv`));

$("#login").addEventListener("submit", (e) => {
  e.preventDefault();
  token = $("#token").value.trim();
  enter();
});
$("#round").addEventListener("change", () => { say(""); chooseRound($("#round").value); refresh(); clearReview(); });

// ---- the review of a round's tickets (operators decide, auditors read) ----------------------

let review = { flagged: [], sort: "signals", selected: new Set() };

function clearReview() {
  review = { flagged: [], sort: review.sort, selected: new Set() };
  $("#review-rows").replaceChildren();
  $("#review-tools").classList.add("hidden");
  $("#review-summary").textContent = "";
}

function sortedReview() {
  const key = review.sort;
  const value = (t) => key === "signals" ? t.signals.length : key === "ticket" ? t.ticket : t[key] ?? 0;
  return [...review.flagged].sort((a, b) => {
    const [x, y] = [value(a), value(b)];
    if (key === "ticket") return x < y ? -1 : x > y ? 1 : 0;
    return key === "seconds_per_question" ? x - y : y - x;
  });
}

function selectGroup(field, value) {
  for (const t of review.flagged) if (t[field] === value) review.selected.add(t.ticket);
  renderReview();
}

function renderReview() {
  const items = sortedReview().map((t) => {
    const box = h("input", { type: "checkbox", "aria-label": `选择 ${t.phone} 的奖券`, checked: review.selected.has(t.ticket) });
    box.addEventListener("change", () => { box.checked ? review.selected.add(t.ticket) : review.selected.delete(t.ticket); });
    const group = (field, label, count) => t[field]
      ? h("button", { class: "linkish", type: "button", title: "选中这一组", onclick: () => selectGroup(field, t[field]) }, `${label}（${count} 张）`)
      : null;
    const status = t.excluded
      ? `已排除：${$("#review-reason").querySelector(`option[value="${t.excluded}"]`)?.textContent || t.excluded}`
      : "参加抽奖";
    return h("li", { class: "review-item" },
      h("label", { class: "check" }, box, h("span", {}, h("strong", {}, t.phone), " ", h("span", { class: "mono small" }, t.ticket.slice(0, 8)), " · ", status)),
      h("p", { class: "small" }, t.signals.map((x) => x.detail).join("；") || "（无信号）", `；每题 ${t.seconds_per_question} 秒`),
      h("p", { class: "small" }, group("network", `网络 ${t.network}`, t.same_network), " ", group("device", `设备 ${t.device}`, t.same_device)));
  });
  $("#review-rows").replaceChildren(...items);
  $("#review-tools").classList.toggle("hidden", items.length === 0);
}

async function loadReview(clear = true) {
  if (clear) say("");
  const n = Number($("#round").value);
  const res = await busy($("#review-load"), "正在载入…", () => call(`/api/rounds/${n}/review`));
  if (!res) return;
  if (!res.ok) { failure($("#review-summary"), res, () => loadReview(clear)); return; }
  review.flagged = res.data.flagged;
  review.selected = new Set([...review.selected].filter((id) => review.flagged.some((t) => t.ticket === id)));
  const excluded = review.flagged.filter((t) => t.excluded).length;
  $("#review-summary").textContent = `第 ${n} 期共 ${res.data.tickets_issued} 张奖券，${review.flagged.length} 张有风险信号或已排除（已排除 ${excluded} 张）。`;
  renderReview();
}

async function changeTickets(action) {
  say("");
  const n = Number($("#round").value);
  const tickets = [...review.selected];
  if (!tickets.length) { say("请先选择奖券", false); return; }
  const exclude = action === "exclude";
  const note = $("#review-note").value.trim();
  if (exclude && !note) { say("请填写核实说明", false); return; }
  if (!confirm(`${exclude ? "排除" : "恢复"} ${tickets.length} 张奖券？`)) return;
  const res = await busy($(exclude ? "#review-exclude" : "#review-restore"), "正在提交…", () => exclude
    ? call(`/api/rounds/${n}/exclusions`, "POST", { tickets, reason: $("#review-reason").value, note })
    : call(`/api/rounds/${n}/exclusions/restore`, "POST", { tickets }));
  if (!res) return;
  if (res.ok) say(res.data.message, true);
  else sayFailure(res, () => changeTickets(action));
  if (res.ok) review.selected.clear();
  await loadReview(false);
}

$("#review-load").addEventListener("click", () => loadReview());
$("#review-exclude").addEventListener("click", () => changeTickets("exclude"));
$("#review-restore").addEventListener("click", () => changeTickets("restore"));
$("#review-all").addEventListener("change", (e) => {
  review.selected = e.target.checked ? new Set(review.flagged.map((t) => t.ticket)) : new Set();
  renderReview();
});
for (const b of document.querySelectorAll("[data-sort]")) {
  b.addEventListener("click", () => { review.sort = b.dataset.sort; renderReview(); });
}
$("#freeze").addEventListener("click", (e) => {
  const n = $("#round").value;
  act(e.currentTarget, `/api/rounds/${n}/freeze`, { beacon_source: $("#beacon-source").value }, `确认封存第 ${n} 期的抽奖券？封存后不能更改。`);
});
$("#draw").addEventListener("click", (e) => {
  const n = $("#round").value;
  const body = quicknetRound ? { beacon_signature: $("#beacon").value } : { beacon: $("#beacon").value };
  act(e.currentTarget, `/api/rounds/${n}/draw`, body, `确认为第 ${n} 期开奖？开奖只能进行一次。`);
});
$("#new-secret").addEventListener("click", () => {
  $("#secret").value = toHex(crypto.getRandomValues(new Uint8Array(32)));
  say("已生成秘密。请先复制或下载保存，封存后揭示时需要它；服务器不保存它。", true);
});

/** The secret typed or generated, or a message saying what is wrong with it. */
function secretValue() {
  const s = $("#secret").value.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(s)) {
    say("秘密应为 64 位十六进制数字");
    return null;
  }
  return s;
}

$("#copy-secret").addEventListener("click", async () => {
  say("");
  const s = secretValue();
  if (!s) return;
  try {
    await navigator.clipboard.writeText(s);
  } catch {
    // No clipboard (an old browser or a page not on https): select it for a manual copy.
    $("#secret").select();
    return say("浏览器不允许自动复制：秘密已选中，请长按或按 Ctrl+C 复制。");
  }
  say("秘密已复制。请粘贴到安全的地方保存。", true);
});
$("#download-secret").addEventListener("click", async () => {
  say("");
  const s = secretValue();
  if (!s) return;
  const n = Number($("#round").value);
  const text = [
    `活动：${campaign.id}`, `期次：第 ${n} 期`, `见证人：${me.name}`, `秘密：${s}`,
    `承诺值：${await commitment(n, s)}`, "", "封存后在开奖工作台揭示这个秘密。请勿交给他人。", "",
  ].join("\r\n");
  const name = `${campaign.id}-round-${n}-witness-secret.txt`;
  save(name, new Blob([text], { type: "text/plain;charset=utf-8" }));
  say(`已下载 ${name}`, true);
});
$("#commit").addEventListener("click", async (e) => {
  say("");
  const s = secretValue();
  if (!s) return;
  const n = Number($("#round").value);
  act(e.currentTarget, `/api/rounds/${n}/commitments`, { commitment: await commitment(n, s) }, `确认提交第 ${n} 期的承诺？`);
});
$("#reveal").addEventListener("click", (e) => {
  say("");
  const s = secretValue();
  if (!s) return;
  const n = $("#round").value;
  act(e.currentTarget, `/api/rounds/${n}/reveal`, { secret: s }, `确认揭示第 ${n} 期的秘密？`);
});
if (token) enter();

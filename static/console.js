import { h, $, localTime, STATE_NAMES } from "/static/common.js";

let token = sessionStorage.getItem("staff-token") || "";
let me = null;
let campaign = null;

async function call(path, method = "GET", body) {
  const init = { method, headers: { Authorization: `Bearer ${token}` } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const data = await res.json().catch(() => null);
  return res.ok ? { ok: true, data } : { ok: false, status: res.status, error: (data && data.error) || { message: "出错了" } };
}

const enc = new TextEncoder();
function lp(bytes) {
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, 4);
  return out;
}
function u32(n) {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}
function hexToBytes(hex) {
  return new Uint8Array(hex.match(/../g).map((b) => parseInt(b, 16)));
}
function toHex(bytes) {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The contract's commitment, computed here so that the secret stays in the browser. */
async function commitment(round, secretHex) {
  const parts = [lp(enc.encode("campaign-commit/v1")), lp(enc.encode(campaign.id)), u32(round), lp(enc.encode(me.name)), lp(hexToBytes(secretHex))];
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { all.set(p, at); at += p.length; }
  return toHex(await crypto.subtle.digest("SHA-256", all));
}

function say(message, ok) {
  const r = $("#result");
  r.textContent = message;
  r.classList.remove("hidden");
  r.classList.toggle("ok", !!ok);
}

async function refresh() {
  const n = Number($("#round").value);
  const res = await fetch(`/api/rounds/${n}`).then((r) => r.json());
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
  if (frozen && !drawn && res.beacon_source) missing.push(`开奖时需填写随机源“${res.beacon_source}”的取值`);
  $("#missing").textContent = missing.length ? "还差：" + missing.join("；") : drawn ? "本期已完成。" : "可以进行下一步。";
  $("#freeze").disabled = frozen;
  $("#draw").disabled = !frozen || drawn;
}

async function act(path, body, confirmText) {
  if (!confirm(confirmText)) return;
  const res = await call(path, "POST", body);
  say(res.ok ? res.data.message : res.error.message, res.ok);
  await refresh();
}

async function enter() {
  const who = await call("/api/whoami");
  if (!who.ok) {
    $("#login-error").textContent = who.status === 401 ? "令牌无效或已停用" : who.error.message;
    sessionStorage.removeItem("staff-token");
    return;
  }
  me = who.data;
  if (!["operator", "witness", "auditor"].includes(me.role)) {
    $("#login-error").textContent = "这个令牌不能使用开奖工作台";
    return;
  }
  sessionStorage.setItem("staff-token", token);
  campaign = await fetch("/api/campaign").then((r) => r.json());
  $("#login").classList.add("hidden");
  $("#desk").classList.remove("hidden");
  $("#who").textContent = `${me.name}（${{ operator: "运营", witness: "见证人", auditor: "审计" }[me.role]}）`;
  $("#operator").classList.toggle("hidden", me.role !== "operator");
  $("#witness").classList.toggle("hidden", me.role !== "witness");
  const current = campaign.rounds.find((r) => ["open", "closed", "frozen"].includes(r.state)) || campaign.rounds[0];
  $("#round").replaceChildren(...campaign.rounds.map((r) => h("option", { value: r.number, selected: r.number === current.number }, `第 ${r.number} 期（${STATE_NAMES[r.state] || r.state}）`)));
  await refresh();
}

$("#login").addEventListener("submit", (e) => {
  e.preventDefault();
  token = $("#token").value.trim();
  enter();
});
$("#round").addEventListener("change", refresh);
$("#freeze").addEventListener("click", () => {
  const n = $("#round").value;
  act(`/api/rounds/${n}/freeze`, { beacon_source: $("#beacon-source").value }, `确认封存第 ${n} 期的抽奖券？封存后不能更改。`);
});
$("#draw").addEventListener("click", () => {
  const n = $("#round").value;
  act(`/api/rounds/${n}/draw`, { beacon: $("#beacon").value }, `确认为第 ${n} 期开奖？开奖只能进行一次。`);
});
$("#new-secret").addEventListener("click", () => {
  $("#secret").value = toHex(crypto.getRandomValues(new Uint8Array(32)));
  say("已生成秘密。请妥善保存（抄写或存档），封存后揭示时需要它。", true);
});
$("#commit").addEventListener("click", async () => {
  const s = $("#secret").value.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(s)) return say("秘密应为 64 位十六进制数字");
  const n = Number($("#round").value);
  act(`/api/rounds/${n}/commitments`, { commitment: await commitment(n, s) }, `确认提交第 ${n} 期的承诺？`);
});
$("#reveal").addEventListener("click", () => {
  const s = $("#secret").value.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(s)) return say("秘密应为 64 位十六进制数字");
  const n = $("#round").value;
  act(`/api/rounds/${n}/reveal`, { secret: s }, `确认揭示第 ${n} 期的秘密？`);
});
if (token) enter();

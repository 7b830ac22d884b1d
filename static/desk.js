// The front desk: scan or type a code, see the verdict at a glance, redeem, reverse a mistake.
import { busy, h, $, localTime } from "/static/common.js";
import { parsePayload } from "/static/holder-code.js";

let token = sessionStorage.getItem("venue-token") || "";
// One Idempotency-Key per code being redeemed: a retry after a network failure reuses it, so a
// redemption that did go through is answered again instead of refused as "already used".
let pending = null; // { code, holder, key }
let checked = null; // the last check's answer

async function call(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, headers: { Authorization: `Bearer ${token}`, ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    return { ok: false, status: 0, error: { code: "network", message: "网络连接失败，请检查网络后重试（可直接再点一次）" } };
  }
  const data = await res.json().catch(() => null);
  return res.ok ? { ok: true, status: res.status, data } : { ok: false, status: res.status, error: (data && data.error) || { message: "出错了，请重试" } };
}

function normalised(code) {
  return code.toUpperCase().replace(/[\s-]/g, "");
}

function show(kind, mark, title, detail) {
  const v = $("#verdict");
  v.className = `verdict-panel ${kind}`;
  $("#verdict-mark").textContent = mark;
  $("#verdict-title").textContent = title;
  $("#verdict-detail").textContent = detail || "";
}

function holder(v) {
  return [v.holder_name, v.holder_phone].filter(Boolean).join(" · ");
}

function visited(v) {
  return v.visited && v.visited.length ? `已使用：${v.visited.map((x) => `${x.venue_name}（${localTime(x.at)}）`).join("、")}` : "";
}

function reset() {
  $("#code").value = "";
  $("#holder-code").value = "";
  $("#holder-row").classList.add("hidden");
  $("#redeem").disabled = true;
  checked = null;
  pending = null;
  $("#code").focus();
}

async function check(e) {
  e && e.preventDefault();
  // A scanned QR code carries the holder code after the voucher code: split them.
  const scanned = parsePayload($("#code").value);
  if (scanned.holder) {
    $("#code").value = scanned.code;
    $("#holder-code").value = scanned.holder;
  }
  const code = $("#code").value.trim();
  if (!code) { $("#code").focus(); return; }
  // Not held busy: a check changes nothing, and a scanner's next code must be checked at once.
  const res = await call("/api/venue/check", { method: "POST", body: { code } });
  if (!res.ok) {
    show("bad", "✗", res.error.message, res.status === 429 ? "" : "请核对兑换码");
    $("#redeem").disabled = true;
    $("#code").select();
    return;
  }
  checked = res.data;
  const v = checked.voucher;
  if (!checked.redeemable) {
    show("bad", "✗", checked.refusal.message, [v.kind_name, holder(v)].filter(Boolean).join(" · "));
    $("#redeem").disabled = true;
    $("#code").select();
    return;
  }
  show("maybe", "？", `可以核销：${v.kind_name}`, [holder(v), visited(v)].filter(Boolean).join("；"));
  $("#redeem").disabled = false;
  $("#holder-row").classList.toggle("hidden", !v.holder_check);
  (v.holder_check && !$("#holder-code").value ? $("#holder-code") : $("#redeem")).focus();
}

async function redeem() {
  const code = normalised($("#code").value);
  if (!code) return;
  const holderCode = $("#holder-code").value.replace(/\s/g, "");
  if (!pending || pending.code !== code || pending.holder !== holderCode) pending = { code, holder: holderCode, key: crypto.randomUUID() };
  const res = await busy($("#redeem"), "正在核销…", () => call("/api/venue/redeem", {
    method: "POST",
    body: holderCode ? { code, holder_code: holderCode } : { code },
    headers: { "Idempotency-Key": pending.key },
  }));
  if (!res) return;
  if (res.ok) {
    const v = res.data.voucher;
    show("ok", "✓", `核销成功：${v.kind_name}`, [holder(v), v.code].filter(Boolean).join(" · "));
    reset();
    loadRecent();
    return;
  }
  if (res.status === 0) {
    // Unknown outcome: keep the key so that retrying cannot redeem twice.
    show("bad", "✗", res.error.message, "");
    $("#redeem").disabled = false;
    return;
  }
  pending = null;
  show("bad", "✗", res.error.message, "");
  if (["holder_mismatch", "holder_code_required", "holder_code_used"].includes(res.error.code) || (res.error.details && res.error.details.field === "holder_code")) {
    // Ask for the code now on the holder's phone; the voucher code stays.
    $("#redeem").disabled = false;
    $("#holder-row").classList.remove("hidden");
    $("#holder-code").value = "";
    $("#holder-code").focus();
  } else {
    $("#redeem").disabled = true;
    $("#code").select();
    $("#code").focus();
  }
}

async function reverse(r) {
  if (!confirm(`撤销这笔核销？\n${r.kind_name} ${r.code}\n${localTime(r.redeemed_at)}`)) return;
  const res = await call(`/api/venue/redemptions/${r.id}/reverse`, { method: "POST", body: {} });
  if (res.ok) show("ok", "↺", "已撤销核销", `${r.kind_name} ${r.code}：可以重新使用`);
  else show("bad", "✗", res.error.message, "");
  loadRecent();
  $("#code").focus();
}

async function loadRecent() {
  const res = await call("/api/venue/redemptions?limit=20");
  const box = $("#recent");
  if (!res.ok) { box.replaceChildren(h("p", { role: "alert" }, res.error.message)); return; }
  if (res.data.length === 0) { box.replaceChildren(h("p", { class: "muted" }, "今天还没有核销记录。")); return; }
  box.replaceChildren(
    h("table", {},
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "时间"), h("th", { scope: "col" }, "券种"), h("th", { scope: "col" }, "兑换码"), h("th", { scope: "col" }, "状态"))),
      h("tbody", {}, ...res.data.map((r) =>
        h("tr", { class: r.reversed_at ? "reversed" : "" },
          h("td", {}, localTime(r.redeemed_at)),
          h("td", {}, r.kind_name),
          h("td", { class: "mono" }, r.code),
          h("td", {},
            r.reversed_at ? `已撤销 ${localTime(r.reversed_at)}` : "已核销",
            r.reversible ? h("button", { class: "linkish", type: "button", onclick: () => reverse(r), "aria-label": `撤销 ${r.code}` }, "撤销") : null,
          ),
        ))),
    ),
  );
}

async function enter() {
  const res = await busy($("#login button[type=submit]"), "正在进入…", () => call("/api/whoami"));
  if (!res) return;
  if (!res.ok || res.data.role !== "venue") {
    sessionStorage.removeItem("venue-token");
    $("#login").classList.remove("hidden");
    $("#work").classList.add("hidden");
    $("#login-error").textContent = res.ok ? "这不是商户核销令牌" : res.error.message;
    $("#token").setAttribute("aria-invalid", "true");
    $("#token").focus();
    return;
  }
  sessionStorage.setItem("venue-token", token);
  $("#login").classList.add("hidden");
  $("#work").classList.remove("hidden");
  $("#who").textContent = `${res.data.venue_name || res.data.venue_id}（${res.data.name}）`;
  $("#window-note").textContent = `核销后 ${res.data.reversal_window_minutes} 分钟内可以撤销。`;
  loadRecent();
  $("#code").focus();
}

$("#login").addEventListener("submit", (e) => {
  e.preventDefault();
  token = $("#token").value.trim();
  if (!token) { $("#login-error").textContent = "请输入令牌"; return; }
  enter();
});
$("#lookup").addEventListener("submit", check);
$("#code").addEventListener("input", () => { $("#redeem").disabled = true; $("#holder-row").classList.add("hidden"); $("#holder-code").value = ""; });
$("#holder-code").addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); redeem(); } });
$("#redeem").addEventListener("click", redeem);
$("#leave").addEventListener("click", () => { sessionStorage.removeItem("venue-token"); location.reload(); });
if (token) enter();

import { api, busy, failure, h, $, localTime, STATE_NAMES, VOUCHER_STATUS_NAMES, toLogin } from "/static/common.js";
import { available, codeAt, drawQr, payload, stepOf } from "/static/holder-code.js";

// The service's clock minus this phone's, from /api/me: holder codes follow the service's time,
// so a phone whose clock is off still shows the code the desk expects.
let clockOffset = 0;
const now = () => Date.now() + clockOffset;

// The holder codes on the page, redrawn when their step changes (every 30 s) and counted down
// every second, with no request: they keep working without signal.
const shown = [];
async function tick() {
  for (const s of shown) {
    const { step_seconds: seconds, digits, secret } = s.key;
    const t = now();
    const step = stepOf(t, seconds);
    if (step !== s.step) {
      s.step = step;
      const code = await codeAt(secret, step, digits);
      drawQr(s.canvas, payload(s.voucherCode, code), 240);
      s.digits.textContent = `${code.slice(0, 3)} ${code.slice(3)}`;
      s.digits.dataset.code = code;
    }
    const left = seconds - Math.floor(t / 1000) % seconds;
    s.left.textContent = `${left} 秒后更新`;
  }
}

/** The rotating holder code of a usable voucher: QR code and 6 digits, or why it cannot show. */
function holderPanel(v) {
  if (!available()) {
    return h("p", { class: "notice", role: "status" }, "这个浏览器无法生成动态码。请用手机自带的浏览器通过 https 打开本页。");
  }
  const canvas = h("canvas", { class: "qr", role: "img", "aria-label": `兑换码 ${v.code} 和动态码的二维码` });
  const digits = h("p", { class: "holder-code mono", "aria-live": "off" });
  const left = h("p", { class: "small muted" });
  shown.push({ key: v.holder_key, voucherCode: v.code, canvas, digits, left, step: null });
  return h("div", { class: "holder" },
    canvas,
    h("p", { class: "small" }, "动态码"),
    digits,
    left,
    h("p", { class: "small" }, "核销时请出示本页：前台扫描二维码，或输入兑换码和动态码。动态码每 30 秒更换，截图无效。"));
}

function staticQr(v) {
  const canvas = h("canvas", { class: "qr", role: "img", "aria-label": `兑换码 ${v.code} 的二维码` });
  drawQr(canvas, v.code, 240);
  return canvas;
}

function day(d) {
  const [y, m, dd] = d.split("-");
  return `${y}年${Number(m)}月${Number(dd)}日`;
}

function voucherCard(v) {
  const live = v.status === "usable" || v.status === "not_yet_valid";
  const where = v.policy === "once_per_venue"
    ? `可在以下每个景区各使用一次：${v.venues.map((x) => x.name).join("、")}`
    : `可在以下任一商户使用一次：${v.venues.map((x) => x.name).join("、")}`;
  return h("div", { class: "card voucher" },
    live ? (v.holder_key ? holderPanel(v) : staticQr(v)) : null,
    h("div", {},
      h("p", {}, h("strong", {}, v.kind_name), v.face_value_yuan ? `（面值 ${v.face_value_yuan} 元）` : "", " ",
        h("span", { class: `badge ${v.status}` }, VOUCHER_STATUS_NAMES[v.status] || v.status)),
      h("p", { class: "code mono" }, v.code),
      h("p", { class: "small" }, `第 ${v.round} 期${v.tier_label}；有效期 ${day(v.valid_from)} 至 ${day(v.valid_until)}`),
      h("p", { class: "small" }, where),
      v.visited.length ? h("p", { class: "small" }, `已使用：${v.visited.map((x) => `${x.venue_name}（${localTime(x.at, true)}）`).join("、")}`) : null,
      v.status === "void" ? h("p", { class: "small muted" }, `已于 ${localTime(v.voided_at, true)} 作废${v.void_reason ? "：" + v.void_reason : ""}`) : null,
    ),
  );
}

/** A prize won: to claim (with the deadline, claim and decline), claimed, or forfeited. */
function prizeCard(p) {
  const title = `第 ${p.round} 期 ${p.tier_label}`;
  if (p.state === "to_claim") {
    const status = h("p", { class: "small", role: "status" });
    const act = async (what, button) => {
      if (what === "decline" && !confirm(`确定放弃${title}吗？放弃后奖品将转给候补，不能恢复。`)) return;
      failure(status, null);
      const res = await busy(button, what === "claim" ? "正在领取…" : "正在提交…",
        () => api(`/api/me/prizes/${p.round}/${what}`, { method: "POST", body: {} }));
      if (!res) return;
      if (res.ok) { location.reload(); return; }
      failure(status, res, () => act(what, button));
    };
    const claim = h("button", { class: "btn", type: "button" }, "领取奖品");
    const decline = h("button", { class: "btn secondary", type: "button" }, "放弃");
    claim.addEventListener("click", () => act("claim", claim));
    decline.addEventListener("click", () => act("decline", decline));
    return h("div", { class: "card now prize-won" },
      h("h2", {}, `恭喜！您获得${title}`),
      p.promoted_from ? h("p", { class: "small" }, "原中奖者未领取或放弃，奖品按候补顺序转给了您。") : null,
      h("p", {}, h("strong", {}, `请在 ${localTime(p.claim_by)} 前领取`), "，逾期视为放弃。领取后下面的兑换码即可使用。"),
      h("div", { class: "row" }, claim, decline),
      status);
  }
  if (p.state === "claimed") {
    return h("div", { class: "card prize-won" }, h("p", {}, h("strong", {}, `✓ ${title}已领取`), `（${localTime(p.claimed_at, true)}）`));
  }
  const why = p.forfeit_reason === "declined" ? "您已放弃" : "逾期未领取";
  return h("div", { class: "card" }, h("p", {}, `${title}：${why}（${localTime(p.forfeited_at, true)}），奖品已按规则转给候补。`));
}

$("#logout").addEventListener("click", async (e) => {
  const res = await busy(e.currentTarget, "正在退出…", () => api("/api/logout", { method: "POST", body: {} }));
  if (res && !res.ok && res.status !== 401) {
    failure($("#logout-error"), res, () => $("#logout").click());
    return;
  }
  location.replace("/");
});


const res = await api("/api/me");
if (res.status === 401) {
  toLogin();
} else if (!res.ok) {
  const box = h("p", { role: "alert" });
  $("#this-week").replaceChildren(box);
  failure(box, res, () => location.reload());
} else {
  const me = res.data;
  clockOffset = Date.parse(me.server_time) - Date.now();
  const p = me.participant;
  $("#who").textContent = `${p.display_name ? p.display_name + "，" : ""}手机号 ${p.phone}`;

  const week = $("#this-week");
  if (me.current_round && me.holds_current_ticket) {
    week.append(h("p", {}, h("strong", {}, `✓ 已获得第 ${me.current_round} 期抽奖券`)), h("p", { class: "muted" }, "本期报名截止后公开抽奖，请留意开奖结果。"));
  } else if (me.current_round) {
    week.append(h("p", {}, h("strong", {}, `还没有第 ${me.current_round} 期抽奖券`)), h("a", { class: "btn", href: "/quiz" }, "去答题"));
  } else {
    week.append(h("p", {}, "现在不在报名时段。"));
  }

  if (me.tickets.length === 0) {
    $("#tickets").append(h("p", { class: "muted" }, "还没有抽奖券。答题通过即可获得当期抽奖券。"));
  } else {
    $("#tickets").append(
      ...me.tickets.map((t) =>
        h("div", { class: "card" },
          h("p", {}, h("strong", {}, `第 ${t.round} 期`), " ", h("span", { class: `badge ${t.round_state}` }, STATE_NAMES[t.round_state] || t.round_state)),
          h("p", { class: "small" }, "券号：", h("span", { class: "mono" }, t.ticket)),
          h("p", { class: "small muted" }, `获得时间 ${localTime(t.obtained_at, true)}；报名截止 ${localTime(t.round_closes_at)}`),
          t.excluded ? h("p", { class: "notice", role: "status" }, `这张券不参加本期抽奖：${t.excluded_reason}。如有疑问请联系主办方。`) : null,
          ["frozen", "drawn"].includes(t.round_state)
            ? h("a", { class: "btn secondary", href: `/draws?round=${t.round}&ticket=${t.ticket}` }, t.round_state === "drawn" ? "查验这张券和本期开奖" : "查验这张券在封存名单中")
            : null,
        )),
    );
  }

  if (me.prizes && me.prizes.length > 0) {
    $("#prizes").replaceChildren(...me.prizes.map(prizeCard));
  }

  if (me.vouchers.length > 0) {
    $("#vouchers").classList.remove("card");
    $("#vouchers").replaceChildren(...me.vouchers.map(voucherCard));
    if (shown.length) {
      await tick();
      setInterval(tick, 1000);
    }
  }
}

// ---- 错题本: the questions answered wrong, and practice that records nothing ----------------

let mistakes = [];
let practising = 0;

function mistakeCard(q) {
  const right = q.options.filter((o) => q.correct_choices.includes(o.key)).map((o) => `${o.key}. ${o.text}`);
  return h("details", { class: "card mistake" },
    h("summary", {}, q.text),
    h("p", { class: "small muted" }, `${q.topic} · 答错 ${q.times_wrong} 次，最近一次 ${localTime(q.last_wrong_at)}${q.right_since ? " · 之后已答对" : ""}`),
    h("ul", {}, ...q.options.map((o) => h("li", {}, `${o.key}. ${o.text}`))),
    h("p", {}, "正确答案：", h("strong", {}, right.join("；"))),
    h("p", { class: "small" }, "解析：", q.explanation));
}

function showPractice() {
  const q = mistakes[practising];
  $("#practice-progress").textContent = `练习第 ${practising + 1} / ${mistakes.length} 题`;
  $("#practice-text").textContent = q.text;
  $("#practice-hint").textContent = `${q.topic} · ${q.multiple ? "多选题" : "单选题"}`;
  const type = q.multiple ? "checkbox" : "radio";
  $("#practice-options").replaceChildren(...q.options.map((o) =>
    h("label", { class: "option", for: `practice-${o.key}` },
      h("input", { type, name: "practice-choice", value: o.key, id: `practice-${o.key}` }),
      h("span", {}, `${o.key}. ${o.text}`))));
  $("#practice-fieldset").disabled = false;
  $("#practice-result").textContent = "";
  $("#practice-check").classList.remove("hidden");
  $("#practice-next").classList.add("hidden");
}

async function checkPractice() {
  const q = mistakes[practising];
  const choices = [...document.querySelectorAll("#practice-options input:checked")].map((i) => i.value);
  if (!choices.length) { $("#practice-result").textContent = "请先选择答案"; return; }
  const res = await busy($("#practice-check"), "正在检查…",
    () => api("/api/me/practice", { method: "POST", body: { question: q.id, choices } }));
  if (!res) return;
  if (!res.ok) { failure($("#practice-result"), res, checkPractice); return; }
  const r = res.data;
  $("#practice-fieldset").disabled = true;
  $("#practice-result").replaceChildren(
    h("strong", {}, r.correct ? "✓ 答对了" : "✗ 还不对"), `　正确答案：${r.correct_choices.join("、")}。`,
    h("br"), "解析：", r.explanation);
  $("#practice-result").classList.toggle("ok", r.correct);
  $("#practice-check").classList.add("hidden");
  $("#practice-next").classList.remove("hidden");
  $("#practice-next").textContent = practising + 1 < mistakes.length ? "下一题" : "再练一遍";
  $("#practice-next").focus();
}

async function loadMistakes() {
  const res = await api("/api/me/mistakes");
  if (!res.ok) { failure($("#mistakes-summary"), res, loadMistakes); return; }
  mistakes = res.data.questions;
  $("#mistakes-summary").textContent = mistakes.length
    ? `共 ${mistakes.length} 道答错过的题，最近答错的在前。点开可看正确答案和解析。`
    : "还没有答错的题。交卷后答错的题会记在这里，方便复习。";
  $("#mistakes-list").replaceChildren(...mistakes.map(mistakeCard));
  $("#practice-start").classList.toggle("hidden", mistakes.length === 0);
}

$("#practice-start").addEventListener("click", () => {
  practising = 0;
  $("#practice").classList.remove("hidden");
  $("#mistakes-list").classList.add("hidden");
  $("#practice-start").classList.add("hidden");
  showPractice();
  $("#practice-options input")?.focus();
});
$("#practice-check").addEventListener("click", checkPractice);
$("#practice-next").addEventListener("click", () => {
  practising = (practising + 1) % mistakes.length;
  showPractice();
  $("#practice-options input")?.focus();
});
$("#practice-stop").addEventListener("click", () => {
  $("#practice").classList.add("hidden");
  $("#mistakes-list").classList.remove("hidden");
  $("#practice-start").classList.remove("hidden");
});
if (res.ok) await loadMistakes();

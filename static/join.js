import { api, busy, failure, transient, $ } from "/static/common.js";

const next = new URLSearchParams(location.search).get("next");
// Only come back to a page of this site.
const target = next && next.startsWith("/") && !next.startsWith("//") ? next : "/quiz";

function showError(input, message) {
  const box = document.getElementById(input.getAttribute("aria-describedby"));
  box.textContent = message || "";
  input.setAttribute("aria-invalid", message ? "true" : "false");
  if (message) input.focus();
}

// A quick check before the server's: eleven digits, optional +86/0086, spaces and dashes.
function looksLikePhone(value) {
  const digits = value.replace(/[\s-]/g, "").replace(/^(\+86|0086)/, "");
  if (!digits) return "请输入手机号";
  if (!/^\d+$/.test(digits)) return "手机号只能包含数字";
  if (digits.length !== 11) return `手机号应为 11 位数字，现在是 ${digits.length} 位`;
  return "";
}

// The ALTCHA widget solves in a Web Worker of this site (the strict CSP allows no other).
globalThis.$altcha.algorithms.set("PBKDF2/SHA-256", () => new Worker("/static/altcha-pbkdf2.js"));

// Before each SMS the browser works about a second on a challenge bound to the phone; a script
// that wants thousands of codes pays that thousands of times. The payload pays for one code.
async function proofOfWork(phone) {
  const res = await api("/api/login/challenge", { method: "POST", body: { phone } });
  if (!res.ok) return res;
  const widget = $("#pow");
  await widget.configure({ challenge: res.data });
  const solved = await widget.verify();
  if (!solved || !solved.payload) {
    return { ok: false, error: { message: "安全验证没有完成，请检查网络后重试" } };
  }
  return { ok: true, payload: solved.payload };
}

// The code sent stays valid while the next may not be asked for yet: its box stays, and the
// button counts down to when another can be sent.
let resendTimer = null;
function countDownResend(seconds) {
  const button = $("#resend");
  clearInterval(resendTimer);
  let left = Math.max(0, Math.round(seconds));
  const show = () => {
    button.disabled = left > 0;
    button.textContent = left > 0 ? `${left} 秒后可重新获取` : "重新获取验证码";
  };
  show();
  resendTimer = setInterval(() => {
    left -= 1;
    show();
    if (left <= 0) clearInterval(resendTimer);
  }, 1000);
}

function codeFormShown() {
  return !$("#code-form").classList.contains("hidden");
}

async function sendCode(button) {
  const input = $("#phone-input");
  const problem = looksLikePhone(input.value);
  showError(input, problem);
  if (problem) return;
  const resendError = $("#resend-error");
  resendError.textContent = "";
  const res = await busy(button, "正在安全验证…", async () => {
    const pow = await proofOfWork(input.value);
    if (!pow.ok) return pow;
    button.textContent = "正在发送…";
    return api("/api/login/code", { method: "POST", body: { phone: input.value, altcha: pow.payload } });
  });
  if (!res) return;
  if (!res.ok) {
    const wait = Number(res.retryAfter);
    if (codeFormShown()) {
      // A code sent earlier stays valid: its box stays open, the reason and the wait beside it.
      failure(resendError, res, () => sendCode(button));
      if (wait > 0) countDownResend(wait);
    } else {
      showError(input, res.error.message);
      if (transient(res)) failure($("#phone-error"), res, () => sendCode(button));
    }
    return;
  }
  $("#code-sent").textContent = `验证码已发送到 ${res.data.sent_to}，${Math.round(res.data.expires_in_seconds / 60)} 分钟内有效。`;
  $("#phone-form").classList.add("hidden");
  $("#code-form").classList.remove("hidden");
  countDownResend(res.data.resend_in_seconds ?? 60);
  $("#code-input").focus();
}

$("#phone-form").addEventListener("submit", (e) => { e.preventDefault(); sendCode($("#send-code")); });
$("#resend").addEventListener("click", () => sendCode($("#resend")));
$("#change-phone").addEventListener("click", () => {
  $("#code-form").classList.add("hidden");
  $("#phone-form").classList.remove("hidden");
  $("#phone-input").focus();
});

$("#code-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("#code-input");
  for (const field of [input, $("#name-input"), $("#consent")]) showError(field, "");
  const code = input.value.trim();
  if (!/^\d{6}$/.test(code)) {
    showError(input, "验证码是 6 位数字");
    return;
  }
  const res = await busy($("#enter"), "正在进入…", () => api("/api/login", {
    method: "POST",
    body: {
      phone: $("#phone-input").value,
      code,
      display_name: $("#name-input").value || null,
      consent: $("#consent").checked,
    },
  }));
  if (!res) return;
  if (res.ok) {
    // Back from the next page should not come to this form again.
    location.replace(target);
    return;
  }
  if (transient(res)) {
    failure($("#code-error"), res, () => $("#code-form").requestSubmit());
    return;
  }
  const { code: reason, message } = res.error;
  if (reason === "consent_required") {
    showError($("#consent"), message);
  } else if (reason === "invalid_display_name") {
    showError($("#name-input"), message);
  } else if (reason === "invalid_phone") {
    $("#change-phone").click();
    showError($("#phone-input"), message);
  } else {
    showError(input, message);
  }
});

// Someone already logged in has nothing to do here: on to where they were going.
const me = await api("/api/me");
if (me.ok) location.replace(target);

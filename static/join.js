import { api, $ } from "/static/common.js";

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

let sending = false;
async function sendCode() {
  const input = $("#phone-input");
  const problem = looksLikePhone(input.value);
  showError(input, problem);
  if (problem || sending) return;
  sending = true;
  const button = $("#send-code");
  button.disabled = true;
  button.textContent = "正在安全验证…";
  let res;
  try {
    const pow = await proofOfWork(input.value);
    res = pow.ok
      ? await api("/api/login/code", { method: "POST", body: { phone: input.value, altcha: pow.payload } })
      : pow;
  } finally {
    sending = false;
    button.disabled = false;
    button.textContent = "获取验证码";
  }
  if (!res.ok) {
    // A code sent earlier stays valid: keep its box if it is open.
    showError(input, res.error.message);
    return;
  }
  $("#code-sent").textContent = `验证码已发送到 ${res.data.sent_to}，${Math.round(res.data.expires_in_seconds / 60)} 分钟内有效。`;
  $("#phone-form").classList.add("hidden");
  $("#code-form").classList.remove("hidden");
  $("#code-input").focus();
}

$("#phone-form").addEventListener("submit", (e) => { e.preventDefault(); sendCode(); });
$("#resend").addEventListener("click", () => sendCode());
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
  const res = await api("/api/login", {
    method: "POST",
    body: {
      phone: $("#phone-input").value,
      code,
      display_name: $("#name-input").value || null,
      consent: $("#consent").checked,
    },
  });
  if (res.ok) {
    location.href = target;
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

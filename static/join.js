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

function mode(name) {
  $("#register").classList.toggle("hidden", name !== "register");
  $("#login").classList.toggle("hidden", name !== "login");
  (name === "login" ? $("#login-phone-input") : $("#reg-phone")).focus();
}

// A quick check before the server's: eleven digits, optional +86/0086, spaces and dashes.
function looksLikePhone(value) {
  const digits = value.replace(/[\s-]/g, "").replace(/^(\+86|0086)/, "");
  if (!digits) return "请输入手机号";
  if (!/^\d+$/.test(digits)) return "手机号只能包含数字";
  if (digits.length !== 11) return `手机号应为 11 位数字，现在是 ${digits.length} 位`;
  return "";
}

$("#to-login").addEventListener("click", (e) => { e.preventDefault(); mode("login"); });
$("#to-register").addEventListener("click", (e) => { e.preventDefault(); mode("register"); });
if (location.hash === "#login") mode("login");

$("#register-phone").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = $("#reg-phone");
  const problem = looksLikePhone(input.value);
  showError(input, problem);
  if (problem) return;
  $("#reg-phone-shown").textContent = input.value.trim();
  $("#register-phone").classList.add("hidden");
  $("#register-details").classList.remove("hidden");
  $("#reg-name").focus();
});

$("#reg-back").addEventListener("click", () => {
  $("#register-details").classList.add("hidden");
  $("#register-phone").classList.remove("hidden");
  $("#reg-phone").focus();
});

$("#register-details").addEventListener("submit", async (e) => {
  e.preventDefault();
  const consent = $("#reg-consent");
  showError(consent, "");
  showError($("#reg-name"), "");
  if (!consent.checked) {
    showError(consent, "请阅读并同意隐私政策后再报名");
    return;
  }
  const res = await api("/api/participants", {
    method: "POST",
    body: { phone: $("#reg-phone").value, display_name: $("#reg-name").value || null, consent: true },
  });
  if (res.ok) {
    location.href = target;
    return;
  }
  const { code, message } = res.error;
  if (code === "phone_taken") {
    $("#login-phone-input").value = $("#reg-phone").value;
    mode("login");
    showError($("#login-phone-input"), message);
  } else if (code === "invalid_phone") {
    $("#reg-back").click();
    showError($("#reg-phone"), message);
  } else if (code === "invalid_display_name") {
    showError($("#reg-name"), message);
  } else {
    showError(consent, message);
  }
});

async function sendCode() {
  const input = $("#login-phone-input");
  const problem = looksLikePhone(input.value);
  showError(input, problem);
  if (problem) return false;
  const res = await api("/api/login/code", { method: "POST", body: { phone: input.value } });
  if (!res.ok) {
    $("#login-code").classList.add("hidden");
    showError(input, res.error.message);
    return false;
  }
  $("#code-sent").textContent = `验证码已发送到 ${res.data.sent_to}，${Math.round(res.data.expires_in_seconds / 60)} 分钟内有效。`;
  $("#login-code").classList.remove("hidden");
  $("#login-code-input").focus();
  return true;
}

$("#login-phone").addEventListener("submit", (e) => { e.preventDefault(); sendCode(); });
$("#resend").addEventListener("click", () => sendCode());

$("#login-code").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("#login-code-input");
  const code = input.value.trim();
  if (!/^\d{6}$/.test(code)) {
    showError(input, "验证码是 6 位数字");
    return;
  }
  const res = await api("/api/login", { method: "POST", body: { phone: $("#login-phone-input").value, code } });
  if (res.ok) {
    location.href = target;
  } else {
    showError(input, res.error.message);
  }
});

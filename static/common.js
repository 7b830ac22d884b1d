// Shared helpers for the pages: the API, local times, small DOM helpers.

/** Calls the API (as staff with `token`); resolves to {ok, status, data, error} and never throws. */
export async function api(path, { method = "GET", body, token } = {}) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  // On a weak signal a request can hang for minutes: after 30 s it is said to have failed.
  if (typeof AbortSignal.timeout === "function") init.signal = AbortSignal.timeout(30_000);
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    const message = e && e.name === "TimeoutError" ? "网络太慢，请求没有完成，请稍后重试" : "网络连接失败，请检查网络后重试";
    return { ok: false, status: 0, error: { code: "network", message } };
  }
  const retryAfter = res.headers.get("Retry-After");
  let data = null;
  if (res.status !== 204) {
    try { data = await res.json(); } catch { data = null; }
  }
  if (res.ok) return { ok: true, status: res.status, data };
  const error = (data && data.error) || { code: "error", message: "出了点问题，请稍后再试" };
  return { ok: false, status: res.status, error, retryAfter };
}

/** "2026-11-26T00:00:00+08:00" → "11月26日 00:00" (the service already gives local times). */
export function localTime(iso, withYear = false) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(iso || "");
  if (!m) return iso || "";
  const date = `${Number(m[2])}月${Number(m[3])}日`;
  return `${withYear ? m[1] + "年" : ""}${date} ${m[4]}:${m[5]}`;
}

export const STATE_NAMES = {
  scheduled: "未开始",
  open: "报名中",
  closed: "待开奖",
  frozen: "待开奖",
  drawn: "已开奖",
};

export const VOUCHER_STATUS_NAMES = { usable: "可使用", not_yet_valid: "未到使用日期", used: "已使用", expired: "已过期", void: "已作废", to_claim: "领取后可用" };

export const KIND_NAMES = {
  tourism_card: "城市旅游卡",
  hotel_night: "星级酒店住宿一晚",
  dining_coupon: "餐饮消费券",
};

export function $(selector) {
  return document.querySelector(selector);
}

/** Creates an element: h("p", {class: "x"}, "text", child…). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** "3天 04:05:06" until an instant. */
export function countdown(untilIso, now = Date.now()) {
  let s = Math.max(0, Math.floor((Date.parse(untilIso) - now) / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hh = String(Math.floor(s / 3600)).padStart(2, "0"); s %= 3600;
  const mm = String(Math.floor(s / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return `${d > 0 ? d + "天 " : ""}${hh}:${mm}:${ss}`;
}

/** Sends the visitor to log in, coming back here afterwards; Back then skips this page. */
export function toLogin() {
  location.replace("/join?next=" + encodeURIComponent(location.pathname + location.search));
}

/**
 * Runs `work` while `button` says `label` (正在…) and cannot be pressed: on a slow network a
 * second tap sends nothing. Resolves to what `work` resolves to, or undefined when busy already.
 */
export async function busy(button, label, work) {
  if (button.getAttribute("aria-busy") === "true") return undefined;
  const before = button.textContent;
  button.setAttribute("aria-busy", "true");
  button.disabled = true;
  button.textContent = label;
  try {
    return await work();
  } finally {
    button.removeAttribute("aria-busy");
    button.disabled = false;
    if (button.textContent === label) button.textContent = before;
  }
}

/** Whether trying the same request again may work: the network or the service failed. */
export function transient(res) {
  return res.status === 0 || res.status >= 500;
}

/**
 * Says in `box` that a request failed, in Chinese; when the network or the service failed, with
 * a 重试 button that runs `retry`. Clears `box` when `res` is null.
 */
export function failure(box, res, retry) {
  if (!res) {
    box.replaceChildren();
    return;
  }
  const message = res.error?.message || "出了点问题，请稍后再试";
  const again = retry && transient(res)
    ? h("button", { type: "button", class: "linkish retry", onclick: () => { box.replaceChildren(); retry(); } }, "重试")
    : null;
  box.replaceChildren(h("span", {}, message), again ? " " : null, again);
}

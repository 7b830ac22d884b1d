import { api, failure, h, $, localTime, countdown, STATE_NAMES, KIND_NAMES } from "/static/common.js";

const CATEGORY = { scenic: "景区", hotel: "酒店", dining: "餐饮" };

function fill(selector, value) {
  for (const el of document.querySelectorAll(selector)) el.textContent = value;
}

function renderCurrent(c) {
  const box = $("#current");
  box.replaceChildren();
  // Count down by the service's clock: a phone's clock may be wrong.
  const skew = Date.parse(c.now) - Date.now();
  const left = (iso) => countdown(iso, Date.now() + skew);
  const open = c.rounds.find((r) => r.number === c.current_round);
  if (open) {
    const timer = h("span", { class: "countdown", id: "countdown" }, left(open.closes_at));
    box.append(
      h("p", {}, h("strong", {}, `第 ${open.number} 期报名中`), `（${localTime(open.opens_at)} – ${localTime(open.closes_at)}）`),
      h("p", {}, "距本期报名截止还有 ", timer),
    );
    setInterval(() => { timer.textContent = left(open.closes_at); }, 1000);
    return;
  }
  const next = c.rounds.find((r) => r.number === c.next_round);
  if (next) {
    box.append(h("p", {}, h("strong", {}, `第 ${next.number} 期将于 ${localTime(next.opens_at, true)} 开始报名`)),
      h("p", {}, "现在也可以先答题练习。"));
  } else {
    box.append(h("p", {}, h("strong", {}, "本次活动的所有期次都已结束，感谢参与！")));
  }
}

function renderPrizes(c) {
  const kinds = Object.fromEntries(c.voucher_kinds.map((k) => [k.code, k]));
  const list = h("div");
  for (const t of c.tiers) {
    const gifts = t.voucher_kinds.map((code) => {
      const k = kinds[code];
      const name = k ? k.name : KIND_NAMES[code] || code;
      return k && k.face_value_yuan ? `${name}（${k.face_value_yuan} 元）` : name;
    });
    list.append(h("p", { class: "prize" }, h("strong", {}, `${t.label} ${t.count} 名`), gifts.join(" + ")));
  }
  // In the order the tiers name them: the tourism card first.
  const order = [...new Set(c.tiers.flatMap((t) => t.voucher_kinds))];
  const totals = order.map((code) => `${(kinds[code] || {}).name || code} ${c.totals.vouchers[code]} 份`);
  list.append(h("p", { class: "muted small" }, `每期共 ${c.winners_per_round} 名；全部 ${c.rounds.length} 期共 ${c.totals.winners} 名中奖者：${totals.join("，")}。`));
  $("#prizes").replaceChildren(list);
}

function renderCalendar(c) {
  fill("#round-count", c.rounds.length);
  $("#calendar").replaceChildren(
    ...c.rounds.map((r) =>
      h("tr", { class: r.number === c.current_round ? "current" : null, "aria-current": r.number === c.current_round ? "true" : null },
        h("td", {}, `第 ${r.number} 期`),
        h("td", {}, `${localTime(r.opens_at)} – ${localTime(r.closes_at)}`),
        h("td", {}, h("span", { class: `badge ${r.state}` }, STATE_NAMES[r.state] || r.state)),
      )),
  );
}

function renderVenues(c) {
  $("#venues").replaceChildren(
    ...c.venues.map((v) => h("li", {}, `${v.name}（${CATEGORY[v.category] || v.category}）`)),
  );
}

const res = await api("/api/campaign");
if (res.ok) {
  const c = res.data;
  for (const [k, v] of Object.entries(c.quiz || {})) fill(`[data-quiz="${k}"]`, v);
  fill('[data-campaign="win_limit"]', c.win_limit);
  renderCurrent(c);
  renderPrizes(c);
  renderCalendar(c);
  renderVenues(c);
} else {
  const box = h("p", { role: "alert" });
  $("#current").replaceChildren(box);
  failure(box, res, () => location.reload());
}
